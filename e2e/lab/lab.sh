#!/usr/bin/env bash
# lab.sh — a real three-node Patroni 3.0.2 / etcd 3.4 / PostgreSQL 15 cluster on one
# machine, in network namespaces, for pghook's end-to-end tests and demo.
#
#   lab.sh up       build (or complete) the lab and wait until it is healthy; no-op if up
#   lab.sh down     stop everything, delete namespaces, bridge and $LAB_DIR; no-op if down
#   lab.sh status   show what runs; exit 0 healthy, 1 partly up/unhealthy, 3 down
#   lab.sh env      print the lab's settings as KEY=value lines (eval-able by sh)
#   lab.sh standalone-up|standalone-down   a second scope on the running lab (see below)
#
# Settings (environment): LAB_DIR (/var/tmp/pghook-lab), LAB_DCS (etcd3 | etcd),
# LAB_SCOPE (pglab), PGHOOK_BIN (absolute path of pghook, required by `up`),
# LAB_TIMEOUT (seconds per wait stage of `up`, default 90),
# LAB_VIP (netlink | dns | exec | none; default netlink: the VIP 10.251.77.100 follows the primary
# through pghook's callbacks and one `pghook-vip watch` per node; a running lab keeps its
# setting unless LAB_VIP is given, and `up` switches between netlink and none in place;
# dns: BIND 9 in namespace pgh-dns (10.251.77.53) serves pglab.test., pghook's dns backend
# points primary.pglab.test. at the primary's eth0 address and replicas.pglab.test. at the
# streaming replicas', one unprivileged `pghook vip watch` per node;
# exec: a fake cloud API in the client namespace assigns one address to one node,
# pghook's exec backend calls it through a curl script, one `pghook vip watch` per node
# (exec.sh)),
# LAB_TOPOLOGY (one-subnet | two-subnet; two-subnet: subnets.sh — nodes n1, n2 in one
# subnet and n3 in another behind a router, the client and BIND in a third, one VIP per
# subnet held by the netlink backend and named by primary.pglab.test.; implies LAB_VIP=dns),
# LAB_FROM_DEB=1 or LAB_DEB=path.deb (use the packaged /usr/bin/pghook and
# /usr/lib/pghook/pghook-vip; `up` installs the .deb — LAB_DEB, default the newest
# dist/pghook_*.deb — when pghook is not installed, and `down` purges it only then;
# PGHOOK_BIN is not needed).
# LAB_VIP_TOOL (pghook | shell | vip-manager; default pghook = all of the above; for
# bench/vip-lab.sh): shell = an ip+arping callback in patroni.yml (Patroni with ambient
# NET_ADMIN/NET_RAW), vip-manager = Debian's vip-manager 1.0.2 per node (LAB_DCS=etcd
# only; LAB_VIPMGR_INTERVAL ms, default 1000); both imply pghook's VIP backend none.
# Each node is configured the user's way: `pghook install` (that pghook) run in the node's
# namespace writes its patroni.yml, pghook.yaml and passwords (see configure_node).
# Must run as root. Helpers for tests live in lib.sh (source it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"
# shellcheck source-path=SCRIPTDIR source=exec.sh
source "$HERE/exec.sh"

: "${LAB_TIMEOUT:=90}"

die() {
	lab_log "error: $*"
	exit 1
}

