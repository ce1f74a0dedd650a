#!/usr/bin/env bash
# Side-by-side "event -> the VIP answers at the new holder" for three ways of moving a VIP:
#   pghook callback (netlink + GARP), the seed's shell callback (ip addr add + arping),
#   vip-manager 1.0.2 (Debian) polling etcd every 1000 ms and every 100 ms.
# Usage: make bench-vip   (PGHOOK_BIN=path/to/pghook TRIALS=30 bash bench/vip.sh), as root.
# Writes bench/results/vip.json and vip.md.
#
# Setup (own namespaces pghb-h = holder, pghb-p = peer, one veth pair, 192.0.2.0/24 only):
#   holder 192.0.2.11/24 eth0, peer 192.0.2.12/24 eth0, VIP 192.0.2.100/24,
#   etcd 3.4 in pghb-h on 127.0.0.1 (v2 API enabled: vip-manager 1.0.2 speaks only v2).
# Each trial: VIP absent; the peer gets a STALE neighbour entry for the VIP with a bogus
#   MAC; a 1.2-2.2 s pause (> the kernel's 1 s ARP locktime; random phase vs. vip-manager's poll); bench/vip_probe.py starts in the
#   peer and reports "ready"; t0 = wall clock just before the trigger is exec'd in the
#   holder; t1 = when the peer's neighbour entry for the VIP first carries the holder's MAC
#   (rtnetlink notification, 1 ms dump poll as backstop); then a ping from the peer to the
#   VIP must answer (checked, not timed). Result: t1 - t0.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOOK_BIN:?set PGHOOK_BIN to the built pghook}"
PGHOOK_BIN=$(readlink -f "$PGHOOK_BIN")
TRIALS=${TRIALS:-30}
H=pghb-h P=pghb-p
VIP=192.0.2.100 PREFIX=24 IFACE=eth0
BOGUS=02:00:00:00:00:99
SCOPE=bench MEMBER=pghb-h
KEY=/service/$SCOPE/leader
PY=/usr/bin/python3
(( EUID == 0 )) || { echo "bench-vip: run as root (namespaces)" >&2; exit 1; }
for c in etcd etcdctl arping vip-manager "$PY" ping; do
	command -v "$c" >/dev/null || { echo "bench-vip: $c missing (apt-get install etcd-server etcd-client arping vip-manager iputils-ping)" >&2; exit 1; }
done
for n in $H $P; do
	if ip netns list | grep -qw "^$n"; then echo "bench-vip: namespace $n exists (a previous run?); remove it: ip netns del $n" >&2; exit 1; fi
done

work=$(mktemp -d /var/tmp/pghb-vip.XXXXXX)
raw=$work/trials.tsv
: > "$raw"
etcd_pid="" vm_pid="" watch_pid="" made_etc="" rundir=""

