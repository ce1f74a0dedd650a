# shellcheck shell=bash
# shellcheck disable=SC2034 # the LAB_* settings are for callers (lab.sh, demo.sh, tests)
# lib.sh — helpers for the pghook three-node Patroni lab (network namespaces on one host).
#
# Sourced by lab.sh and demo.sh, and by the e2e tests:
#     source e2e/lab/lib.sh; lab_leader
# It sets no shell options (the caller's `set -e` etc. stay as they are) and every
# function returns a status instead of exiting, so it is safe to source anywhere.
#
# Layout (fixed, so tests and docs can rely on it):
#   bridge pghbr0 10.251.77.1/24 in the root namespace
#   pgh-n1 10.251.77.11, pgh-n2 .12, pgh-n3 .13 (etcd + Patroni + PostgreSQL each)
#   pgh-cl 10.251.77.50 (client; LAB_VIP=exec: also the fake cloud API on :8080, exec.sh);
#   10.251.77.100 the VIP (LAB_VIP=netlink: pghook moves it between the nodes' eth0;
#   LAB_VIP=none, dns or exec: unused)
#   pgh-dns 10.251.77.53 (LAB_VIP=dns only): BIND 9, authoritative for pglab.test., where
#   primary.pglab.test. names the primary's own address and replicas.pglab.test. the
#   streaming replicas' (pghook's dns backend, RFC 2136 updates signed with TSIG)
# No default routes and no forwarding: nothing leaves 10.251.77.0/24 or loopback.
# LAB_TOPOLOGY=two-subnet replaces this layout with subnets.sh's (two subnets and a router).

: "${LAB_DIR:=/var/tmp/pghook-lab}"
# A running lab records its DCS choice; callers that did not set LAB_DCS follow it.
if [[ -z ${LAB_DCS:-} && -r $LAB_DIR/lab.env ]]; then
	LAB_DCS=$(sed -n 's/^LAB_DCS=//p' "$LAB_DIR/lab.env")
fi
: "${LAB_DCS:=etcd3}"
# LAB_TOPOLOGY: one-subnet (default, the layout above) or two-subnet (subnets.sh: nodes in
# two subnets behind a router, one VIP per subnet named in DNS; implies LAB_VIP=dns).
# Recorded like LAB_DCS.
if [[ -z ${LAB_TOPOLOGY:-} && -r $LAB_DIR/lab.env ]]; then
	LAB_TOPOLOGY=$(sed -n 's/^LAB_TOPOLOGY=//p' "$LAB_DIR/lab.env")
fi
: "${LAB_TOPOLOGY:=one-subnet}"
if [[ $LAB_TOPOLOGY == two-subnet ]]; then LAB_VIP=dns; fi
# LAB_VIP: netlink (pghook's netlink backend through the pghook-vip helper, plus one
# `pghook-vip watch` per node), dns (pghook's dns backend against the lab's BIND, plus
# one unprivileged `pghook vip watch` per node), exec (pghook's exec backend against a
# fake cloud API, e2e/lab/exec.sh; watchers as for dns) or none. A running lab records it like LAB_DCS.
if [[ -z ${LAB_VIP:-} && -r $LAB_DIR/lab.env ]]; then
	LAB_VIP=$(sed -n 's/^LAB_VIP=//p' "$LAB_DIR/lab.env")
fi
: "${LAB_VIP:=netlink}"
# LAB_VIP_TOOL: what moves the VIP — pghook (default: LAB_VIP as above), shell (an
# ip+arping callback in patroni.yml, Patroni run with ambient NET_ADMIN/NET_RAW) or
# vip-manager (Debian's vip-manager 1.0.2 per node, LAB_DCS=etcd only; interval
# LAB_VIPMGR_INTERVAL ms, default 1000). For bench/vip-lab.sh. Recorded like LAB_DCS.
if [[ -z ${LAB_VIP_TOOL:-} && -r $LAB_DIR/lab.env ]]; then
	LAB_VIP_TOOL=$(sed -n 's/^LAB_VIP_TOOL=//p' "$LAB_DIR/lab.env")
fi
: "${LAB_VIP_TOOL:=pghook}"
if [[ -z ${LAB_VIPMGR_INTERVAL:-} && -r $LAB_DIR/lab.env ]]; then
	LAB_VIPMGR_INTERVAL=$(sed -n 's/^LAB_VIPMGR_INTERVAL=//p' "$LAB_DIR/lab.env")
fi
: "${LAB_VIPMGR_INTERVAL:=1000}"
: "${LAB_SCOPE:=pglab}"
# LAB_FROM_DEB=1 (or LAB_DEB=path/to/pghook_*.deb): the lab runs the packaged pghook,
# /usr/bin/pghook and /usr/lib/pghook/pghook-vip, installed by `lab.sh up` from the .deb
# (LAB_DEB, default the newest dist/pghook_*.deb). A running lab records it like LAB_DCS.
if [[ -z ${LAB_FROM_DEB:-} && -r $LAB_DIR/lab.env ]]; then
	LAB_FROM_DEB=$(sed -n 's/^LAB_FROM_DEB=//p' "$LAB_DIR/lab.env")