usage() {
	sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# Refuse LAB_DIR values that would make `rm -rf` dangerous.
check_lab_dir() {
	[[ $LAB_DIR == /* && $LAB_DIR != */ && $LAB_DIR != *..* && $LAB_DIR != *' '* ]] ||
		die "LAB_DIR must be an absolute path without '..', spaces or a trailing slash: '$LAB_DIR'"
	case $LAB_DIR in
	/ | /var | /var/tmp | /tmp | /root | /home | /usr | /etc | /work | /work/*) die "refusing LAB_DIR=$LAB_DIR" ;;
	esac
}

ns_exists() { [[ -e /run/netns/$1 ]]; }
# net_members — every namespace on the bridge: the nodes, the client and, for LAB_VIP=dns
# (or when it is left from such a lab), the DNS server.
net_members() {
	echo "${LAB_NODES[@]}" "$LAB_CLIENT"
	if [[ $LAB_VIP == dns ]] || ns_exists "$(lab_ns dns)"; then echo dns; fi
}
all_ns() { local n; for n in $(net_members); do lab_ns "$n"; done; }

# ---------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------

# write_file PATH OWNER:GROUP MODE — stdin to PATH, replaced atomically and only when the
# content changed (so a no-op `up` does not touch files a running cluster reads).
# Appends PATH to CHANGED_FILES when it replaced an existing file.
CHANGED_FILES=()
write_file() {
	local path=$1 owner=$2 mode=$3 tmp
	tmp=$(mktemp "$path.XXXXXX")
	cat >"$tmp"
	if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
		rm -f "$tmp"
	else
		[[ -f $path ]] && CHANGED_FILES+=("$path")
		chown "$owner" "$tmp"
		chmod "$mode" "$tmp"
		mv -f "$tmp" "$path"
	fi
	chown "$owner" "$path"
	chmod "$mode" "$path"
}

# Passwords: the cluster's (superuser, replication, rewind, REST API) are generated once by
# the first node's `pghook install` into $LAB_DIR/secrets/$LAB_SCOPE/ (postgres 0600), the
# --secrets-dir all three nodes share — as a user copies /etc/pghook/secrets/<scope>/ from
# the first node to the others. The lab adds the app role's password (post_init) and the
# client pgpass files. Passwords travel only through pipes and files, never a command line.
gen_password() {
	head -c 96 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-24
}

# make_secrets — the secrets directory (owner and mode as install enforces them) and the
# app role's password.
make_secrets() {
	local f=$LAB_DIR/secrets/app.password
	install -d -o root -g postgres -m 0750 "$LAB_DIR/secrets"
	[[ -s $f ]] && return 0
	(umask 077 && gen_password >"$f")
	chown postgres:postgres "$f"
	chmod 0600 "$f"
}

# make_client_pgpass — after install: a pgpass for clients (root, tests) connecting over
# TCP from the client namespace, and the same as ~/.pgpass of each node's postgres user
# (HOME=nX/home), as on a real host: `pghook env` and psql over TCP as postgres find the
# password there. (Patroni uses its own pgpass file and is not affected.)
make_client_pgpass() {
	local su rep n dir=$LAB_DIR/secrets/$LAB_SCOPE
	read -r su <"$dir/superuser" || die "no superuser password in $dir (pghook install did not run?)"
	read -r rep <"$dir/replication" || die "no replication password in $dir"
	printf '*:5432:*:postgres:%s\n*:5432:*:replicator:%s\n' "$su" "$rep" |
		write_file "$LAB_DIR/secrets/client.pgpass" postgres:postgres 0600
	for n in "${LAB_NODES[@]}"; do
		write_file "$LAB_DIR/$n/home/.pgpass" postgres:postgres 0600 <"$LAB_DIR/secrets/client.pgpass"
	done
}

make_dirs() {
	local n d
	install -d -o root -g root -m 0755 "$LAB_DIR" "$LAB_DIR/bin"
	for n in "${LAB_NODES[@]}"; do
		d=$LAB_DIR/$n
		# Patroni (postgres) writes pgpass and its callbacks' output next to patroni.yml.
		install -d -o postgres -g postgres -m 0755 "$d" "$d/run" "$d/pglog"
		install -d -o postgres -g postgres -m 0700 "$d/data" "$d/home"
		# node_exporter's textfile directory: callbacks (postgres) write their last run.
		install -d -o postgres -g postgres -m 0755 "$d/textfiles"
		install -d -o root -g root -m 0700 "$d/etcd"
		touch "$d/patroni.log" "$d/etcd.log" "$d/vipwatch.log"
		chown postgres:postgres "$d/patroni.log" "$d/vipwatch.log"
		# What the VIP helper trusts: root-owned all the way down (see lab_etc_pghook), and
		# the watcher's socket directory, as the unit's RuntimeDirectory makes it.
		install -d -o root -g root -m 0755 /etc/netns "/etc/netns/$(lab_ns "$n")" "$(lab_etc_pghook "$n")"
		install -d -o root -g root -m 0755 /run/pghook-lab
		install -d -o postgres -g postgres -m 0750 "$(lab_run_dir "$n")"
		ln -sfn "$(lab_etc_pghook "$n")/pghook.yaml" "$d/pghook.yaml"
	done
	# `ip netns exec` can only bind-mount over a directory that exists.
	if [[ ! -d /etc/pghook ]]; then
		install -d -o root -g root -m 0755 /etc/pghook
		touch "$LAB_DIR/.made-etc-pghook"
	fi
	make_backup_dir
}

# make_backup_dir — the lab's "shared storage" for pghook backups (pghook backup writes
# there, every node's create-replica reads from it).
make_backup_dir() { install -d -o postgres -g postgres -m 0750 "$LAB_DIR/backups"; }

# The package is installed by `up` only when it was not installed before; this marker
# (outside LAB_DIR, which `down` removes) says so, and `down` purges it only then.
LAB_DEB_MARKER=/var/tmp/pghook-lab.deb-installed

# install_deb — LAB_FROM_DEB: install the .deb (unless pghook is installed already), and
# point $LAB_DIR/bin/pghook{,-vip} at the packaged files for callers using those paths
# (the configs name the packaged paths themselves).
install_deb() {
	local deb=${LAB_DEB:-} have want=
	have=$(dpkg-query -W -f='${Status}|${Version}' pghook 2>/dev/null | sed -n 's/^install ok installed|//p') || true
	if [[ -z $deb && -z $have ]]; then
		# shellcheck disable=SC2012 # the newest file; names are ours
		deb=$(ls -t "$HERE"/../../dist/pghook_*.deb 2>/dev/null | head -n1) || true
		[[ -n $deb ]] || die "LAB_FROM_DEB=1 but no dist/pghook_*.deb: run 'make deb' or set LAB_DEB"
	fi
	if [[ -n $deb ]]; then
		[[ -f $deb ]] || die "LAB_DEB: no such file: $deb"
		deb=$(realpath "$deb")
		want=$(dpkg-deb -f "$deb" Version) || die "LAB_DEB: not a .deb: $deb"
	fi
	if [[ -n $have && (-z $want || $have == "$want") ]]; then
		lab_log "using the installed pghook package $have"
	elif [[ -n $have && ! -e $LAB_DEB_MARKER ]]; then
		# Not ours to replace (nor, later, to purge).
		die "pghook $have is installed (not by the lab) and LAB_DEB is $want: remove it, or unset LAB_DEB to use it"
	else
		lab_log "installing $deb"
		touch "$LAB_DEB_MARKER"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >&2 ||
			die "apt-get install $deb failed ('$0 down' purges what is left)"
	fi
	[[ -x /usr/bin/pghook ]] || die "/usr/bin/pghook missing after installing the package"
	getcap /usr/lib/pghook/pghook-vip | grep -q 'cap_net_admin,cap_net_raw=ep' ||
		die "/usr/lib/pghook/pghook-vip lacks its file capabilities"
	ln -sfn /usr/bin/pghook "$LAB_DIR/bin/pghook"
	# The helper as a hard link (same inode: the package's owner, mode and file
	# capabilities, which getcap does not read through a symlink); a symlink across
	# file systems.
	ln -fn /usr/lib/pghook/pghook-vip "$LAB_DIR/bin/pghook-vip" 2>/dev/null ||
		ln -sfn /usr/lib/pghook/pghook-vip "$LAB_DIR/bin/pghook-vip"
}

# purge_deb — undo install_deb, only if it installed the package.
purge_deb() {
	[[ -e $LAB_DEB_MARKER ]] || return 0
	lab_log "purging the pghook package installed by 'up'"
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq pghook >&2 || lab_log "warning: apt-get purge pghook failed"
	rm -f "$LAB_DEB_MARKER"
}

# make_postinit_files — what `pghook post-init` applies at bootstrap: SQL files in
# $LAB_DIR/sql/$LAB_SCOPE (the app role's password is secrets/app.password).
make_postinit_files() {
	local dir=$LAB_DIR/sql/$LAB_SCOPE
	install -d -o root -g postgres -m 0750 "$LAB_DIR/sql" "$dir"
	write_file "$dir/010_lab_seed.sql" root:postgres 0640 <<'EOF'
-- applied once by pghook post-init (bootstrap.post_init), recorded in pghook.applied_sql
CREATE TABLE public.lab_seed (id int PRIMARY KEY, note text NOT NULL);
INSERT INTO public.lab_seed VALUES (1, 'seeded by pghook post-init');
EOF
	write_file "$dir/020_lab_grants.sql" root:postgres 0640 <<'EOF'
GRANT SELECT ON public.lab_seed TO app;
EOF
}

# install_pghook — copy PGHOOK_BIN into LAB_DIR (postgres may not traverse its source
# directory); replaced atomically so a callback never sees a half-written binary.
install_pghook() {
	local dst=$LAB_DIR/bin/pghook
	if [[ $LAB_FROM_DEB == 1 ]]; then install_deb; return; fi
	[[ -L $dst ]] && rm -f "$dst" # from a LAB_FROM_DEB lab
	if [[ -f $dst ]] && cmp -s "$PGHOOK_BIN" "$dst"; then return 0; fi
	install -o root -g root -m 0755 "$PGHOOK_BIN" "$dst.tmp"
	mv -f "$dst.tmp" "$dst"
}

# install_vip_helper — the privileged VIP helper, as the package installs it: a copy of
# pghook named pghook-vip, root:postgres 0750, file capabilities NET_ADMIN + NET_RAW
# (only group postgres may run it; Patroni's callbacks and the watchers run as postgres
# without any capability of their own). Replaced atomically, only when it differs.
install_vip_helper() {
	local dst
	[[ $LAB_FROM_DEB == 1 ]] && return 0 # the package's postinst did it (install_deb checks)
	dst=$(lab_vip_helper)
	[[ -L $dst ]] && rm -f "$dst"
	if [[ -f $dst ]] && cmp -s "$PGHOOK_BIN" "$dst" &&
		[[ $(stat -c %U:%G:%a "$dst") == root:postgres:750 ]] &&
		getcap "$dst" | grep -q 'cap_net_admin,cap_net_raw=ep'; then
		return 0
	fi
	install -o root -g postgres -m 0750 "$PGHOOK_BIN" "$dst.tmp"
	setcap cap_net_admin,cap_net_raw+ep "$dst.tmp" # after chown, which clears file caps
	mv -f "$dst.tmp" "$dst"
}

# vip_watch_stamp NODE — what a watcher is started from (binary, config); a running
# watcher with another stamp restarts to pick up the change.
vip_watch_stamp() {
	local bin
	bin=$(lab_vipwatch_argv | head -n1)
	cat "$bin" "$LAB_DIR/$1/pghook.yaml" | sha256sum | cut -d' ' -f1
}

# vip_up — LAB_VIP=netlink: helper, arp_announce, one watcher per node (started when dead,
# restarted when its binary or config changed). LAB_VIP=none: no watcher, no VIP.
vip_up() {
	local n stamp f
	if [[ $LAB_VIP == none ]]; then
		vip_down
		for n in "${LAB_NODES[@]}"; do
			lab_exec "$n" sysctl -q -w net.ipv4.conf.all.arp_announce=0 net.ipv4.conf.eth0.arp_announce=0 \
				net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.eth0.arp_ignore=0
		done
		[[ $LAB_FROM_DEB == 1 ]] || rm -f "$(lab_vip_helper)" # never the package's file
		return 0
	fi
	install_vip_helper
	for n in "${LAB_NODES[@]}"; do
		# A demoted node must not ARP with the VIP as sender (otherwise neighbours relearn the VIP from it);
		# arp_ignore=1: it answers ARP only for addresses on eth0, so the watcher's refusal
		# after a hand-over (a local route for the VIP) is not announced. (dns, exec: no address moves.)
		if [[ ($LAB_VIP != dns && $LAB_VIP != exec) || $LAB_TOPOLOGY == two-subnet ]]; then
			lab_exec "$n" sysctl -q -w net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_announce=2 \
				net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1
		fi
		f=$LAB_DIR/$n/vipwatch.stamp
		stamp=$(vip_watch_stamp "$n")
		if lab_pid "$n" pghook-vip >/dev/null && [[ ! -r $f || $(<"$f") != "$stamp" ]]; then
			lab_log "restarting pghook-vip watch on $n (binary or config changed)"
			lab_stop_vipwatch "$n"
		fi
		if ! lab_pid "$n" pghook-vip >/dev/null; then
			lab_start_vipwatch "$n"
			echo "$stamp" >"$f"
		fi
	done
	sleep 0.3
	for n in "${LAB_NODES[@]}"; do
		if ! lab_pid "$n" pghook-vip >/dev/null; then
			tail -n 20 "$LAB_DIR/$n/vipwatch.log" >&2
			die "pghook-vip watch on $n exited right after start (see $LAB_DIR/$n/vipwatch.log)"
		fi
	done
}

# vip_down — stop the watchers and make sure no node holds the VIP.
vip_down() {
	local n
	for n in "${LAB_NODES[@]}"; do lab_stop_vipwatch "$n"; done
	for n in "${LAB_NODES[@]}"; do lab_vip_del "$n"; done
	rm -f "$LAB_DIR"/n*/vipwatch.stamp
}

# wait_vip — LAB_VIP=netlink: the VIP is on the leader alone and answers from the client;
# LAB_VIP=dns: the primary's name answers the leader's address alone, the replicas' name
# the streaming replicas'.
wait_vip() {
	if [[ $LAB_VIP == dns ]]; then
		lab_wait "$LAB_TIMEOUT" "$LAB_DNS_NAME to name the leader alone" lab_dns_on_leader ||
			fail_up all "$LAB_DNS_NAME answers '$(lab_dns_answer)', leader $(lab_leader || echo none)"
		lab_wait "$LAB_TIMEOUT" "$LAB_DNS_REPLICAS to name the replicas" lab_dns_replicas_right ||
			fail_up all "$LAB_DNS_REPLICAS answers '$(lab_dns_answer "$LAB_DNS_REPLICAS")'"
		lab_log "$LAB_DNS_NAME -> $(lab_dns_answer); $LAB_DNS_REPLICAS -> $(lab_dns_answer "$LAB_DNS_REPLICAS")"
		return 0
	fi
	if [[ $LAB_VIP == exec ]]; then
		lab_wait "$LAB_TIMEOUT" "the cloud API to assign $LAB_CLOUD_ADDR to the leader" lab_cloud_on_leader ||
			fail_up all "the cloud API assigns $LAB_CLOUD_ADDR to '$(lab_cloud_holder || echo nobody)', leader $(lab_leader || echo none)"
		lab_log "cloud API: $LAB_CLOUD_ADDR assigned to $(lab_cloud_holder)"
		return 0
	fi
	[[ $LAB_VIP == netlink || $LAB_VIP_TOOL != pghook ]] || return 0
	lab_wait "$LAB_TIMEOUT" "the VIP on the leader alone" lab_vip_on_leader ||
		fail_up all "VIP not on the leader alone (holders: '$(lab_vip_holders)', leader $(lab_leader || echo none))"
	lab_wait 30 "the VIP to answer from the client namespace" lab_vip_probe ||
		fail_up all "the VIP $LAB_VIP_ADDR does not answer from $(lab_ns "$LAB_CLIENT")"
	lab_log "VIP $LAB_VIP_ADDR on $(lab_vip_holders)"
}

# --- LAB_VIP_TOOL=shell | vip-manager (bench/vip-lab.sh) ---------------------------------

# write_shell_callback — the shell VIP callback (as bench/vip-shell-callback.sh): Patroni
# calls it with ACTION ROLE SCOPE.
write_shell_callback() {
	write_file "$LAB_DIR/bin/vip-shell-callback.sh" root:root 0755 <<EOF
#!/bin/sh
# Generated by e2e/lab/lab.sh (LAB_VIP_TOOL=shell).
VIP=$LAB_VIP_ADDR PREFIX=$LAB_VIP_PREFIX IFACE=$LAB_VIP_IF
action=\$1 role=\$2
case \$action in
on_start|on_role_change)
	case \$role in
	master|primary)
		ip addr add "\$VIP/\$PREFIX" dev "\$IFACE" 2>/dev/null
		arping -q -U -S "\$VIP" -i "\$IFACE" -c 1 "\$VIP" || true ;;
	*) ip addr del "\$VIP/\$PREFIX" dev "\$IFACE" 2>/dev/null || true ;;
	esac ;;
