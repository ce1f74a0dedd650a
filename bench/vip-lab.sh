#!/usr/bin/env bash
# vip-lab.sh — side-by-side VIP benchmark in the three-node Patroni lab (e2e/lab/lab.sh):
# pghook (LAB_VIP_TOOL=pghook, netlink) vs a shell ip+arping callback (LAB_VIP_TOOL=shell)
# vs Debian's vip-manager 1.0.2 at 1000 ms and 100 ms (LAB_VIP_TOOL=vip-manager), on each
# Patroni DCS setting in DCS (LAB_DCS=etcd3: the etcd v3 API; LAB_DCS=etcd: the v2 API;
# vip-manager 1.0.2 reads only the v2 keys, so it runs on etcd alone).
# For each DCS and tool: a fresh lab, then N repetitions of each scenario in SCENARIOS
# (switchover: patronictl switchover to a replica; kill9: SIGKILL Patroni + postmaster of
# the leader, then restart it; linkcut: cut the leader's veth, then restore it), waiting
# until healthy (one leader, 2 streaming replicas, the VIP on the leader alone) between
# events. Measured by bench/vip_lab_client.py (in pgh-cl: per client kind — libpq with
# connect_timeout=2, and without one — a connection loop writing through the VIP and to
# each node's own address every 50 ms, one attempt at a time) and bench/vip_lab_holders.py
# (VIP holders every 50 ms); bench/vip_lab_report.py writes bench/results/vip-lab.md and .json.
# Usage, as root: make bench-vip-lab   or
#   PGHOOK_BIN=$PWD/bin/pghook N=5 SCENARIOS="switchover kill9 linkcut" DCS="etcd3 etcd" \
#   TOOLS="pghook shell vip-manager-1000 vip-manager-100" bash bench/vip-lab.sh
# Leaves the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
: "${PGHOOK_BIN:?PGHOOK_BIN must name the pghook binary (absolute path)}"
: "${N:=5}" "${SCENARIOS:=switchover kill9 linkcut}" "${TOOLS:=pghook shell vip-manager-1000 vip-manager-100}"
: "${DCS:=etcd3 etcd}"
export PGHOOK_BIN
LAB=$ROOT/e2e/lab/lab.sh
RAW=$ROOT/bench/results/vip-lab-raw
OUT=$ROOT/bench/results/vip-lab
CMD="PGHOOK_BIN=$PGHOOK_BIN N=$N SCENARIOS=\"$SCENARIOS\" DCS=\"$DCS\" TOOLS=\"$TOOLS\" bash bench/vip-lab.sh"
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
[[ $(id -u) == 0 ]] || { echo "vip-lab: must run as root" >&2; exit 1; }
# Results of a DCS setting or tool not in this run stay, so they can run apart.
for d in $DCS; do for t in $TOOLS; do rm -rf "${RAW:?}/$d/$t"; done; done
mkdir -p "$RAW"

log() { printf 'vip-lab: %s\n' "$*" >&2; }
now() { date +%s.%N; }