fi
if [[ -n ${LAB_DEB:-} ]]; then LAB_FROM_DEB=1; fi
: "${LAB_FROM_DEB:=0}"
LAB_NODES=(n1 n2 n3)
LAB_NET=10.251.77
LAB_BRIDGE=pghbr0
LAB_BRIDGE_IP=$LAB_NET.1
LAB_CLIENT=cl
# Each VIP watcher serves Prometheus metrics on its node's address (vip.metrics_listen).
LAB_METRICS_PORT=9187
# pghook's alert rules, loaded by the lab's Prometheus (lab_metrics_up).
LAB_RULES=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/internal/metrics/rules/pghook.rules.yml
LAB_VIP_ADDR=$LAB_NET.100 # the VIP's address; LAB_VIP is the backend setting
LAB_VIP_PREFIX=24
LAB_VIP_IF=eth0
LAB_HBA_NET=$LAB_NET.0/24 # pg_hba's network (install --network)
LAB_NAMESPACE=/service # Patroni's DCS namespace (its default), keys live in /service/$LAB_SCOPE/
LAB_PG_BIN=/usr/lib/postgresql/15/bin
# A fixed PATH for everything started in the lab: the caller's PATH may hold pyenv shims
# or /work paths that postgres cannot traverse.
LAB_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Daemons get their own session so a Ctrl-C or a process-group kill aimed at the caller
# does not reach them. Only without job control: with it (`set -m`), a background job
# already leads its own process group and setsid would fork, making $! a dead pid.
if [[ $- == *m* ]]; then LAB__SETSID=(); else LAB__SETSID=(setsid); fi

# lab__close_fds — close every fd above 2 in the current (sub)shell. Daemons must not
# inherit lab.sh's lock fd (they would hold the lock forever) or a caller's pipes (a Go
# test's cmd.Wait would then wait for the daemon).
lab__close_fds() {
	local fd
	for fd in /proc/"$BASHPID"/fd/*; do
		fd=${fd##*/}
		if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
	done
}

lab_log() { printf 'lab: %s\n' "$*" >&2; }

# --- naming ---------------------------------------------------------------------------
lab_ns() { printf 'pgh-%s\n' "$1"; }          # n1 -> pgh-n1, cl -> pgh-cl
lab_veth() { printf 'pghv-%s\n' "$1"; }       # root-side end of the node's veth pair
lab_ip() {
	case $1 in
	n1) echo "$LAB_NET.11" ;;
	n2) echo "$LAB_NET.12" ;;
	n3) echo "$LAB_NET.13" ;;
	cl) echo "$LAB_NET.50" ;;
	dns) echo "$LAB_NET.53" ;;
	*) lab_log "unknown node '$1'"; return 1 ;;
	esac
}
# lab_pghook — the pghook binary the lab's Patroni calls (the package's in LAB_FROM_DEB
# mode; $LAB_DIR/bin/pghook is then a symlink to it, for callers that use that path).
lab_pghook() {
	if [[ $LAB_FROM_DEB == 1 ]]; then echo /usr/bin/pghook; else printf '%s/bin/pghook\n' "$LAB_DIR"; fi
}
lab_node_dir() { printf '%s/%s\n' "$LAB_DIR" "$1"; }
lab_patroni_yml() { printf '%s/%s/patroni.yml\n' "$LAB_DIR" "$1"; }
# A node's pghook.yaml lives where the VIP helper reads it: /etc/pghook/pghook.yaml as
# seen in the node's namespace, i.e. /etc/netns/<ns>/pghook/pghook.yaml, which
# `ip netns exec` bind-mounts over /etc/pghook/. $LAB_DIR/NODE/pghook.yaml links to it.
lab_etc_pghook() { printf '/etc/netns/%s/pghook\n' "$(lab_ns "$1")"; }
lab_pghook_yaml() { printf '%s/%s/pghook.yaml\n' "$LAB_DIR" "$1"; }
# lab_run_dir NODE — the node's run_dir (its VIP watcher's control socket).
lab_run_dir() { printf '/run/pghook-lab/%s\n' "$1"; }
lab_etcd_endpoints() {
	local n out=()
	for n in "${LAB_NODES[@]}"; do out+=("http://$(lab_ip "$n"):2379"); done
	(IFS=,; echo "${out[*]}")
}

# --- running things in namespaces -----------------------------------------------------

# lab_exec NODE CMD... — run CMD as root inside NODE's namespace (n1 n2 n3 cl).
lab_exec() {
	local node=$1; shift
	ip netns exec "$(lab_ns "$node")" "$@"
}

# lab_exec_pg NODE CMD... — run CMD as postgres inside NODE's namespace with the same
# environment Patroni gets (HOME, PGHOOK_CONFIG, fixed PATH), from a directory postgres
# can enter.
lab_exec_pg() {
	local node=$1; shift
	local d; d=$(lab_node_dir "$node")
	(cd "$d/home" && ip netns exec "$(lab_ns "$node")" \
		setpriv --reuid=postgres --regid=postgres --init-groups \
		env -i HOME="$d/home" PGHOOK_CONFIG="$d/pghook.yaml" PATH="$LAB_PATH" \
		LANG=C.UTF-8 LC_ALL=C.UTF-8 "$@")
}

# lab_patronictl [ARGS...] — patronictl with n1's config, run in n1's namespace.
# Set LAB_CTL_NODE=n2 (or use lab_patronictl_on) when n1 is cut off.
lab_patronictl() { lab_patronictl_on "${LAB_CTL_NODE:-n1}" "$@"; }
lab_patronictl_on() {
	local node=$1; shift
	(cd / && ip netns exec "$(lab_ns "$node")" env -i HOME=/root PATH="$LAB_PATH" \
		LANG=C.UTF-8 LC_ALL=C.UTF-8 patronictl -c "$(lab_patroni_yml "$node")" "$@")
}

# lab_psql NODE [psql args...] — psql as postgres over NODE's unix socket (trust).
lab_psql() { lab_scope_psql main "$@"; }