on_stop) ip addr del "\$VIP/\$PREFIX" dev "\$IFACE" 2>/dev/null || true ;;
esac
exit 0
EOF
}

# vipmgr_up — one vip-manager 1.0.2 per node, as root in the node's namespace, reading the
# leader key through the node's own etcd (v2 API).
vipmgr_up() {
	local n d
	for n in "${LAB_NODES[@]}"; do
		lab_pid "$n" vip-manager >/dev/null && continue
		d=$LAB_DIR/$n
		touch "$d/vip-manager.log"
		(lab__close_fds && cd / && exec ip netns exec "$(lab_ns "$n")" "${LAB__SETSID[@]}" env -i PATH="$LAB_PATH" \
			vip-manager --ip "$LAB_VIP_ADDR" --netmask "$LAB_VIP_PREFIX" --interface "$LAB_VIP_IF" \
			--trigger-key "$LAB_NAMESPACE/$LAB_SCOPE/leader" --trigger-value "$n" \
			--dcs-type etcd --dcs-endpoints http://127.0.0.1:2379 --interval "$LAB_VIPMGR_INTERVAL" \
			</dev/null >>"$d/vip-manager.log" 2>&1) &
		echo $! >"$(lab_pidfile "$n" vip-manager)"
	done
	sleep 0.3
	for n in "${LAB_NODES[@]}"; do
		lab_pid "$n" vip-manager >/dev/null || die "vip-manager on $n exited right after start (see $LAB_DIR/$n/vip-manager.log)"
	done
}

vipmgr_down() {
	local n pid
	for n in "${LAB_NODES[@]}"; do
		if pid=$(lab_pid "$n" vip-manager); then
			kill -TERM "$pid" 2>/dev/null || true
			lab_wait 5 "vip-manager on $n to stop" lab__gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$(lab_pidfile "$n" vip-manager)"
	done
}

# tool_vip_up — what LAB_VIP_TOOL needs besides Patroni (pghook: vip_up as always).
tool_vip_up() {
	local n
	case $LAB_VIP_TOOL in
	pghook) vip_up ;;
	shell)
		# No watchers; the VIP is the callbacks' business (vip_down would remove it).
		for n in "${LAB_NODES[@]}"; do lab_stop_vipwatch "$n"; done
		rm -f "$(lab_vip_helper)" ;;
	vip-manager)
		for n in "${LAB_NODES[@]}"; do lab_stop_vipwatch "$n"; done
		rm -f "$(lab_vip_helper)"
		vipmgr_up ;;
	esac
}

# --- LAB_VIP=dns: BIND 9 in its own namespace ---------------------------------------------

# dns_up — named as the zone's primary in namespace pgh-dns, on the lab's bridge, with a
# TSIG key whose update-policy grants the primary's and the replicas' names (A, AAAA) and
# nothing else; the key file, as the dns backend wants it (root:postgres 0640), in each
# node's /etc/pghook. The zone's SOA minimum (negative answers' TTL) is 1 s. named logs
# every update and every refused prerequisite to $LAB_DIR/dns/named.log. No-op if running.
dns_up() {
	local d n
	d=$(lab_dns_dir)
	if lab_pid dns named >/dev/null; then return 0; fi
	id bind >/dev/null 2>&1 || die "user bind missing (run scripts/deps.sh: bind9)"
	install -d -o root -g root -m 0755 "$d"
	install -d -o root -g bind -m 0750 "$d/etc"
	install -d -o bind -g bind -m 0770 "$d/zones" "$d/run"
	if [[ ! -s $d/etc/$LAB_DNS_KEY.key ]]; then
		tsig-keygen -a hmac-sha256 "$LAB_DNS_KEY" | write_file "$d/etc/$LAB_DNS_KEY.key" root:bind 0640
	fi
	write_file "$d/etc/named.conf" root:bind 0640 <<EOF
include "$d/etc/$LAB_DNS_KEY.key";
options {
	directory "$d/zones";
	pid-file "$d/run/named.pid";
	session-keyfile "$d/run/session.key";
	listen-on port 53 { $(lab_ip dns); };
	listen-on-v6 { none; };
	recursion no; allow-query { any; }; allow-transfer { none; };
	dnssec-validation no; notify no;
};
controls { };
zone "${LAB_DNS_ZONE%.}" {
	type primary; file "zone.db";
	update-policy { grant $LAB_DNS_KEY name $LAB_DNS_NAME A AAAA; grant $LAB_DNS_KEY name $LAB_DNS_REPLICAS A AAAA; };
};
EOF
	if [[ ! -e $d/zones/zone.db ]]; then
		printf '$TTL 30\n@ IN SOA ns1.%s hostmaster.%s (1 3600 600 86400 1)\n@ IN NS ns1.%s\nns1 IN A %s\n' \
			"$LAB_DNS_ZONE" "$LAB_DNS_ZONE" "$LAB_DNS_ZONE" "$(lab_ip dns)" | write_file "$d/zones/zone.db" bind:bind 0640
	fi
	for n in "${LAB_NODES[@]}"; do
		write_file "$(lab_etc_pghook "$n")/tsig-$LAB_SCOPE.key" root:postgres 0640 <"$d/etc/$LAB_DNS_KEY.key"
	done
	touch "$d/named.log"
	(lab__close_fds && cd / && exec ip netns exec "$(lab_ns dns)" "${LAB__SETSID[@]}" env -i PATH="$LAB_PATH" \
		/usr/sbin/named -g -4 -u bind -c "$d/etc/named.conf" </dev/null >>"$d/named.log" 2>&1) &
	echo $! >"$(lab_pidfile dns named)"
	lab_wait 20 "named to answer for $LAB_DNS_ZONE" lab_dns_answer "$LAB_DNS_ZONE" ||
		{ tail -n 20 "$d/named.log" >&2; die "named did not start (see $d/named.log)"; }
	lab_log "named serves $LAB_DNS_ZONE on $(lab_ip dns)"
}