CLIENT_PID='' HOLDERS_PID=''
stop_samplers() {
	[[ -n $CLIENT_PID ]] && { kill "$CLIENT_PID" 2>/dev/null || true; wait "$CLIENT_PID" 2>/dev/null || true; }
	[[ -n $HOLDERS_PID ]] && { kill "$HOLDERS_PID" 2>/dev/null || true; wait "$HOLDERS_PID" 2>/dev/null || true; }
	CLIENT_PID='' HOLDERS_PID=''
}
cleanup() {
	stop_samplers
	bash "$LAB" down >&2 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# lib.sh in a subshell per call: each tool's lab records its own settings in lab.env.
# shellcheck disable=SC1091
lib() { (source "$ROOT/e2e/lab/lib.sh" && "$@"); }

other_node() { # other_node NOT... — first node not listed
	local n
	for n in n1 n2 n3; do [[ " $* " == *" $n "* ]] || { echo "$n"; return; }; done
}
# new leader (not OLD) answers /primary and holds the VIP; prints it
new_leader_with_vip() {
	local old=$1 l
	l=$(lib lab_leader 2>/dev/null) || return 1
	[[ $l != "$old" && $l != *' '* ]] || return 1
	[[ " $(lib lab_vip_holders) " == *" $l "* ]] || return 1
	echo "$l"
}
wait_until() { # wait_until TIMEOUT CMD... (polls every 0.1 s, prints CMD's output)
	local deadline=$(($(date +%s) + $1)) out; shift
	until out=$("$@" 2>/dev/null); do
		(($(date +%s) < deadline)) || return 1
		sleep 0.1
	done
	echo "$out"
}
healthy_vip() { lib lab_healthy && lib lab_vip_on_leader && lib lab_vip_probe >/dev/null; }

run_tool() {
	local tool=$1 d=$RAW/$LAB_DCS/$1 rep sc old new t0 tend
	mkdir -p "$d"
	: >"$d/events.tsv"
	bash "$LAB" down >&2
	case $tool in
	pghook) LAB_VIP_TOOL=pghook LAB_VIP=netlink bash "$LAB" up >"$d/up.log" 2>&1 ;;
	shell) LAB_VIP_TOOL=shell bash "$LAB" up >"$d/up.log" 2>&1 ;;
	vip-manager-*) LAB_VIP_TOOL=vip-manager LAB_VIPMGR_INTERVAL=${tool#vip-manager-} bash "$LAB" up >"$d/up.log" 2>&1 ;;
	esac || { tail -n 30 "$d/up.log" >&2; log "$tool: lab up failed"; return 1; }
	local leader; leader=$(lib lab_leader)
	lib lab_psql "$leader" -c 'create table if not exists public.bench_vip_lab (id bigserial primary key, at timestamptz not null default clock_timestamp(), src text)' >/dev/null
	ip netns exec pgh-cl env -i PATH=/usr/bin:/bin WATCH_PID=$$ PGPASSFILE=/var/tmp/pghook-lab/secrets/client.pgpass \
		/usr/bin/python3 -u "$ROOT/bench/vip_lab_client.py" 0.05 vip=10.251.77.100 \
		n1=10.251.77.11 n2=10.251.77.12 n3=10.251.77.13 \
		</dev/null >"$d/client.jsonl" 2>"$d/client.err" &
	CLIENT_PID=$!
	WATCH_PID=$$ python3 -u "$ROOT/bench/vip_lab_holders.py" 0.05 10.251.77.100 n1 n2 n3 \
		</dev/null >"$d/holders.jsonl" 2>"$d/holders.err" &
	HOLDERS_PID=$!
	sleep 2
	for rep in $(seq 1 "$N"); do
		for sc in $SCENARIOS; do
			wait_until 120 healthy_vip >/dev/null || { log "$tool: not healthy before $sc $rep"; lib lab_vip_holders >&2; return 1; }
			sleep 1 # a baseline of good samples
			old=$(lib lab_leader)
			t0=$(now)
			case $sc in
			switchover)
				new=$(other_node "$old")
				lib lab_switchover "$old" "$new" >>"$d/ctl.log" 2>&1 || { log "$tool: switchover failed"; return 1; }
				new=$(wait_until 60 new_leader_with_vip "$old") || { log "$tool: no new leader with the VIP"; return 1; }
				;;
			kill9)
				lib lab_kill_node "$old"
				new=$(wait_until 90 new_leader_with_vip "$old") || { log "$tool: no new leader with the VIP after kill -9"; return 1; }
				sleep 1
				lib lab_start_patroni "$old"
				;;
			linkcut)
				lib lab_link_down "$old"
				new=$(wait_until 90 new_leader_with_vip "$old") || { lib lab_link_up "$old"; log "$tool: no new leader with the VIP after link cut"; return 1; }
				sleep 1
				lib lab_link_up "$old"
				;;
			esac
			wait_until 180 healthy_vip >/dev/null || { log "$tool: not healthy after $sc $rep"; return 1; }
			tend=$(now)
			printf '%s %s %s %s %s %s\n' "$rep" "$sc" "$old" "$new" "$t0" "$tend" >>"$d/events.tsv"
			log "$tool $sc #$rep: $old -> $new in $(awk -v a="$t0" -v b="$tend" 'BEGIN{printf "%.1f", b-a}') s to healthy"
		done
	done
	sleep 1
	stop_samplers
	# pghook's own account (hand-over holds, takeover waits) for the report
	local n
	for n in n1 n2 n3; do
		cp "/var/tmp/pghook-lab/$n/vipwatch.log" "$d/$n-vipwatch.log" 2>/dev/null || true
		grep -h '"vip' "/var/tmp/pghook-lab/$n/patroni.log" >"$d/$n-callbacks.log" 2>/dev/null || true
	done
}

for LAB_DCS in $DCS; do
	export LAB_DCS
	for tool in $TOOLS; do
		if [[ $tool == vip-manager-* && $LAB_DCS != etcd ]]; then
			log "$tool: skipped on LAB_DCS=$LAB_DCS (vip-manager 1.0.2 reads the v2 keys only)"
			continue
		fi
		log "=== $LAB_DCS $tool ($(date -u +%T)) ==="
		run_tool "$tool" || { log "$LAB_DCS $tool: aborted (partial results kept)"; stop_samplers; }
	done
done
bash "$LAB" down >&2
BENCH_CMD=$CMD BENCH_DATE=$DATE BENCH_NOTE=${BENCH_NOTE:-} python3 "$ROOT/bench/vip_lab_report.py" "$RAW" "$OUT"