# lab_psql_client NODE_OR_IP [psql args...] — psql over TCP from the client namespace,
# password from the lab's client pgpass (never on a command line).
lab_psql_client() {
	local host=$1; shift
	[[ $host == n[0-9] ]] && host=$(lab_ip "$host")
	(cd / && ip netns exec "$(lab_ns "$LAB_CLIENT")" env -i PATH="$LAB_PATH" \
		PGPASSFILE="$LAB_DIR/secrets/client.pgpass" PGCONNECT_TIMEOUT=3 \
		psql -X -q -At -h "$host" -p 5432 -U postgres -d postgres "$@")
}

# --- pid files ------------------------------------------------------------------------

lab_pidfile() { printf '%s/%s/%s.pid\n' "$LAB_DIR" "$1" "$2"; } # NODE etcd|patroni|pghook-vip|vip-manager

# lab_pid NODE etcd|patroni|pghook-vip — print the pid if the process in the pid file is alive and
# still is that program (guards against pid reuse).
lab_pid() {
	local f pid
	f=$(lab_pidfile "$1" "$2")
	[[ -r $f ]] || return 1
	read -r pid <"$f" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	lab__alive "$pid" || return 1
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "$(lab__pid_pattern "$2")" || return 1
	echo "$pid"
}

# lab__pid_pattern NAME — what NAME's command line contains. The VIP watcher is
# `pghook-vip watch` (netlink) or `pghook vip watch` (dns): both say "watch --scope S".
lab__pid_pattern() {
	case $1 in
	pghook-vip) echo "watch --scope $LAB_SCOPE" ;;
	*) echo "$1" ;;
	esac
}

# lab_postmaster_pid NODE — pid of NODE's running postmaster, from postmaster.pid.
lab_postmaster_pid() { lab_scope_postmaster_pid main "$1"; }

# --- waiting --------------------------------------------------------------------------

# lab_wait TIMEOUT_S DESCRIPTION CMD... — poll CMD every 0.5 s until it succeeds.
lab_wait() {
	local timeout=$1 desc=$2; shift 2
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			lab_log "timed out after ${timeout}s waiting for $desc"
			return 1
		fi
		sleep 0.5
	done
}