# dns_down — stop named (its namespace goes with net_down).
dns_down() {
	local pid
	if pid=$(lab_pid dns named); then
		kill -TERM "$pid" 2>/dev/null || true
		lab_wait 10 "named to stop" lab__gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$(lab_pidfile dns named)"
}

# write_install_yaml — the cluster-wide settings every node's `pghook install --from` reads
# (as packaging/deb/examples/install.yaml on a real cluster); per-node settings are flags.
write_install_yaml() {
	write_file "$LAB_DIR/install.yaml" root:root 0644 <<EOF
# Generated by e2e/lab/lab.sh: the settings shared by every node's \`pghook install\`.
scope: $LAB_SCOPE
namespace: $LAB_NAMESPACE/
dcs: $LAB_DCS
layout: seed
interface: eth0
network: $LAB_HBA_NET
members: [$(lab_ip n1), $(lab_ip n2), $(lab_ip n3)]
backup-dir: $LAB_DIR/backups
secrets-dir: $LAB_DIR/secrets
# The scheduled backup's timer and service land, unused, in each node's systemd directory;
# e2e/schedule_test.go runs the service's command line on every node as the timer would.
backup-schedule: hourly
# loop_wait + 2 * retry_timeout <= ttl (install enforces it; 3.0.2 does not).
ttl: 10
loop-wait: 2
retry-timeout: 4
watchdog: "off"
# A reinit must rebuild: with keep_data Patroni 3.0.2 leaves the old data directory in
# place ("Leaving data directory uncleaned") and pghook would adopt a standby's copy.
keep-data: false
EOF
}

# scope_install S NODE [ARGS...] — `pghook install` of scope S (main | sa, lib.sh's
# lab_scope_*) run in NODE's namespace (its facts: eth0's address and network), with what
# both scopes share: the node's own etcd first (it stays reachable when the node's link is
# cut), the node's pghook.yaml, socket directory and binaries, the scope's own files in
# lab_scope_dir (patroni.yml, pgpass, install state, the unused systemd and sysctl files)
# and PostgreSQL's log there. ARGS are the scope's own settings. The output is appended to
# the scope's install.log and left in INSTALL_OUT.
INSTALL_OUT=
scope_install() {
	local s=$1 node=$2 d sd n eps; shift 2
	d=$LAB_DIR/$node; sd=$(lab_scope_dir "$s" "$node")
	eps=http://$(lab_ip "$node"):2379
	for n in "${LAB_NODES[@]}"; do [[ $n == "$node" ]] || eps+=,http://$(lab_ip "$n"):2379; done
	if ! INSTALL_OUT=$(cd / && lab_exec "$node" env -i PATH="$LAB_PATH" LANG=C.UTF-8 "$(lab_pghook)" install \
		--name "$node" --etcd-endpoints "$eps" \
		--patroni-config "$sd/patroni.yml" --pghook-config "$(lab_etc_pghook "$node")/pghook.yaml" \
		--pgpass "$sd/pgpass" --socket-dir "$d/run" --state-file "$sd/install-state.json" \
		--systemd-dir "$sd/systemd" --sysctl-dir "$sd/sysctl.d" \
		--pghook-bin "$(lab_pghook)" --vip-helper "$(lab_vip_helper)" \
		--pg-parameter logging_collector=on --pg-parameter "log_directory=$sd/pglog" \
		--pg-parameter log_filename=postgresql.log "$@" 2>&1); then
		printf '%s\n' "$INSTALL_OUT" >&2
		die "pghook install of $(lab_scope_name "$s") failed on $node"
	fi
	printf '%s\n' "$INSTALL_OUT" >>"$sd/install.log"
}

# configure_node NODE — NODE's patroni.yml and pghook.yaml, written by `pghook install` run
# in NODE's namespace (its facts: eth0's address and network), with NODE's own paths (the
# three nodes share one file system): $LAB_DIR/NODE/{patroni.yml,pghook.yaml,data,run,pgpass}.
# Its systemd unit and sysctl drop-in land, unused, in $LAB_DIR/NODE/{systemd,sysctl.d}.
configure_node() {
	local node=$1 d ip out args=()
	d=$LAB_DIR/$node
	ip=$(lab_ip "$node")
	# The lab's own keys of pghook.yaml (install manages patroni_config, vip and vip_helper
	# and keeps the others), written before the first install as a user would add them:
	# the roster in the node's HOME, and post_init (the rewind user defaults to
	# authentication.rewind of patroni.yml).
	if [[ ! -e $d/pghook.yaml ]]; then
		write_file "$(lab_etc_pghook "$node")/pghook.yaml" root:postgres 0640 <<EOF
pgtab: $d/home/.pgtab
run_dir: $(lab_run_dir "$node")
metrics_textfile_dir: $d/textfiles
scopes:
  $LAB_SCOPE:
    vip:
      metrics_listen: $ip:$LAB_METRICS_PORT
    post_init:
      roles:
        - {name: app, login: true, password_file: $LAB_DIR/secrets/app.password}
      databases:
        - {name: appdb, owner: app}
      sql_dir: $LAB_DIR/sql/$LAB_SCOPE
EOF
	fi
	# log_connections shows who connects (e.g. pg_rewind as the rewind user, in the
	# leader's log).
	args=(--from "$LAB_DIR/install.yaml" --data-dir "$d/data"
		--pg-parameter max_connections=50 --pg-parameter shared_buffers=32MB
		--pg-parameter log_file_mode=0640
		"--pg-parameter=log_line_prefix=%m [%p] %q%u@%d "
		--pg-parameter log_connections=on)
	if [[ $LAB_TOPOLOGY == two-subnet ]]; then
		mapfile -t -O "${#args[@]}" args < <(subnets_install_args)
	elif [[ $LAB_VIP == netlink ]]; then
		args+=(--vip "$LAB_VIP_ADDR/$LAB_VIP_PREFIX" --vip-interface "$LAB_VIP_IF" --vip-label vip)
	elif [[ $LAB_VIP == dns ]]; then
		args+=(--dns-name "$LAB_DNS_NAME" --dns-zone "$LAB_DNS_ZONE" --dns-server "$(lab_ip dns)"
			--dns-replica-name "$LAB_DNS_REPLICAS" --tsig-key-file "/etc/pghook/tsig-$LAB_SCOPE.key"
			--vip-interface "$LAB_VIP_IF")
	elif [[ $LAB_VIP == exec ]]; then
		mapfile -t -O "${#args[@]}" args < <(cloud_install_args)
	else
		args+=(--vip-backend none)
	fi
	[[ $LAB_VIP_TOOL == shell ]] && args+=(--callback "$LAB_DIR/bin/vip-shell-callback.sh")
	: >"$d/install.log"
	scope_install main "$node" "${args[@]}"
	out=$INSTALL_OUT
	grep -q '^pghook install: scope .*: unchanged' <<<"$out" || lab_log "$node: $(grep '^pghook install: ' <<<"$out")"
	if grep -q "updated .*$d/patroni.yml" <<<"$out"; then CHANGED_FILES+=("$d/patroni.yml"); fi
	return 0
}