cleanup() {
	set +e
	for p in $watch_pid $vm_pid $etcd_pid; do kill -INT "$p" 2>/dev/null; done
	for p in $watch_pid $vm_pid $etcd_pid; do
		for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	# Whatever still runs in our namespaces (a detached announcer, a probe) is ours.
	for n in $H $P; do
		for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for n in $H $P; do ip netns del "$n" 2>/dev/null; done
	umount "$work/mnt/ns" 2>/dev/null
	umount "$work/mnt" 2>/dev/null
	[[ -n $made_etc ]] && rmdir /etc/pghook 2>/dev/null
	[[ -n $rundir ]] && rm -rf "$rundir"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

inh() { ip netns exec $H "$@"; }
# Triggers enter the holder's network namespace with a bare setns (nsenter), not
# `ip netns exec`, whose private mount namespace and sysfs remount cost ~20-30 ms and
# would be counted as the tool's time.
# They also enter a mount namespace of the run's own (setup below), in which the run's
# root-owned config is mounted on /etc/pghook: the VIP helper reads that file alone.
# Entering a mount namespace moves the cwd to its root: --wd keeps the repository.
trig_in() { nsenter --net=/run/netns/$H --mount="$work/mnt/ns" --wd="$PWD" "$@"; }
e2() { inh env ETCDCTL_API=2 etcdctl --endpoints http://127.0.0.1:2379 "$@"; }

# ---- setup ------------------------------------------------------------------------------
ip netns add $H
ip netns add $P
ip link add $IFACE netns $H type veth peer name $IFACE netns $P
ip -n $H addr add 192.0.2.11/24 dev $IFACE
ip -n $P addr add 192.0.2.12/24 dev $IFACE
for n in $H $P; do
	ip -n "$n" link set lo up
	ip -n "$n" link set $IFACE up
	# IPv4 only: no DAD/RS chatter on the link.
	ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
HMAC=$(ip -n $H link show $IFACE | awk '/link\/ether/{print $2}')

ip netns exec $H etcd --name pghb --data-dir "$work/etcd" --enable-v2=true \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster pghb=http://127.0.0.1:2380 --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
ok=""
for _ in $(seq 1 100); do
	if e2 set /pghb-ping ok >/dev/null 2>&1; then ok=1; break; fi
	sleep 0.1
done
[[ $ok ]] || { echo "bench-vip: etcd did not come up" >&2; cat "$work/etcd.log" >&2; exit 1; }

# pghook: its own config, and a patroni.yml (etcd: section = v2 API, the same key
# vip-manager reads) naming this member; the guard reads the leader key from it.
mkdir -p "$work/pg"
cat >"$work/patroni.yml" <<EOF
scope: $SCOPE
name: $MEMBER
namespace: /service
etcd:
  host: 127.0.0.1:2379
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: $work/pg
EOF
cat >"$work/pghook.yaml" <<EOF
pgtab: $work/pgtab
scopes:
  $SCOPE:
    patroni_config: $work/patroni.yml
    vip:
      backend: netlink
      address: $VIP/$PREFIX
      interface: $IFACE
      # Only for the "via the running watcher" row: its periodic steps would re-add the
      # VIP between trials (no Patroni here; the leader key names this member), so it
      # acts on requests alone. In production the period is 300 ms.
      watch_interval: 24h
EOF
# The callback as Patroni runs it: as postgres, through the privileged helper (a copy of
# pghook with CAP_NET_ADMIN/CAP_NET_RAW that only group postgres may run), which trusts
# only a root-owned config.
chmod 0755 "$work"
cp "$PGHOOK_BIN" "$work/pghook-vip"
chown root:postgres "$work/pghook-vip" "$work/pghook.yaml"
chmod 0750 "$work/pghook-vip"
chmod 0640 "$work/pghook.yaml"
setcap cap_net_admin,cap_net_raw+ep "$work/pghook-vip"
echo "vip_helper: $work/pghook-vip" >>"$work/pghook.yaml"
# The watcher's control socket: a directory of its user's below root-owned ones that
# nobody else may write (not /var/tmp, which is 1777), as systemd's RuntimeDirectory
# makes /run/pghook for the unit.
rundir=/run/pghb-vip.$$
echo "run_dir: $rundir" >>"$work/pghook.yaml"
install -d -o postgres -g postgres -m 0750 "$rundir"
install -d -o postgres -g postgres -m 0700 "$work/pg-home"
# The helper's view: $work/etc (root, 0755) on /etc/pghook, in a persistent mount
# namespace ($work/mnt/ns) that only this run's triggers enter.
install -d -o root -g root -m 0755 "$work/etc" "$work/mnt"
install -o root -g postgres -m 0640 "$work/pghook.yaml" "$work/etc/pghook.yaml"
if [[ ! -d /etc/pghook ]]; then mkdir /etc/pghook && made_etc=1; fi
mount --bind "$work/mnt" "$work/mnt" && mount --make-private "$work/mnt"
touch "$work/mnt/ns"
unshare --mount="$work/mnt/ns" --propagation private mount --bind "$work/etc" /etc/pghook

# ---- trial machinery --------------------------------------------------------------------
vip_present() { ip -n $H -4 addr show dev $IFACE | grep -q "inet $VIP/"; }

# Wait (bounded) until only the long-running processes we started remain in the holder:
# pghook's detached announcer stops within a round (1 s) once the VIP is gone.
settle_holder() {
	local keep=" $etcd_pid $vm_pid $watch_pid " p left
	for _ in $(seq 1 80); do
		left=""
		for p in $(ip netns pids $H); do [[ $keep == *" $p "* ]] || left+=" $p"; done
		[[ -z $left ]] && return 0
		sleep 0.1
	done
	echo "bench-vip: killing leftover holder processes:$left" >&2
	for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
}

reset_addr() {
	if vip_present; then ip -n $H addr del $VIP/$PREFIX dev $IFACE; fi
	settle_holder
}

reset_vm() {
	e2 set $KEY other-member >/dev/null
	# vip-manager removes the VIP on its next poll.
	for _ in $(seq 1 100); do vip_present || { settle_holder; return 0; }; sleep 0.1; done
	echo "bench-vip: vip-manager did not remove the VIP within 10 s" >&2
	exit 1
}

trig_pghook() { trig_in env PGHOOK_CONFIG="$work/pghook.yaml" "$PGHOOK_BIN" --log-level error callback on_role_change master $SCOPE; }
# As postgres, the way Patroni's process would exec it: ids given numerically, so that
# setpriv does no NSS lookup (--init-groups would cost 1-2 ms of the harness, not of pghook).
PGUID=$(id -u postgres) PGGID=$(id -g postgres) PGGROUPS=$(id -G postgres | tr ' ' ,)
as_pg() { setpriv --reuid="$PGUID" --regid="$PGGID" --groups="$PGGROUPS" "$@"; }
trig_pghook_pg() { trig_in setpriv --reuid="$PGUID" --regid="$PGGID" --groups="$PGGROUPS" env PGHOOK_CONFIG="$work/pghook.yaml" PGHOOK_PGTAB="$work/pg-home/.pgtab" "$PGHOOK_BIN" --log-level error callback on_role_change master $SCOPE; }
trig_noop() { trig_in env true; }
trig_noop_pg() { trig_in setpriv --reuid="$PGUID" --regid="$PGGID" --groups="$PGGROUPS" env true; }
trig_shell() { trig_in env VIP=$VIP PREFIX=$PREFIX IFACE=$IFACE sh bench/vip-shell-callback.sh; }
trig_vm() { e2 set $KEY $MEMBER >/dev/null; }

# run_tool NAME RESETFN TRIGFN
run_tool() {
	local name=$1 reset=$2 trig=$3 i line t0 t1 tend how ping_ok
	echo "bench-vip: $name: $TRIALS trials" >&2
	for i in $(seq 1 "$TRIALS"); do
		$reset
		vip_present && { echo "bench-vip: $name: VIP still present before trial $i" >&2; exit 1; }
		ip -n $P neigh replace $VIP lladdr $BOGUS dev $IFACE nud stale
		# 1.2 s (> ARP locktime) plus a random 0-999 ms, so the trigger lands at a random
		# phase of vip-manager's poll loop (resets are otherwise phase-locked to it).
		pause=$((1200 + RANDOM % 1000))
		sleep "$((pause / 1000)).$(printf '%03d' $((pause % 1000)))"
		exec {pfd}< <(ip netns exec $P "$PY" bench/vip_probe.py $IFACE $VIP "$HMAC" 12)
		read -r -t 10 -u $pfd line || line=""
		[[ $line == ready ]] || { echo "bench-vip: probe not ready: '$line'" >&2; exit 1; }
		t0=$EPOCHREALTIME
		$trig >"$work/trigger.out" 2>&1 || { echo "bench-vip: $name trigger failed (trial $i):" >&2; cat "$work/trigger.out" >&2; }
		tend=$EPOCHREALTIME
		read -r -t 15 -u $pfd t1 how || { t1=timeout how=""; }
		exec {pfd}<&-
		ping_ok=0
		ip netns exec $P ping -n -q -c 1 -W 1 $VIP >/dev/null 2>&1 && ping_ok=1
		if [[ $t1 == timeout ]]; then
			printf '%s\t%d\tNaN\t%s\tNaN\t%d\n' "$name" "$i" "$(awk -v a="$tend" -v b="$t0" 'BEGIN{printf "%.3f",(a-b)*1000}')" "$ping_ok" >>"$raw"
			echo "bench-vip: $name trial $i: no update within 12 s" >&2
		else
			awk -v n="$name" -v i="$i" -v t0="$t0" -v t1="$t1" -v te="$tend" -v how="$how" -v p="$ping_ok" \
				'BEGIN{printf "%s\t%d\t%.3f\t%.3f\t%s\t%d\n", n, i, (t1-t0)*1000, (te-t0)*1000, how, p}' >>"$raw"
		fi
		tail -n1 "$raw" >&2
	done
}

# The leader key names this member for the callback trials (pghook's guard reads it).
e2 set $KEY $MEMBER >/dev/null
run_tool "pghook callback (netlink)" reset_addr trig_pghook
run_tool "pghook callback as postgres, via the VIP helper" reset_addr trig_pghook_pg
# As installed: the scope's watcher (`pghook-vip watch`, as postgres, file capabilities)
# runs, and the callback hands it the request over its control socket. The helper takes
# no flag but --scope (its log level is the root-owned config's, info by default, which
# the checks on watch.log below need).
nsenter --net=/run/netns/$H --mount="$work/mnt/ns" setpriv --reuid="$PGUID" --regid="$PGGID" --groups="$PGGROUPS" env PGHOOK_CONFIG="$work/pghook.yaml" \
	"$work/pghook-vip" watch --scope $SCOPE >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 50); do grep -q '"watching"\|watching' "$work/watch.log" && break; sleep 0.1; done
sleep 1 # its first steps (it takes the VIP: the leader key names it) are over
kill -0 $watch_pid 2>/dev/null || { echo "bench-vip: pghook-vip watch exited:" >&2; cat "$work/watch.log" >&2; exit 1; }
run_tool "pghook callback as postgres, via the running watcher" reset_addr trig_pghook_pg
served=$(grep -c 'callback request' "$work/watch.log" || true)
(( served >= TRIALS )) ||
	{ echo "bench-vip: the watcher served $served of $TRIALS callbacks:" >&2; cat "$work/watch.log" >&2; exit 1; }
kill -INT $watch_pid; wait $watch_pid 2>/dev/null || true; watch_pid=""
run_tool "shell callback (ip addr add + arping -U -S VIP)" reset_addr trig_shell

for iv in 1000 100; do
	e2 set $KEY other-member >/dev/null
	reset_addr
	ip netns exec $H vip-manager --ip $VIP --netmask $PREFIX --interface $IFACE --trigger-key $KEY \
		--trigger-value $MEMBER --dcs-type etcd --dcs-endpoints http://127.0.0.1:2379 \
		--interval $iv >"$work/vip-manager-$iv.log" 2>&1 &
	vm_pid=$!
	sleep 2
	kill -0 $vm_pid 2>/dev/null || { echo "bench-vip: vip-manager exited:" >&2; cat "$work/vip-manager-$iv.log" >&2; exit 1; }
	run_tool "vip-manager 1.0.2, interval $iv ms" reset_vm trig_vm
	kill -INT $vm_pid
	for _ in $(seq 1 50); do kill -0 $vm_pid 2>/dev/null || break; sleep 0.1; done
	kill -KILL $vm_pid 2>/dev/null || true
	wait $vm_pid 2>/dev/null || true
	vm_pid=""
done

# The floor every trigger pays: entering the namespace and starting a process (and, for
# the rows as postgres, setpriv's exec too). "exec -> announced" = latency - floor.
: >"$work/noop.tsv"
: >"$work/noop-pg.tsv"
for i in $(seq 1 "$TRIALS"); do
	t0=$EPOCHREALTIME; trig_noop; t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f\n", (b-a)*1000}' >>"$work/noop.tsv"
	t0=$EPOCHREALTIME; trig_noop_pg; t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f\n", (b-a)*1000}' >>"$work/noop-pg.tsv"
done

# ---- report -----------------------------------------------------------------------------
mkdir -p bench/results
CMD="make bench-vip (PGHOOK_BIN=$PGHOOK_BIN TRIALS=$TRIALS bash bench/vip.sh)" \
KERNEL=$(uname -r) VM_VER=$(dpkg-query -W -f '${Version}' vip-manager) ARPING_VER=$(dpkg-query -W -f '${Version}' arping) \
PGHOOK_VER=$("$PGHOOK_BIN" version 2>/dev/null | head -n1) \
"$PY" - "$raw" "$work/noop.tsv" "$work/noop-pg.tsv" <<'PY'
import json, math, os, statistics, sys, datetime
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
tools, order = {}, []
for name, i, lat, trig, how, ping in rows:
    if name not in tools:
        tools[name] = []; order.append(name)
    tools[name].append({"trial": int(i), "ms": None if lat == "NaN" else float(lat),
                        "trigger_ms": float(trig), "seen_by": how, "ping_ok": ping == "1"})
def pct(xs, p):  # nearest rank
    s = sorted(xs); return s[max(0, math.ceil(p / 100 * len(s)) - 1)]
out = {"benchmark": "event -> VIP answers at the new holder (peer's neighbour entry carries the holder's MAC)",
       "command": os.environ["CMD"], "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "kernel": os.environ["KERNEL"], "pghook": os.environ["PGHOOK_VER"], "vip_manager": os.environ["VM_VER"],
       "arping": os.environ["ARPING_VER"], "results": []}
noop = [float(l) for l in open(sys.argv[2]) if l.strip()]
noop_pg = [float(l) for l in open(sys.argv[3]) if l.strip()]
floors = {"root": statistics.median(noop), "postgres": statistics.median(noop_pg)}
def floor_of(name):  # the harness's own exec chain before the tool runs
    if name.startswith("vip-manager"):
        return None  # its trigger is an etcdctl write, not an exec of the tool
    return floors["postgres" if "as postgres" in name else "root"]
md = ["| tool | n | median ms | p90 ms | max ms | min ms | exec → announced (median − floor) ms | trigger returns (median ms) | misses | ping fails |",
      "|---|---|---|---|---|---|---|---|---|---|"]
for name in order:
    t = tools[name]; ok = [r["ms"] for r in t if r["ms"] is not None]
    res = {"tool": name, "n": len(t), "misses": len(t) - len(ok), "ping_fails": sum(not r["ping_ok"] for r in t),
           "median_ms": statistics.median(ok) if ok else None, "p90_ms": pct(ok, 90) if ok else None,
           "max_ms": max(ok) if ok else None, "min_ms": min(ok) if ok else None,
           "trigger_median_ms": statistics.median(r["trigger_ms"] for r in t), "trials": t}
    fl = floor_of(name)
    res["floor_ms"] = fl
    res["exec_to_announced_ms"] = (res["median_ms"] - fl) if (fl is not None and ok) else None
    out["results"].append(res)
    f = lambda v: "-" if v is None else f"{v:.1f}"
    md.append(f"| {name} | {res['n']} | {f(res['median_ms'])} | {f(res['p90_ms'])} | {f(res['max_ms'])} | {f(res['min_ms'])} | {f(res['exec_to_announced_ms'])} | {f(res['trigger_median_ms'])} | {res['misses']} | {res['ping_fails']} |")
out["trigger_floor_ms"] = {"what": "nsenter --net --mount + env true (no tool)", "median": floors["root"], "max": max(noop),
                           "as_postgres": {"what": "nsenter --net --mount + setpriv (numeric ids) + env true", "median": floors["postgres"], "max": max(noop_pg)}}
md.append("")
md.append(f"Floor included in every trigger's latency: entering the namespace and starting a process (`nsenter --net --mount` + `env true`) takes {floors['root']:.1f} ms median (max {max(noop):.1f}); "
          f"for the rows as postgres, with setpriv's exec, {floors['postgres']:.1f} ms (max {max(noop_pg):.1f}). "
          "exec → announced is the median minus that floor: from the exec of the tool to the peer seeing the new MAC.")
json.dump(out, open("bench/results/vip.json", "w"), indent=1)
hdr = [f"# VIP move: event -> the VIP answers at the new holder", "",
       f"Command: `{out['command']}`  ", f"Date: {out['date']}, kernel {out['kernel']}, {out['pghook']}, vip-manager {out['vip_manager']}, arping {out['arping']}", "",
       "Latency = t1 - t0: t0 just before the trigger is exec'd in the holder namespace (pghook/shell: the callback;",
       "vip-manager: `ETCDCTL_API=2 etcdctl set` of the leader key to this member), t1 when the peer's neighbour entry",
       "for the VIP (pre-set STALE to a bogus MAC) first carries the holder's MAC. Misses: no update within 12 s.",
       "Ping fails: the VIP did not answer one ping from the peer right after t1. Trigger returns: when the trigger command exited.", ""]
open("bench/results/vip.md", "w").write("\n".join(hdr + md) + "\n")
print("\n".join(md))
PY