# lab_dump_logs etcd|patroni|postgres|all [LINES] — tail of each node's logs, to stderr.
lab_dump_logs() {
	local what=${1:-all} lines=${2:-40} n f
	for n in "${LAB_NODES[@]}"; do
		for f in etcd.log patroni.log pglog/postgresql.log; do
			case $what:$f in
			all:* | etcd:etcd.log | patroni:patroni.log | postgres:pglog/*) ;;
			patroni:pglog/*) ;; # PostgreSQL's log explains most Patroni failures
			*) continue ;;
			esac
			[[ -r $LAB_DIR/$n/$f ]] || continue
			printf '\n===== %s/%s (last %s lines) =====\n' "$n" "$f" "$lines" >&2
			tail -n "$lines" "$LAB_DIR/$n/$f" >&2
		done
	done
}

# --- etcd -----------------------------------------------------------------------------

lab_etcdctl() {
	(cd / && env -i PATH="$LAB_PATH" ETCDCTL_API=3 etcdctl --endpoints="$(lab_etcd_endpoints)" \
		--dial-timeout=1s --command-timeout=2s "$@")
}

# lab_etcd_healthy — all three members answer and agree there is an etcd leader.
lab_etcd_healthy() {
	local out
	out=$(lab_etcdctl endpoint status -w json 2>/dev/null) || return 1
	[[ $(jq '[.[] | select(.Status.leader != 0)] | length' <<<"$out") == "${#LAB_NODES[@]}" ]] || return 1
	lab_etcdctl endpoint health >/dev/null 2>&1
}

# lab_etcd_leader_node — the node whose etcd member is the raft leader.
lab_etcd_leader_node() {
	local ep n
	ep=$(lab_etcdctl endpoint status -w json 2>/dev/null |
		jq -r '.[] | select(.Status.leader == .Status.header.member_id) | .Endpoint' | head -n1)
	[[ -n $ep ]] || return 1
	for n in "${LAB_NODES[@]}"; do
		[[ $ep == "http://$(lab_ip "$n"):2379" ]] && { echo "$n"; return 0; }
	done
	return 1
}

lab_start_etcd() {
	local node=$1 d ip pid peers=() n extra=()
	d=$(lab_node_dir "$node"); ip=$(lab_ip "$node")
	if pid=$(lab_pid "$node" etcd); then return 0; fi
	for n in "${LAB_NODES[@]}"; do peers+=("$n=http://$(lab_ip "$n"):2380"); done
	# Patroni's `etcd:` section speaks the v2 API, which etcd 3.4 serves only on request.
	[[ $LAB_DCS == etcd ]] && extra+=(--enable-v2=true)
	# env -i: etcd also reads ETCD_* variables (and Debian's /etc/default/etcd is only
	# sourced by its service, which we do not use) — make flags the only input.
	# --initial-cluster* are ignored once the member has data, so restarts work as is.
	(lab__close_fds && cd "$d/etcd" && exec ip netns exec "$(lab_ns "$node")" "${LAB__SETSID[@]}" env -i PATH="$LAB_PATH" \
		etcd --name "$node" --data-dir "$d/etcd/data" \
		--listen-peer-urls "http://$ip:2380" \
		--initial-advertise-peer-urls "http://$ip:2380" \
		--listen-client-urls "http://$ip:2379,http://127.0.0.1:2379" \
		--advertise-client-urls "http://$ip:2379" \
		--initial-cluster "$(IFS=,; echo "${peers[*]}")" \
		--initial-cluster-token "pghook-lab-$LAB_SCOPE" \
		--initial-cluster-state new \
		--pre-vote=true \
		--logger=zap --log-outputs=stderr \
		"${extra[@]}" \
		</dev/null >>"$d/etcd.log" 2>&1) &
	echo $! >"$(lab_pidfile "$node" etcd)"
}

# lab_stop_etcd NODE [TIMEOUT_S] — SIGTERM, then SIGKILL after the timeout.
lab_stop_etcd() {
	local node=$1 timeout=${2:-10} pid
	if pid=$(lab_pid "$node" etcd); then
		kill -TERM "$pid" 2>/dev/null || true
		if ! lab_wait "$timeout" "etcd on $node to stop" lab__gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			lab_wait 5 "etcd on $node to die" lab__gone "$pid" || true
		fi
	fi
	rm -f "$(lab_pidfile "$node" etcd)"
}

# lab__alive PID — the process exists and is not a zombie. Daemons outlive lab.sh and are
# reparented to PID 1, which on some hosts (this VM's init) reaps only now and then, so
# kill -0 alone would wait out every timeout on a zombie.
lab__alive() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[[ -n $st && ${st%% *} != Z ]]
}
lab__gone() { ! lab__alive "$1"; }

# --- Patroni / PostgreSQL -------------------------------------------------------------

# --- a scope's processes: the lab's own (main) and the second scope (sa) ----------------
# Both scopes run on the same three nodes with the same kind of processes; these functions
# take the scope first (main | sa) and read everything that differs from the tables below.
# The lab_* (main) and lab_sa_* (sa) names used by lab.sh and the tests are wrappers.

# lab_scope_dir S NODE — where scope S keeps NODE's files (patroni.yml, data, logs, pids).
lab_scope_dir() {
	case $1 in
	main) printf '%s/%s\n' "$LAB_DIR" "$2" ;;
	sa) printf '%s/%s/sa\n' "$LAB_DIR" "$2" ;;
	*) lab_log "unknown scope '$1'"; return 1 ;;
	esac
}
lab_scope_name() { case $1 in main) echo "$LAB_SCOPE" ;; sa) echo "$LAB_SA_SCOPE" ;; esac; }
lab_scope_port() { case $1 in main) echo 5432 ;; sa) echo "$LAB_SA_PORT" ;; esac; }
lab_scope_rest() { case $1 in main) echo 8008 ;; sa) echo "$LAB_SA_REST" ;; esac; }
lab_scope_vip() { case $1 in main) echo "$LAB_VIP_ADDR" ;; sa) echo "$LAB_SA_VIP_ADDR" ;; esac; }

# lab_scope_pidfile S NODE patroni|vipwatch
lab_scope_pidfile() {
	local f=$2
	[[ $1 == main && $3 == vipwatch ]] && f=pghook-vip || f=$3
	printf '%s/%s.pid\n' "$(lab_scope_dir "$1" "$2")" "$f"
}

# lab_scope_pid S NODE patroni|vipwatch — the pid of scope S's Patroni or VIP watcher on
# NODE if it is alive and still that program (its patroni.yml, its --scope).
lab_scope_pid() {
	local f pid pat
	f=$(lab_scope_pidfile "$@")
	[[ -r $f ]] || return 1
	read -r pid <"$f" || return 1
	[[ $pid =~ ^[0-9]+$ ]] && lab__alive "$pid" || return 1
	case $3 in
	patroni) pat="$(lab_scope_dir "$1" "$2")/patroni.yml" ;;
	vipwatch) pat="watch --scope $(lab_scope_name "$1")" ;;
	*) return 1 ;;
	esac
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "$pat" || return 1
	echo "$pid"
}

# lab_scope_postmaster_pid S NODE — pid of scope S's running postmaster on NODE, from
# postmaster.pid.
lab_scope_postmaster_pid() {
	local f pid
	f=$(lab_scope_dir "$1" "$2")/data/postmaster.pid
	[[ -r $f ]] || return 1
	read -r pid <"$f" || return 1
	[[ $pid =~ ^[0-9]+$ ]] && lab__alive "$pid" || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]] || return 1
	echo "$pid"
}

# lab_scope_start_patroni S NODE — start scope S's Patroni as postgres in NODE's namespace
# (no-op if running). Patroni is exec'ed directly: it starts PostgreSQL through
# multiprocessing "spawn", which re-imports __main__; a wrapper script would start a
# second Patroni.
lab_scope_start_patroni() {
	local s=$1 node=$2 d sd
	d=$(lab_node_dir "$node"); sd=$(lab_scope_dir "$s" "$node")
	lab_scope_pid "$s" "$node" patroni >/dev/null && return 0
	# LAB_VIP_TOOL=shell only: the shell VIP callback needs NET_ADMIN/NET_RAW, which
	# reach it (and every PostgreSQL process) only through the ambient set.
	local caps=()
	# shellcheck disable=SC2054 # the commas belong to setpriv's capability lists
	[[ $s == main && $LAB_VIP_TOOL == shell ]] && caps=(--inh-caps=+net_admin,+net_raw --ambient-caps=+net_admin,+net_raw)
	(lab__close_fds && cd "$d/home" && exec ip netns exec "$(lab_ns "$node")" "${LAB__SETSID[@]}" \
		setpriv --reuid=postgres --regid=postgres --init-groups "${caps[@]}" \
		env -i HOME="$d/home" PGHOOK_CONFIG="$d/pghook.yaml" PATH="$LAB_PATH" \
		LANG=C.UTF-8 LC_ALL=C.UTF-8 PYTHONUNBUFFERED=1 \
		/usr/bin/patroni "$sd/patroni.yml" \
		</dev/null >>"$sd/patroni.log" 2>&1) &
	echo $! >"$(lab_scope_pidfile "$s" "$node" patroni)"
}

# lab_scope_signal_patroni S NODE SIGNAL — signal scope S's Patroni on NODE (not PostgreSQL).
lab_scope_signal_patroni() {
	local pid
	pid=$(lab_scope_pid "$1" "$2" patroni) || return 0
	kill "-$3" "$pid" 2>/dev/null || true
}

# lab_scope_patroni_stopped S NODE — neither Patroni nor its postmaster is running.
lab_scope_patroni_stopped() {
	! lab_scope_pid "$1" "$2" patroni >/dev/null && ! lab_scope_postmaster_pid "$1" "$2" >/dev/null
}

# lab_scope_wait_patroni_stopped S NODE [TIMEOUT_S] — wait for an orderly stop; past the
# timeout stop PostgreSQL with `pg_ctl -m immediate` (which, unlike SIGKILL, frees its
# SysV shared memory) and SIGKILL Patroni.
lab_scope_wait_patroni_stopped() {
	local s=$1 node=$2 timeout=${3:-30} pid
	if ! lab_wait "$timeout" "Patroni and PostgreSQL of $(lab_scope_name "$s") on $node to stop" lab_scope_patroni_stopped "$s" "$node"; then
		lab_scope_signal_patroni "$s" "$node" KILL
		if lab_scope_postmaster_pid "$s" "$node" >/dev/null; then
			lab_exec_pg "$node" "$LAB_PG_BIN/pg_ctl" -D "$(lab_scope_dir "$s" "$node")/data" -m immediate -w -t 10 stop >&2 || true
		fi
		if pid=$(lab_scope_postmaster_pid "$s" "$node"); then kill -KILL "$pid" 2>/dev/null || true; fi
		lab_wait 10 "$node to die" lab_scope_patroni_stopped "$s" "$node" || true
	fi
	rm -f "$(lab_scope_pidfile "$s" "$node" patroni)"
}

# lab_scope_stop_patroni S NODE [TIMEOUT_S] — orderly stop (Patroni stops PostgreSQL,
# runs on_stop).
lab_scope_stop_patroni() {
	lab_scope_signal_patroni "$1" "$2" TERM
	lab_scope_wait_patroni_stopped "$@"
}

# lab_scope_kill_node S NODE — crash scope S on NODE: SIGKILL Patroni and the postmaster
# (no callbacks run). PostgreSQL's backends exit on their own once the postmaster is gone.
lab_scope_kill_node() {
	local pid
	if pid=$(lab_scope_pid "$1" "$2" patroni); then kill -KILL "$pid" 2>/dev/null || true; fi
	if pid=$(lab_scope_postmaster_pid "$1" "$2"); then kill -KILL "$pid" 2>/dev/null || true; fi
}

# lab_scope_leader S — print the node whose Patroni answers 200 on scope S's /primary (the
# one holding the leader lock and running as primary). Returns 1 if none, 2 (printing all
# of them) if more than one claims it.
lab_scope_leader() {
	local n code found=() rest
	rest=$(lab_scope_rest "$1")
	for n in "${LAB_NODES[@]}"; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$(lab_ip "$n"):$rest/primary" 2>/dev/null) || true
		[[ $code == 200 ]] && found+=("$n")
	done
	case ${#found[@]} in
	0) return 1 ;;
	1) echo "${found[0]}" ;;
	*) echo "${found[*]}"; return 2 ;;
	esac
}

# lab_scope_psql S NODE [psql args...] — psql as postgres over NODE's unix socket (trust),
# on scope S's port.
lab_scope_psql() {
	local s=$1 node=$2; shift 2
	lab_exec_pg "$node" psql -X -q -At -h "$(lab_node_dir "$node")/run" -p "$(lab_scope_port "$s")" -U postgres -d postgres "$@"
}

# lab_scope_streaming_count S NODE — replicas streaming from scope S's PostgreSQL on NODE.
lab_scope_streaming_count() {
	lab_scope_psql "$1" "$2" -c "select count(*) from pg_stat_replication where state = 'streaming'"
}

# lab_scope_switchover S OLD NEW — planned switchover of scope S from OLD to NEW (Patroni
# 3.0.2 syntax), run from NEW's namespace with NEW's patroni.yml so it works whoever leads.
lab_scope_switchover() {
	(cd / && ip netns exec "$(lab_ns "$3")" env -i HOME=/root PATH="$LAB_PATH" LANG=C.UTF-8 LC_ALL=C.UTF-8 \
		patronictl -c "$(lab_scope_dir "$1" "$3")/patroni.yml" switchover --master "$2" --candidate "$3" --force)
}

# lab_scope_vipwatch_argv S — scope S's watcher command: `pghook-vip watch` (netlink: the
# helper's file capabilities give it CAP_NET_ADMIN/CAP_NET_RAW; with
# LAB_TOPOLOGY=two-subnet it also points the name at its subnet's VIP) or, for the lab's
# own scope with LAB_VIP=dns (one subnet: the name names the primary's own address) or
# exec, `pghook vip watch` (no capabilities; the helper refuses those backends).
lab_scope_vipwatch_argv() {
	if [[ $1 == main && (($LAB_VIP == dns && ${LAB_TOPOLOGY:-} != two-subnet) || $LAB_VIP == exec) ]]; then
		printf '%s\n' "$(lab_pghook)" vip watch --scope "$(lab_scope_name "$1")"
	else
		printf '%s\n' "$(lab_vip_helper)" watch --scope "$(lab_scope_name "$1")"
	fi
}

# lab_scope_start_vipwatch S NODE — start scope S's VIP watcher in NODE's namespace as
# postgres; no-op if running.
lab_scope_start_vipwatch() {
	local s=$1 node=$2 d sd argv
	d=$(lab_node_dir "$node"); sd=$(lab_scope_dir "$s" "$node")
	lab_scope_pid "$s" "$node" vipwatch >/dev/null && return 0
	mapfile -t argv < <(lab_scope_vipwatch_argv "$s")
	(lab__close_fds && cd "$d/home" && exec ip netns exec "$(lab_ns "$node")" "${LAB__SETSID[@]}" \
		setpriv --reuid=postgres --regid=postgres --init-groups \
		env -i HOME="$d/home" PGHOOK_CONFIG="$d/pghook.yaml" PATH="$LAB_PATH" LANG=C.UTF-8 LC_ALL=C.UTF-8 \
		"${argv[@]}" </dev/null >>"$sd/vipwatch.log" 2>&1) &
	echo $! >"$(lab_scope_pidfile "$s" "$node" vipwatch)"
}

# lab_scope_stop_vipwatch S NODE — SIGTERM the watcher (it leaves the VIP as it is),
# SIGKILL after 5 s.
lab_scope_stop_vipwatch() {
	local pid
	if pid=$(lab_scope_pid "$1" "$2" vipwatch); then
		kill -TERM "$pid" 2>/dev/null || true
		if ! lab_wait 5 "the $(lab_scope_name "$1") watcher on $2 to stop" lab__gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			lab_wait 5 "the $(lab_scope_name "$1") watcher on $2 to die" lab__gone "$pid" || true
		fi
	fi
	rm -f "$(lab_scope_pidfile "$1" "$2" vipwatch)"
}

# lab_scope_vip_del S NODE — remove scope S's VIP from NODE's eth0 by hand (root), if there.
lab_scope_vip_del() {
	local ns vip
	ns=$(lab_ns "$2"); vip=$(lab_scope_vip "$1")
	[[ -e /run/netns/$ns ]] || return 0
	if ip -n "$ns" -4 -o addr show dev "$LAB_VIP_IF" 2>/dev/null | grep -q "inet $vip/"; then
		ip -n "$ns" addr del "$vip/$LAB_VIP_PREFIX" dev "$LAB_VIP_IF" 2>/dev/null || true
	fi
}

# --- Patroni / PostgreSQL of the lab's own scope ----------------------------------------

lab_start_patroni() { lab_scope_start_patroni main "$1"; }           # NODE
lab_signal_patroni() { lab_scope_signal_patroni main "$1" "$2"; }    # NODE SIGNAL
lab_patroni_stopped() { lab_scope_patroni_stopped main "$1"; }       # NODE
lab_wait_patroni_stopped() { lab_scope_wait_patroni_stopped main "$@"; } # NODE [TIMEOUT_S]
lab_stop_patroni() { lab_scope_stop_patroni main "$@"; }             # NODE [TIMEOUT_S]
lab_kill_node() { lab_scope_kill_node main "$1"; }                   # NODE

# lab_link_down NODE / lab_link_up NODE — cut / restore NODE's only link (root-side veth).
lab_link_down() { ip link set "$(lab_veth "$1")" down; }
lab_link_up() { ip link set "$(lab_veth "$1")" up; }

# lab_role NODE — Patroni's role for NODE from its REST API (master|replica|...).
lab_role() {
	curl -fsS --max-time 2 "http://$(lab_ip "$1"):8008/patroni" 2>/dev/null | jq -r '.role // empty'
}

# lab_leader — the node answering 200 on the lab's /primary (1: none, 2: several, all printed).
lab_leader() { lab_scope_leader main; }

# lab_dcs_leader — the member name in the DCS leader key (works for both LAB_DCS values).
lab_dcs_leader() {
	local key=$LAB_NAMESPACE/$LAB_SCOPE/leader v
	if [[ $LAB_DCS == etcd ]]; then
		v=$(curl -fsS --max-time 2 "http://$(lab_ip n1):2379/v2/keys$key?quorum=true" 2>/dev/null ||
			curl -fsS --max-time 2 "http://$(lab_ip n2):2379/v2/keys$key?quorum=true" 2>/dev/null) || return 1
		v=$(jq -r '.node.value // empty' <<<"$v")
	else
		v=$(lab_etcdctl get --print-value-only "$key" 2>/dev/null) || return 1
	fi
	[[ -n $v ]] || return 1
	echo "$v"
}

# lab_streaming_count NODE — replicas streaming from NODE (pg_stat_replication).
lab_streaming_count() { lab_scope_streaming_count main "$1"; }

# lab_members_running — Patroni's /cluster view (from NODE, default: the leader) lists
# every node as running. Patroni 3.0.2 says "running" for streaming replicas too, hence
# lab_streaming_count for the real check.
lab_members_running() {
	local node=${1:-} out
	[[ -n $node ]] || node=$(lab_leader) || return 1
	out=$(curl -fsS --max-time 2 "http://$(lab_ip "$node"):8008/cluster" 2>/dev/null) || return 1
	[[ $(jq '[.members[] | select(.state == "running")] | length' <<<"$out") == "${#LAB_NODES[@]}" ]]
}

# lab_healthy — one leader, every other node streaming from it, all members running.
lab_healthy() {
	local l c
	l=$(lab_leader) || return 1
	c=$(lab_streaming_count "$l") || return 1
	[[ $c == $((${#LAB_NODES[@]} - 1)) ]] || return 1
	lab_members_running "$l"
}

# lab_wait_healthy [TIMEOUT_S] — wait for lab_healthy; on timeout say what is missing.
lab_wait_healthy() {
	local timeout=${1:-90}
	lab_wait "$timeout" "a leader with $((${#LAB_NODES[@]} - 1)) streaming replicas" lab_healthy
}

# lab_pgtab NODE — NODE's roster as JSON (pghook pgtab --json), as postgres.
lab_pgtab() {
	lab_exec_pg "$1" "$(lab_pghook)" pgtab --config "$(lab_pghook_yaml "$1")" --json
}

# lab_switchover OLD NEW — planned switchover from OLD to NEW, run from NEW's namespace.
lab_switchover() { lab_scope_switchover main "$1" "$2"; }

# --- the VIP (LAB_VIP=netlink) --------------------------------------------------------

lab_vip_helper() {
	if [[ $LAB_FROM_DEB == 1 ]]; then echo /usr/lib/pghook/pghook-vip; else printf '%s/bin/pghook-vip\n' "$LAB_DIR"; fi
}

# lab_vip_holders — print (one line, space-separated) the nodes whose eth0 holds the VIP;
# an empty line when none does. Reads the kernel of each node's namespace, so it sees an
# isolated node too.
lab_vip_holders() {
	local n out=()
	for n in "${LAB_NODES[@]}"; do
		if ip -n "$(lab_ns "$n")" -4 -o addr show dev "$LAB_VIP_IF" 2>/dev/null |
			grep -q "inet $LAB_VIP_ADDR/"; then
			out+=("$n")
		fi
	done
	echo "${out[*]}"
}

# lab_vip_holder — print the single node holding the VIP; 1 if none, 2 (printing them)
# if more than one does.
lab_vip_holder() {
	local h
	h=$(lab_vip_holders)
	read -ra h <<<"$h"
	case ${#h[@]} in
	0) return 1 ;;
	1) echo "${h[0]}" ;;
	*) echo "${h[*]}"; return 2 ;;
	esac
}

# lab_vip_on_leader — the VIP is held by exactly one node, and it is Patroni's leader.
lab_vip_on_leader() {
	local l h
	l=$(lab_leader) || return 1
	h=$(lab_vip_holder) || return 1
	[[ $h == "$l" ]]
}

# lab_vip_probe — from the client namespace, through the VIP: print the answering
# server's pg_is_in_recovery() (f on a primary). Fails when nothing answers.
lab_vip_probe() { lab_psql_client "$LAB_VIP_ADDR" -c 'select pg_is_in_recovery()'; }

# lab_vip_status NODE — `pghook-vip status --json` on NODE, as postgres (as a DBA would).
lab_vip_status() {
	lab_exec_pg "$1" "$(lab_vip_helper)" status --json --scope "$LAB_SCOPE"
}

lab_vipwatch_argv() { lab_scope_vipwatch_argv main; }
# lab_start_vipwatch NODE / lab_stop_vipwatch NODE — the lab's own VIP watcher on NODE.
lab_start_vipwatch() { lab_scope_start_vipwatch main "$1"; }
lab_stop_vipwatch() { lab_scope_stop_vipwatch main "$1"; }
# lab_vip_del NODE — remove the VIP from NODE's eth0 by hand (root), if there.
lab_vip_del() { lab_scope_vip_del main "$1"; }

# --- the DNS name (LAB_VIP=dns) ------------------------------------------------------

LAB_DNS_ZONE=pglab.test.
LAB_DNS_NAME=primary.pglab.test.
LAB_DNS_REPLICAS=replicas.pglab.test.
LAB_DNS_KEY=pglab-hook
lab_dns_dir() { printf '%s/dns\n' "$LAB_DIR"; }

# lab_dns_answer [NAME] — the A records the lab's BIND serves for NAME (default the
# primary's name), sorted, space-separated; asked from the root namespace, not recursive.
lab_dns_answer() {
	local out
	out=$(dig +norecurse +short +time=1 +tries=1 @"$(lab_ip dns)" "${1:-$LAB_DNS_NAME}" A) || return 1
	sort <<<"$out" | tr '\n' ' ' | sed 's/ $//'
}

# lab_dns_node ADDRESS — the node whose eth0 address ADDRESS is.
lab_dns_node() {
	local n
	for n in "${LAB_NODES[@]}"; do [[ $(lab_ip "$n") == "$1" ]] && { echo "$n"; return 0; }; done
	return 1
}

# lab_dns_on_leader — the primary's name answers Patroni's leader's address, and only it.
lab_dns_on_leader() {
	local l
	l=$(lab_leader) || return 1
	[[ $(lab_dns_answer) == "$(lab_ip "$l")" ]]
}

# lab_dns_replicas_right — the replica name answers exactly the addresses of the nodes
# that stream from the leader.
lab_dns_replicas_right() {
	local l n want=()
	l=$(lab_leader) || return 1
	for n in "${LAB_NODES[@]}"; do [[ $n == "$l" ]] || want+=("$(lab_ip "$n")"); done
	[[ $(lab_dns_answer "$LAB_DNS_REPLICAS") == "$(printf '%s\n' "${want[@]}" | sort | tr '\n' ' ' | sed 's/ $//')" ]]
}

# --- metrics: Prometheus and node_exporter (e2e/metrics_test.go) ----------------------

# lab_metrics_up — one node_exporter per node (textfile collector only, on the node's
# address, reading $LAB_DIR/NODE/textfiles) and one Prometheus in the client namespace
# scraping them and the three VIP watchers every second, with pghook's alert rules.
# No-op for what runs already.
lab_metrics_up() {
	local n d targets="" nodes="" pid
	d=$LAB_DIR/prometheus
	install -d -o root -g root -m 0755 "$d" "$d/data"
	for n in "${LAB_NODES[@]}"; do
		targets+="'$(lab_ip "$n"):$LAB_METRICS_PORT', "
		nodes+="'$(lab_ip "$n"):9100', "
		lab_pid "$n" prometheus-node-exporter >/dev/null && continue
		(lab__close_fds && cd / && exec ip netns exec "$(lab_ns "$n")" "${LAB__SETSID[@]}" \
			prometheus-node-exporter --collector.disable-defaults --collector.textfile \
			--collector.textfile.directory="$LAB_DIR/$n/textfiles" \
			--web.listen-address="$(lab_ip "$n"):9100" </dev/null >>"$LAB_DIR/$n/node-exporter.log" 2>&1) &
		echo $! >"$(lab_pidfile "$n" prometheus-node-exporter)"
	done
	cat >"$d/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ['$LAB_RULES']
scrape_configs:
  - job_name: pghook-vip
    static_configs: [{targets: [${targets%, }]}]
  - job_name: node
    static_configs: [{targets: [${nodes%, }]}]
EOF
	if ! pid=$(lab_pid "$LAB_CLIENT" prometheus); then
		mkdir -p "$(lab_node_dir "$LAB_CLIENT")"
		(lab__close_fds && cd / && exec ip netns exec "$(lab_ns "$LAB_CLIENT")" "${LAB__SETSID[@]}" \
			prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/data" \
			--web.listen-address=127.0.0.1:9090 </dev/null >>"$d/prometheus.log" 2>&1) &
		echo $! >"$(lab_pidfile "$LAB_CLIENT" prometheus)"
	fi
	lab_wait 60 "Prometheus to answer" lab_prom_query up >/dev/null
}

# lab_metrics_down — stop what lab_metrics_up started.
lab_metrics_down() {
	local n pid what
	for n in "${LAB_NODES[@]}" "$LAB_CLIENT"; do
		for what in prometheus-node-exporter prometheus; do
			if pid=$(lab_pid "$n" "$what"); then
				kill -TERM "$pid" 2>/dev/null || true
				lab_wait 10 "$what on $n to stop" lab__gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
			fi
			rm -f "$(lab_pidfile "$n" "$what")"
		done
	done
}

# lab_prom_query EXPR — Prometheus's instant query API answer (JSON) for EXPR.
lab_prom_query() {
	ip netns exec "$(lab_ns "$LAB_CLIENT")" curl -fsS --max-time 5 \
		--data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query
}

# ======================================================================================
# A second scope on the same three nodes (e2e/scopes_test.go; `lab.sh standalone-up`):
# the Debian cluster 15/standalondb on port 5433, made by pg_createcluster on n1 and
# adopted by `pghook install --debian-cluster`, REST API 8009, VIP 10.251.77.101. Each
# node's /etc/postgresql is /etc/netns/<ns>/postgresql (bind-mounted by ip netns exec);
# its other files are in $LAB_DIR/NODE/sa/. The same pghook.yaml (one section per scope),
# roster and run_dir as the first scope.
# ======================================================================================
LAB_SA_SCOPE=standalondb
LAB_SA_PORT=5433
LAB_SA_REST=8009
LAB_SA_VIP_ADDR=$LAB_NET.101
LAB_SA_CONFIG_DIR=/etc/postgresql/15/$LAB_SA_SCOPE

lab_sa_dir() { lab_scope_dir sa "$1"; }
lab_sa_etc_postgresql() { printf '/etc/netns/%s/postgresql\n' "$(lab_ns "$1")"; }

# The second scope's processes, through the lab_scope_* functions above.
lab_sa_pid() { lab_scope_pid sa "$1" "$2"; }                  # NODE patroni|vipwatch
lab_sa_postmaster_pid() { lab_scope_postmaster_pid sa "$1"; } # NODE
lab_sa_start_patroni() { lab_scope_start_patroni sa "$1"; }   # NODE
lab_sa_stop_patroni() { lab_scope_stop_patroni sa "$1" 30; }  # NODE
lab_sa_kill_node() { lab_scope_kill_node sa "$1"; }           # NODE
lab_sa_start_vipwatch() { lab_scope_start_vipwatch sa "$1"; } # NODE
lab_sa_stop_vipwatch() { lab_scope_stop_vipwatch sa "$1"; }   # NODE
lab_sa_leader() { lab_scope_leader sa; }
lab_sa_psql() { lab_scope_psql sa "$@"; }                     # NODE [psql args...]
lab_sa_switchover() { lab_scope_switchover sa "$1" "$2"; }    # OLD NEW
lab_sa_vip_del() { lab_scope_vip_del sa "$1"; }               # NODE

# lab_sa_healthy — one leader, the two other nodes streaming from it on port 5433.
lab_sa_healthy() {
	local l c
	l=$(lab_sa_leader) || return 1
	c=$(lab_scope_streaming_count sa "$l") || return 1
	[[ $c == $((${#LAB_NODES[@]} - 1)) ]]
}

# The two-subnet layout replaces the naming and VIP helpers above.
if [[ $LAB_TOPOLOGY == two-subnet ]]; then
	# shellcheck source=subnets.sh
	source "$(dirname "${BASH_SOURCE[0]}")/subnets.sh"
fi