write_lab_env() {
	write_file "$LAB_DIR/lab.env" root:root 0644 <<EOF
LAB_DCS=$LAB_DCS
LAB_SCOPE=$LAB_SCOPE
LAB_VIP=$LAB_VIP
LAB_TOPOLOGY=$LAB_TOPOLOGY
LAB_FROM_DEB=$LAB_FROM_DEB
EOF
	if [[ $LAB_VIP_TOOL != pghook ]]; then
		printf 'LAB_VIP_TOOL=%s\nLAB_VIPMGR_INTERVAL=%s\n' "$LAB_VIP_TOOL" "$LAB_VIPMGR_INTERVAL" >>"$LAB_DIR/lab.env"
	fi
}

# ---------------------------------------------------------------------------------------
# network
# ---------------------------------------------------------------------------------------

# disable_ipv6 NS|"" IFACE — no IPv6 on lab links: link-local DAD/RS/MLD packets would be
# traffic outside 10.251.77.0/24. Must happen before the link goes up.
disable_ipv6() {
	local ns=$1 p=/proc/sys/net/ipv6/conf/$2/disable_ipv6
	if [[ -z $ns ]]; then
		[[ -w $p ]] && echo 1 >"$p"
	else
		ip netns exec "$ns" sh -c "[ -w '$p' ] && echo 1 > '$p'"
	fi
	return 0
}

net_up() {
	local n ns veth
	if [[ $LAB_TOPOLOGY == two-subnet ]]; then subnets_net_up; return; fi
	if ! ip link show "$LAB_BRIDGE" >/dev/null 2>&1; then
		ip link add "$LAB_BRIDGE" type bridge stp_state 0 forward_delay 0
	fi
	disable_ipv6 "" "$LAB_BRIDGE"
	ip addr replace "$LAB_BRIDGE_IP/24" dev "$LAB_BRIDGE"
	ip link set "$LAB_BRIDGE" up
	for n in $(net_members); do
		ns=$(lab_ns "$n")
		veth=$(lab_veth "$n")
		ns_exists "$ns" || ip netns add "$ns"
		ip -n "$ns" link set lo up
		# New interfaces in the namespace inherit "default": no IPv6 on eth0 from birth.
		# shellcheck disable=SC2016 # $f is for the inner sh
		ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/default/disable_ipv6 /proc/sys/net/ipv6/conf/all/disable_ipv6; do [ -w $f ] && echo 1 > $f; done; true'
		if ! ip link show "$veth" >/dev/null 2>&1; then
			ip link add "$veth" type veth peer name eth0 netns "$ns"
		fi
		disable_ipv6 "" "$veth"
		ip link set "$veth" master "$LAB_BRIDGE"
		ip link set "$veth" up
		ip -n "$ns" addr replace "$(lab_ip "$n")/24" dev eth0
		ip -n "$ns" link set eth0 up
	done
}

# kill_ns_pids NS — kill whatever still runs in NS (stray callbacks, backends, …).
kill_ns_pids() {
	local ns=$1 pids
	pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
	[[ -n ${pids// /} ]] || return 0
	lab_log "killing leftover processes in $ns: $pids"
	# shellcheck disable=SC2086 # word splitting of the pid list is intended
	kill -TERM $pids 2>/dev/null || true
	local _
	for _ in $(seq 1 20); do
		[[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && return 0
		sleep 0.25
	done
	pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ') || true
	# shellcheck disable=SC2086
	[[ -n ${pids// /} ]] && kill -KILL $pids 2>/dev/null
	sleep 0.2
	return 0
}

net_down() {
	local n ns veth
	if [[ $LAB_TOPOLOGY == two-subnet ]]; then subnets_net_down; return; fi
	for n in $(net_members); do
		ns=$(lab_ns "$n")
		veth=$(lab_veth "$n")
		if ns_exists "$ns"; then
			kill_ns_pids "$ns"
			ip netns del "$ns"
		fi
		# Deleting the namespace destroys its veth end and with it ours, asynchronously: the
		# link may vanish between the check and the delete (a failure here would abort `down`
		# and leave the bridge behind).
		if ip link show "$veth" >/dev/null 2>&1; then ip link del "$veth" 2>/dev/null || true; fi
	done
	if ip link show "$LAB_BRIDGE" >/dev/null 2>&1; then ip link del "$LAB_BRIDGE"; fi
}

# ---------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------

fail_up() {
	local what=$1; shift
	lab_log "error: $*"
	lab_dump_logs "$what" 40
	lab_log "the lab is left as it is for inspection; run '$0 down' to remove it"
	exit 1
}

print_list() {
	lab_patronictl list 2>&1 || lab_patronictl_on n2 list 2>&1 || true
}

cmd_up() {
	local t0=$SECONDS n prev_dcs prev_scope prev_deb prev_tool prev_vip prev_topo
	case $LAB_FROM_DEB in 0 | 1) ;; *) die "LAB_FROM_DEB must be 0 or 1, not '$LAB_FROM_DEB'" ;; esac
	if [[ $LAB_FROM_DEB == 0 ]]; then
		[[ -n ${PGHOOK_BIN:-} ]] || die "PGHOOK_BIN must name the pghook binary (absolute path), e.g. PGHOOK_BIN=\$PWD/bin/pghook"
		[[ $PGHOOK_BIN == /* ]] || die "PGHOOK_BIN must be an absolute path: $PGHOOK_BIN"
		[[ -f $PGHOOK_BIN && -x $PGHOOK_BIN ]] || die "PGHOOK_BIN is not an executable file: $PGHOOK_BIN"
	fi
	case $LAB_DCS in etcd | etcd3) ;; *) die "LAB_DCS must be etcd3 or etcd, not '$LAB_DCS'" ;; esac
	case $LAB_VIP in netlink | dns | exec | none) ;; *) die "LAB_VIP must be netlink, dns, exec or none, not '$LAB_VIP'" ;; esac
	case $LAB_TOPOLOGY in one-subnet | two-subnet) ;; *) die "LAB_TOPOLOGY must be one-subnet or two-subnet, not '$LAB_TOPOLOGY'" ;; esac
	if [[ $LAB_VIP == dns ]]; then
		for n in named tsig-keygen dig; do command -v "$n" >/dev/null || [[ -x /usr/sbin/$n ]] || die "$n not found (run scripts/deps.sh: bind9, bind9-dnsutils)"; done
	fi
	case $LAB_VIP_TOOL in
	pghook) ;;
	shell | vip-manager)
		LAB_VIP=none # pghook's VIP backend none, no pghook-vip watchers
		[[ $LAB_VIP_TOOL == vip-manager && $LAB_DCS != etcd ]] &&
			die "LAB_VIP_TOOL=vip-manager needs LAB_DCS=etcd (vip-manager 1.0.2 reads the etcd v2 API)"
		[[ $LAB_VIPMGR_INTERVAL =~ ^[0-9]+$ ]] || die "LAB_VIPMGR_INTERVAL must be milliseconds"
		for n in ip arping; do command -v "$n" >/dev/null || die "$n not found"; done
		[[ $LAB_VIP_TOOL == shell ]] || command -v vip-manager >/dev/null || die "vip-manager not found (apt-get install vip-manager)"
		;;
	*) die "LAB_VIP_TOOL must be pghook, shell or vip-manager, not '$LAB_VIP_TOOL'" ;;
	esac
	[[ $LAB_SCOPE =~ ^[A-Za-z0-9_-]+$ ]] || die "LAB_SCOPE must be [A-Za-z0-9_-]+"
	for n in etcd etcdctl patroni patronictl setpriv psql curl jq sysctl; do
		command -v "$n" >/dev/null || die "$n not found (run scripts/deps.sh)"
	done
	[[ -x $LAB_PG_BIN/postgres ]] || die "PostgreSQL 15 not found in $LAB_PG_BIN"
	if [[ $LAB_VIP == netlink ]] && ! command -v setcap >/dev/null; then
		die "setcap not found (run scripts/deps.sh: libcap2-bin)"
	fi

	if [[ -r $LAB_DIR/lab.env ]]; then
		prev_dcs=$(sed -n 's/^LAB_DCS=//p' "$LAB_DIR/lab.env")
		prev_scope=$(sed -n 's/^LAB_SCOPE=//p' "$LAB_DIR/lab.env")
		prev_deb=$(sed -n 's/^LAB_FROM_DEB=//p' "$LAB_DIR/lab.env")
		prev_tool=$(sed -n 's/^LAB_VIP_TOOL=//p' "$LAB_DIR/lab.env")
		prev_vip=$(sed -n 's/^LAB_VIP=//p' "$LAB_DIR/lab.env")
		prev_topo=$(sed -n 's/^LAB_TOPOLOGY=//p' "$LAB_DIR/lab.env")
		[[ ${prev_topo:-one-subnet} == "$LAB_TOPOLOGY" ]] ||
			die "the lab in $LAB_DIR runs LAB_TOPOLOGY=${prev_topo:-one-subnet}; run '$0 down' first to switch"
		[[ $prev_vip == "$LAB_VIP" || ($prev_vip != dns && $LAB_VIP != dns && $prev_vip != exec && $LAB_VIP != exec) ]] ||
			die "the lab in $LAB_DIR runs LAB_VIP=$prev_vip; run '$0 down' first to switch to or from dns or exec"
		[[ ${prev_tool:-pghook} == "$LAB_VIP_TOOL" ]] ||
			die "the lab in $LAB_DIR runs LAB_VIP_TOOL=${prev_tool:-pghook}; run '$0 down' first to switch"
		[[ $prev_dcs == "$LAB_DCS" && $prev_scope == "$LAB_SCOPE" && ${prev_deb:-0} == "$LAB_FROM_DEB" ]] ||
			die "the lab in $LAB_DIR runs LAB_DCS=$prev_dcs LAB_SCOPE=$prev_scope LAB_FROM_DEB=${prev_deb:-0}; run '$0 down' first to switch"
	fi

	# Fast path: everything runs and is healthy — only refresh the pghook copies, the
	# configs (rewritten only when they differ) and the VIP watchers.
	if lab_all_running && lab_etcd_healthy && lab_healthy; then
		install_pghook
		write_lab_env
		make_backup_dir
		make_postinit_files
		[[ $LAB_VIP_TOOL == shell ]] && write_shell_callback
		for n in "${LAB_NODES[@]}"; do
			[[ -e $LAB_DIR/$n/install-state.json ]] ||
				die "the lab in $LAB_DIR was configured by an older lab.sh (not by pghook install): run '$0 down' first"
		done
		make_secrets
		if [[ $LAB_VIP == dns ]]; then dns_up; fi
		if [[ $LAB_VIP == exec ]]; then cloud_up || die "the cloud API did not start"; fi
		write_install_yaml
		for n in "${LAB_NODES[@]}"; do configure_node "$n"; done
		make_client_pgpass
		if [[ " ${CHANGED_FILES[*]} " == *patroni.yml* ]]; then
			# A lab from an older lab.sh: apply the new patroni.yml (listen needs a restart,
			# done in place by Patroni, leader first, no failover).
			lab_log "patroni.yml changed: reloading and restarting the cluster in place"
			lab_patronictl reload "$LAB_SCOPE" --force >&2
			sleep 3
			lab_patronictl restart "$LAB_SCOPE" --force >&2
			lab_wait_healthy "$LAB_TIMEOUT" || fail_up patroni "unhealthy after the restart"
		fi
		tool_vip_up
		wait_vip
		lab_log "already up (LAB_DCS=$LAB_DCS, LAB_VIP=$LAB_VIP, leader $(lab_leader))"
		print_list
		return 0
	fi

	lab_log "bringing the lab up in $LAB_DIR (LAB_DCS=$LAB_DCS, LAB_VIP=$LAB_VIP, scope $LAB_SCOPE)"
	make_dirs
	make_secrets
	write_lab_env
	install_pghook
	make_postinit_files
	[[ $LAB_VIP_TOOL == shell ]] && write_shell_callback
	net_up
	if [[ $LAB_VIP == dns ]]; then dns_up; fi
	if [[ $LAB_VIP == exec ]]; then cloud_up || fail_up all "the cloud API did not start"; fi
	write_install_yaml
	for n in "${LAB_NODES[@]}"; do configure_node "$n"; done
	make_client_pgpass

	# etcd members block until they have a quorum, so all three start together.
	for n in "${LAB_NODES[@]}"; do lab_start_etcd "$n"; done
	lab_wait "$LAB_TIMEOUT" "3 healthy etcd members" lab_etcd_healthy ||
		fail_up etcd "etcd did not become healthy"
	lab_log "etcd healthy after $((SECONDS - t0))s"
	# Watchers before Patroni: the VIP follows the very first leader too.
	tool_vip_up

	# Patroni races for the initialize key; the winner runs initdb, the others clone.
	for n in "${LAB_NODES[@]}"; do lab_start_patroni "$n"; done
	sleep 0.5
	for n in "${LAB_NODES[@]}"; do
		lab_pid "$n" patroni >/dev/null || fail_up patroni "Patroni on $n exited right after start"
	done
	lab_wait "$LAB_TIMEOUT" "a Patroni leader" lab_leader ||
		fail_up patroni "no Patroni leader"
	lab_log "leader $(lab_leader) after $((SECONDS - t0))s"
	lab_wait_healthy "$LAB_TIMEOUT" ||
		fail_up patroni "replicas are not streaming (leader $(lab_leader || echo none): $(lab_streaming_count "$(lab_leader)" 2>/dev/null || echo '?') streaming)"
	wait_vip
	lab_log "up in $((SECONDS - t0))s"
	print_list
}

# lab_all_running — namespaces exist and every pid file names a live process.
lab_all_running() {
	local n ns
	for ns in $(all_ns); do ns_exists "$ns" || return 1; done
	for n in "${LAB_NODES[@]}"; do
		lab_pid "$n" etcd >/dev/null || return 1
		lab_pid "$n" patroni >/dev/null || return 1
	done
}

# lab_anything_exists — any trace of the lab on this host.
lab_anything_exists() {
	local ns
	[[ -e $LAB_DIR ]] && return 0
	ip link show "$LAB_BRIDGE" >/dev/null 2>&1 && return 0
	for ns in $(all_ns); do ns_exists "$ns" && return 0; done
	return 1
}

# free_stale_shm NODE — a SIGKILLed postmaster leaves its SysV segment behind; its id is
# on line 7 of postmaster.pid. Remove it once nothing is attached.
free_stale_shm() {
	local f=$LAB_DIR/$1/data/postmaster.pid shmid
	[[ -r $f ]] || return 0
	lab_postmaster_pid "$1" >/dev/null && return 0
	shmid=$(awk 'NR==7 {print $2}' "$f")
	[[ $shmid =~ ^[0-9]+$ ]] || return 0
	# ipcs -m: key shmid owner perms bytes nattch status
	if ipcs -m | awk -v id="$shmid" '$2 == id && $3 == "postgres" && $6 == 0 {found=1} END {exit !found}'; then
		ipcrm -m "$shmid" 2>/dev/null || true
	fi
}

cmd_down() {
	local t0=$SECONDS n
	if ! lab_anything_exists; then
		purge_deb
		lab_log "already down"
		return 0
	fi
	lab_log "taking the lab down"
	if [[ -d $LAB_DIR ]]; then
		# Patroni first, all at once (each stops its PostgreSQL and runs on_stop); then etcd,
		# which Patroni needs to release its leader key cleanly.
		for n in "${LAB_NODES[@]}"; do lab_signal_patroni "$n" TERM; done
		for n in "${LAB_NODES[@]}"; do lab_wait_patroni_stopped "$n" 30; done
		lab_log "Patroni and PostgreSQL stopped after $((SECONDS - t0))s"
		# Patroni's on_stop released the VIP; then the watchers (they leave the VIP as it
		# is) and whatever is left of it. (vip-manager, LAB_VIP_TOOL=vip-manager, first.)
		vipmgr_down
		lab_metrics_down
		vip_down
		dns_down
		cloud_down
		# etcd followers first, the etcd leader last: stopped all at once, the leader spends
		# ~7 s trying to hand its leadership to members that are going away too.
		local eleader
		eleader=$(lab_etcd_leader_node 2>/dev/null) || eleader=
		for n in "${LAB_NODES[@]}"; do [[ $n == "$eleader" ]] || lab_signal_etcd_term "$n"; done
		for n in "${LAB_NODES[@]}"; do [[ $n == "$eleader" ]] || lab_stop_etcd "$n" 10; done
		[[ -n $eleader ]] && lab_stop_etcd "$eleader" 10
		lab_log "etcd stopped after $((SECONDS - t0))s"
	fi
	net_down
	for n in "${LAB_NODES[@]}"; do
		rm -rf --one-file-system "$(lab_etc_pghook "$n")"
		rm -rf --one-file-system "$(lab_sa_etc_postgresql "$n")" # standalone-up's
		rmdir "/etc/netns/$(lab_ns "$n")" 2>/dev/null || true
	done
	rm -rf --one-file-system /run/pghook-lab
	if [[ -d $LAB_DIR ]]; then
		for n in "${LAB_NODES[@]}"; do free_stale_shm "$n"; done
		# A machine restarted with the lab up keeps LAB_DIR but may have lost these
		# (or they may hold what someone else put there since): neither stops the down.
		if [[ -e $LAB_DIR/.made-etc-pghook ]]; then rmdir /etc/pghook 2>/dev/null || true; fi
		if [[ -e $LAB_DIR/.made-etc-postgresql ]]; then rmdir /etc/postgresql 2>/dev/null || true; fi
		rm -rf --one-file-system "$LAB_DIR"
	fi
	purge_deb
	lab_log "down in $((SECONDS - t0))s"
}

lab_signal_etcd_term() {
	local pid
	pid=$(lab_pid "$1" etcd) || return 0
	kill -TERM "$pid" 2>/dev/null || true
}

cmd_status() {
	local n ns rc=0 pid role line
	if ! lab_anything_exists; then
		echo "lab is down"
		exit 3
	fi
	echo "LAB_DIR=$LAB_DIR LAB_DCS=$LAB_DCS LAB_SCOPE=$LAB_SCOPE LAB_VIP=$LAB_VIP"
	ip -br addr show "$LAB_BRIDGE" 2>/dev/null || { echo "bridge $LAB_BRIDGE: missing"; rc=1; }
	for ns in $(all_ns); do ns_exists "$ns" || { echo "namespace $ns: missing"; rc=1; }; done
	printf '%-4s %-8s %-8s %-10s %-10s %-8s\n' NODE ETCD PATRONI POSTMASTER VIPWATCH ROLE
	for n in "${LAB_NODES[@]}"; do
		line=$(printf '%-4s' "$n")
		for pid in "$(lab_pid "$n" etcd || echo -)" "$(lab_pid "$n" patroni || echo -)"; do
			line+=$(printf ' %-8s' "$pid")
			[[ $pid == - ]] && rc=1
		done
		line+=$(printf ' %-10s' "$(lab_postmaster_pid "$n" || echo -)")
		pid=$(lab_pid "$n" pghook-vip || echo -)
		[[ $LAB_VIP != none && $pid == - ]] && rc=1
		line+=$(printf ' %-10s' "$pid")
		role=$(lab_role "$n" || true)
		line+=" ${role:--}"
		echo "$line"
	done
	echo
	lab_etcdctl endpoint status -w table 2>&1 || rc=1
	echo
	print_list
	if [[ $LAB_VIP == netlink ]]; then
		echo "VIP $LAB_VIP_ADDR held by: $(lab_vip_holders)"
		lab_vip_on_leader || rc=1
	elif [[ $LAB_VIP == dns ]]; then
		echo "$LAB_DNS_NAME -> $(lab_dns_answer || echo '?'); $LAB_DNS_REPLICAS -> $(lab_dns_answer "$LAB_DNS_REPLICAS" || echo '?')"
		lab_dns_on_leader || rc=1
	elif [[ $LAB_VIP == exec ]]; then
		echo "cloud API: $LAB_CLOUD_ADDR assigned to $(lab_cloud_holder || echo nobody)"
		lab_cloud_on_leader || rc=1
	fi
	if lab_healthy; then
		echo "healthy: leader $(lab_leader), $(lab_streaming_count "$(lab_leader)") replicas streaming"
	else
		echo "NOT healthy (leader: $(lab_leader 2>/dev/null || echo none))"
		rc=1
	fi
	exit "$rc"
}

cmd_env() {
	local n dcs=$LAB_DCS scope=$LAB_SCOPE vip=$LAB_VIP N
	# A running lab's own settings win over the caller's environment.
	if [[ -r $LAB_DIR/lab.env ]]; then
		dcs=$(sed -n 's/^LAB_DCS=//p' "$LAB_DIR/lab.env")
		scope=$(sed -n 's/^LAB_SCOPE=//p' "$LAB_DIR/lab.env")
		vip=$(sed -n 's/^LAB_VIP=//p' "$LAB_DIR/lab.env")
		vip=${vip:-none} # a lab from before LAB_VIP existed
	fi
	# Plain KEY=value when the value is shell-safe (easy to parse from Go), else quoted.
	kv() {
		if [[ $2 =~ ^[A-Za-z0-9_./:,=@+-]*$ ]]; then
			printf '%s=%s\n' "$1" "$2"
		else
			printf '%s=%q\n' "$1" "$2"
		fi
	}
	kv LAB_DIR "$LAB_DIR"
	kv LAB_DCS "$dcs"
	kv LAB_SCOPE "$scope"
	kv LAB_NAMESPACE "$LAB_NAMESPACE"
	kv LAB_NODES "$(IFS=,; echo "${LAB_NODES[*]}")"
	kv LAB_NET "$LAB_NET.0/24"
	kv LAB_BRIDGE "$LAB_BRIDGE"
	kv LAB_BRIDGE_IP "$LAB_BRIDGE_IP"
	kv LAB_VIP "$vip"
	[[ $LAB_VIP_TOOL == pghook ]] || kv LAB_VIP_TOOL "$LAB_VIP_TOOL"
	kv LAB_VIP_ADDR "$LAB_VIP_ADDR"
	kv LAB_VIP_CIDR "$LAB_VIP_ADDR/$LAB_VIP_PREFIX"
	if [[ $vip == dns ]]; then
		kv LAB_DNS_SERVER "$(lab_ip dns)"
		kv LAB_DNS_ZONE "$LAB_DNS_ZONE"
		kv LAB_DNS_NAME "$LAB_DNS_NAME"
		kv LAB_DNS_REPLICAS "$LAB_DNS_REPLICAS"
		kv LAB_DNS_LOG "$(lab_dns_dir)/named.log"
	fi
	if [[ $vip == exec ]]; then
		kv LAB_CLOUD_URL "$(lab_cloud_url)"
		kv LAB_CLOUD_ADDR "$LAB_CLOUD_ADDR"
		kv LAB_CLOUD_LEASE "$LAB_CLOUD_LEASE"
		kv LAB_CLOUD_LOG "$(lab_cloud_dir)/api.log"
	fi
	kv LAB_PGHOOK_VIP "$(lab_vip_helper)"
	kv LAB_CLIENT_NS "$(lab_ns "$LAB_CLIENT")"
	kv LAB_CLIENT_IP "$(lab_ip "$LAB_CLIENT")"
	kv LAB_PG_BIN "$LAB_PG_BIN"
	kv LAB_FROM_DEB "$LAB_FROM_DEB"
	kv LAB_PGHOOK "$(lab_pghook)"
	kv LAB_PGPASSFILE "$LAB_DIR/secrets/client.pgpass"
	kv LAB_ETCD_ENDPOINTS "$(lab_etcd_endpoints)"
	for n in "${LAB_NODES[@]}"; do
		N=${n^^}
		kv "LAB_${N}_NS" "$(lab_ns "$n")"
		kv "LAB_${N}_IP" "$(lab_ip "$n")"
		kv "LAB_${N}_DIR" "$LAB_DIR/$n"
		kv "LAB_${N}_PATRONI_CONFIG" "$LAB_DIR/$n/patroni.yml"
		kv "LAB_${N}_PGHOOK_CONFIG" "$LAB_DIR/$n/pghook.yaml"
		kv "LAB_${N}_PGTAB" "$LAB_DIR/$n/home/.pgtab"
		kv "LAB_${N}_VIPWATCH_LOG" "$LAB_DIR/$n/vipwatch.log"
	done
}

# ======================================================================================
# A second scope (opt-in: `lab.sh standalone-up`, `lab.sh standalone-down`; the scopes
# e2e test). n1 gets Debian's own standalone cluster (pg_createcluster 15 standalondb
# --port 5433) with rows; `pghook install --debian-cluster 15/standalondb --create-roles`
# adopts it; the standalone server is stopped and Patroni started on it; a
# `pghook backup` of it (with config_dir) builds n2 and n3 through create_replica.
# Helpers (lab_sa_*) are in lib.sh.
# ======================================================================================

# sa_install NODE [ARGS...] — `pghook install` of the second scope in NODE's namespace.
sa_install() {
	local node=$1; shift
	scope_install sa "$node" \
		--scope "$LAB_SA_SCOPE" --namespace "$LAB_NAMESPACE/" --dcs "$LAB_DCS" \
		--interface eth0 --network "$LAB_NET.0/24" --members "$(lab_ip n1),$(lab_ip n2),$(lab_ip n3)" \
		--port "$LAB_SA_PORT" --rest-port "$LAB_SA_REST" \
		--ttl 10 --loop-wait 2 --retry-timeout 4 --watchdog off --keep-data=false \
		--backup-dir "$LAB_DIR/backups" --secrets-dir "$LAB_DIR/secrets" \
		--vip "$LAB_SA_VIP_ADDR/$LAB_VIP_PREFIX" --vip-interface "$LAB_VIP_IF" --vip-label vip2 \
		--pg-parameter "external_pid_file=$(lab_sa_dir "$node")/postmaster.ext.pid" "$@"
}

# sa_pgpass — replicator's and postgres's passwords for port 5433 (backups, tests).
sa_pgpass() {
	local su rep dir=$LAB_DIR/secrets/$LAB_SA_SCOPE
	read -r su <"$dir/superuser" && read -r rep <"$dir/replication" || die "no passwords in $dir"
	printf '*:%s:*:postgres:%s\n*:%s:*:replicator:%s\n' "$LAB_SA_PORT" "$su" "$LAB_SA_PORT" "$rep" |
		write_file "$LAB_DIR/secrets/$LAB_SA_SCOPE.pgpass" postgres:postgres 0600
}

# sa_promoted NODE — the scope's PostgreSQL on NODE answers and is out of recovery.
sa_promoted() { [[ $(lab_sa_psql "$1" -c 'select pg_is_in_recovery()' 2>/dev/null) == f ]]; }

cmd_standalone_up() {
	local t0=$SECONDS n s c
	lab_healthy || die "the lab is not up and healthy: run '$0 up' first"
	if lab_sa_healthy 2>/dev/null; then lab_log "$LAB_SA_SCOPE already up (leader $(lab_sa_leader))"; return 0; fi
	# Each node's own /etc/postgresql (ip netns exec bind-mounts it over the host's).
	if [[ ! -d /etc/postgresql ]]; then
		install -d -o root -g root -m 0755 /etc/postgresql
		touch "$LAB_DIR/.made-etc-postgresql"
	fi
	for n in "${LAB_NODES[@]}"; do
		s=$(lab_sa_dir "$n")
		install -d -o root -g root -m 0755 "$(lab_sa_etc_postgresql "$n")"
		install -d -o postgres -g postgres -m 0755 "$s" "$s/pglog"
		# pghook.yaml as the first scope left it, restored by standalone-down.
		[[ -e $s/pghook.yaml.orig ]] || cp -p "$(lab_etc_pghook "$n")/pghook.yaml" "$s/pghook.yaml.orig"
	done
	s=$(lab_sa_dir n1)
	if [[ ! -e $s/data/PG_VERSION ]]; then
		lab_log "n1: pg_createcluster 15 $LAB_SA_SCOPE --port $LAB_SA_PORT"
		lab_exec n1 pg_createcluster 15 "$LAB_SA_SCOPE" --port "$LAB_SA_PORT" --datadir "$s/data" \
			--socketdir "$LAB_DIR/n1/run" --logfile "$s/standalone.log" \
			-o "external_pid_file=$s/postmaster.ext.pid" -o listen_addresses=localhost >&2 ||
			die "pg_createcluster failed on n1"
		lab_exec n1 pg_ctlcluster 15 "$LAB_SA_SCOPE" start || die "pg_ctlcluster start failed on n1"
		lab_sa_psql n1 -c "create table public.sa_rows (id int primary key, note text not null);
			insert into public.sa_rows select g, 'standalone row ' || g from generate_series(1, 1000) g;" ||
			die "could not fill the standalone cluster"
	fi
	sa_install n1 --debian-cluster "15/$LAB_SA_SCOPE" --create-roles
	sa_pgpass
	# The one step install leaves to the operator.
	lab_exec n1 pg_ctlcluster 15 "$LAB_SA_SCOPE" stop 2>/dev/null || true
	echo manual >"$(lab_sa_etc_postgresql n1)/15/$LAB_SA_SCOPE/start.conf"
	# A node's watcher starts once its install wrote the scope's section (the
	# helper refuses a scope its pghook.yaml does not name).
	lab_sa_start_vipwatch n1
	lab_sa_start_patroni n1
	lab_wait "$LAB_TIMEOUT" "n1 leading $LAB_SA_SCOPE" lab_sa_leader || { tail -n 40 "$s/patroni.log" >&2; die "Patroni did not take $LAB_SA_SCOPE over on n1"; }
	# Patroni starts an adopted cluster as a standby and promotes it after taking the
	# leader key, so /primary can answer before the promotion ends; a base backup
	# taken across it is refused ("the standby was promoted during online backup").
	lab_wait "$LAB_TIMEOUT" "n1's $LAB_SA_SCOPE out of recovery" sa_promoted n1 ||
		{ tail -n 40 "$s/patroni.log" >&2; die "$LAB_SA_SCOPE on n1 did not leave recovery"; }
	lab_log "$LAB_SA_SCOPE adopted and led by n1 after $((SECONDS - t0))s; backing it up"
	lab_exec_pg n1 env PGPASSFILE="$LAB_DIR/secrets/$LAB_SA_SCOPE.pgpass" "$(lab_pghook)" \
		--config "$(lab_pghook_yaml n1)" --log-format json backup --scope "$LAB_SA_SCOPE" \
		--backup-dir "$LAB_DIR/backups" --host "$(lab_ip n1)" --port "$LAB_SA_PORT" --user replicator \
		--patroni-config "$s/patroni.yml" >>"$s/backup.log" 2>&1 || { tail -n 20 "$s/backup.log" >&2; die "pghook backup of $LAB_SA_SCOPE failed"; }
	for n in n2 n3; do
		install -d -o postgres -g postgres -m 0700 "$(lab_sa_dir "$n")/data"
		sa_install "$n" --pg-version 15 --data-dir "$(lab_sa_dir "$n")/data" --config-dir "$LAB_SA_CONFIG_DIR"
		lab_sa_start_vipwatch "$n"
		lab_sa_start_patroni "$n"
	done
	lab_wait $((LAB_TIMEOUT * 2)) "two replicas streaming in $LAB_SA_SCOPE" lab_sa_healthy ||
		{ for n in n2 n3; do tail -n 30 "$(lab_sa_dir "$n")/patroni.log" >&2; done; die "$LAB_SA_SCOPE replicas are not streaming"; }
	lab_log "$LAB_SA_SCOPE up in $((SECONDS - t0))s (leader $(lab_sa_leader))"
}

cmd_standalone_down() {
	local n s
	[[ -d $LAB_DIR ]] || { lab_log "lab is down"; return 0; }
	for n in "${LAB_NODES[@]}"; do lab_sa_stop_patroni "$n"; done
	for n in "${LAB_NODES[@]}"; do lab_sa_stop_vipwatch "$n"; lab_sa_vip_del "$n"; done
	lab_etcdctl del --prefix "$LAB_NAMESPACE/$LAB_SA_SCOPE/" >/dev/null 2>&1 || true
	if [[ $LAB_DCS == etcd ]]; then
		curl -fsS -X DELETE "http://$(lab_ip n1):2379/v2/keys$LAB_NAMESPACE/$LAB_SA_SCOPE?recursive=true" >/dev/null 2>&1 || true
	fi
	for n in "${LAB_NODES[@]}"; do
		s=$(lab_sa_dir "$n")
		[[ -e $s/pghook.yaml.orig ]] && cp -p "$s/pghook.yaml.orig" "$(lab_etc_pghook "$n")/pghook.yaml"
		rm -rf --one-file-system "$(lab_sa_etc_postgresql "$n")" "$s"
	done
	rm -rf --one-file-system "$LAB_DIR/backups/$LAB_SA_SCOPE" "$LAB_DIR/secrets/$LAB_SA_SCOPE" "$LAB_DIR/secrets/$LAB_SA_SCOPE.pgpass"
	if [[ -e $LAB_DIR/.made-etc-postgresql ]] && rmdir /etc/postgresql 2>/dev/null; then
		rm -f "$LAB_DIR/.made-etc-postgresql"
	fi
	lab_log "$LAB_SA_SCOPE down"
}

main() {
	local cmd=${1:-}
	case $cmd in
	up | down | status | env) ;;
	standalone-up | standalone-down) cmd=${cmd/-/_} ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
	check_lab_dir
	if [[ $cmd == env ]]; then
		cmd_env
		return
	fi
	[[ $(id -u) == 0 ]] || die "must run as root (network namespaces, setpriv)"
	# One lab operation at a time. The lock is on this script, so nothing is left behind.
	exec 9<"${BASH_SOURCE[0]}"
	flock -w 600 9 || die "another lab.sh is running"
	"cmd_$cmd"
}

main "$@"
