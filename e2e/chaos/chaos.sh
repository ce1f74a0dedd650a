#!/usr/bin/env bash
# chaos.sh — randomized fault cycles on the three-node lab (e2e/lab/lab.sh), with a client
# writing numbered rows through the VIP every 50 ms and an observer sampling every node's
# VIP and Patroni role every 50 ms; e2e/chaos/report.py checks the invariants listed in docs/RELIABILITY.md
# and writes the figures (e2e/chaos/results/<name>.md and .json).
#
# Usage, as root:   make chaos        (N=100 SEED=<random> LAB_DCS=etcd3 SYNC=1)
#   PGHOOK_BIN=$PWD/bin/pghook N=100 SEED=42 LAB_DCS=etcd3|etcd SYNC=1|0 \
#   FAULTS="switchover kill9 kill9-patroni linkcut etcd-kill replica-restart rebuild pause" \
#   bash e2e/chaos/chaos.sh
# SYNC=1 runs Patroni with synchronous_mode: true (no acknowledged write may be lost);
# SYNC=0 reports the asynchronous figure. NAME (default <LAB_DCS>-<sync|async>) names the
# results, so a shorter run can sit beside the ones the docs quote. The seed is printed and recorded: the same
# seed replays the same sequence of faults and of choices among nodes (which node leads
# after a failover is Patroni's race, so targets named by role can differ). Leaves the lab down.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
: "${PGHOOK_BIN:?PGHOOK_BIN must name the pghook binary (absolute path)}"
: "${N:=100}" "${LAB_DCS:=etcd3}" "${SYNC:=1}"
: "${FAULTS:=switchover kill9 kill9-patroni linkcut etcd-kill replica-restart rebuild pause}"
: "${SEED:=$((RANDOM * 32768 + RANDOM))}"
export PGHOOK_BIN LAB_DCS LAB_VIP=netlink LAB_VIP_TOOL=pghook
[[ $SEED =~ ^[0-9]+$ ]] || { echo "chaos: SEED=$SEED: give a whole number (bash would seed with 0)" >&2; exit 2; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "chaos: N=$N: give the number of cycles, 1 or more" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "chaos: must run as root" >&2; exit 1; }
mode=async; [[ $SYNC == 1 ]] && mode=sync
NAME=${NAME:-$LAB_DCS-$mode}
RAW=$ROOT/e2e/chaos/results/raw-$NAME
OUT=$ROOT/e2e/chaos/results/$NAME
LAB=$ROOT/e2e/lab/lab.sh
rm -rf "$RAW"
mkdir -p "$RAW"
RANDOM=$SEED
read -ra FAULT_LIST <<<"$FAULTS"

log() { printf 'chaos: %s\n' "$*" >&2; }
now() { date +%s.%N; }
# shellcheck disable=SC1091
lib() { (source "$ROOT/e2e/lab/lib.sh" && "$@"); }

CLIENT_PID='' OBS_PID=''
stop_samplers() {
	[[ -n $CLIENT_PID ]] && { kill "$CLIENT_PID" 2>/dev/null || true; wait "$CLIENT_PID" 2>/dev/null || true; }
	[[ -n $OBS_PID ]] && { kill "$OBS_PID" 2>/dev/null || true; wait "$OBS_PID" 2>/dev/null || true; }
	CLIENT_PID='' OBS_PID=''
}
cleanup() {
	stop_samplers
	for n in n1 n2 n3; do lib lab_link_up "$n" 2>/dev/null || true; done
	bash "$LAB" down >"$RAW/down.log" 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_until() { # wait_until TIMEOUT CMD... (polls every 0.1 s, prints CMD's output)
	local deadline=$(($(date +%s) + $1)) out; shift
	until out=$("$@" 2>/dev/null); do
		(($(date +%s) < deadline)) || return 1
		sleep 0.1
	done
	echo "$out"
}
# pick sets $picked rather than printing: a command substitution runs in a subshell,
# which bash seeds anew, so the seed would not replay the sequence.
pick() { local a=("$@"); picked=${a[RANDOM % ${#a[@]}]}; }
replicas_of() { local n; for n in n1 n2 n3; do [[ $n == "$1" ]] || echo "$n"; done; }
new_leader() { # a leader other than $1
	local l
	l=$(lib lab_leader) || return 1
	[[ $l != "$1" && $l != *' '* ]] || return 1
	echo "$l"
}
healthy() { lib lab_healthy && lib lab_vip_on_leader; }
# sync mode: a synchronous standby is named (Patroni's /sync answers 200 on one node).
sync_ready() {
	[[ $SYNC == 1 ]] || return 0
	local n
	for n in n1 n2 n3; do
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$(lib lab_ip "$n"):8008/sync") == 200 ]] && return 0
	done
	return 1
}
ready() { healthy && sync_ready; }
sync_standby() { # the node whose /sync answers 200 (SYNC=1 only)
	[[ $SYNC == 1 ]] || return 1
	local n
	for n in n1 n2 n3; do
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$(lib lab_ip "$n"):8008/sync") == 200 ]] && { echo "$n"; return 0; }
	done
	return 1
}

# roster_matches — every node's .pgtab parses and its own row says what Patroni says
# (callbacks run after the role change, so callers retry for a few seconds).
roster_matches() {
	local n role want
	for n in n1 n2 n3; do
		want=$(lib lab_role "$n") || return 1
		[[ $want == master ]] && want=primary
		role=$(lib lab_pgtab "$n" 2>/dev/null | jq -r --arg n "$n" '[.[] | select(.node == $n)][0].role // empty' 2>/dev/null) || {
			echo "$n: .pgtab does not parse"; return 1; }
		[[ $role == "$want" ]] || { echo "$n: roster says '$role', Patroni '$want'"; return 1; }
	done
}
roster_check() {
	if wait_until 10 roster_matches >/dev/null; then echo 1; else roster_matches >>"$RAW/pgtab.err" 2>&1 || true; echo 0; fi
}

take_backup() { # on the leader, as postgres, into the lab's shared storage
	local l=$1
	lib lab_exec_pg "$l" "$(lib lab_pghook)" --config "$(lib lab_pghook_yaml "$l")" --log-format json \
		backup --scope "$LAB_SCOPE" --backup-dir "$LAB_DIR/backups" \
		--host "$(lib lab_ip "$l")" --port 5432 --user replicator --keep 2 >>"$RAW/backup.log" 2>&1
}

# ---- up -----------------------------------------------------------------------------------
log "seed $SEED, $N cycles, LAB_DCS=$LAB_DCS, $mode, faults: $FAULTS"
bash "$LAB" down >"$RAW/down0.log" 2>&1 || true
bash "$LAB" up >"$RAW/up.log" 2>&1 || { tail -n 30 "$RAW/up.log" >&2; log "lab up failed"; exit 1; }
eval "$(bash "$LAB" env)"
leader=$(lib lab_leader)
if [[ $SYNC == 1 ]]; then
	lib lab_patronictl edit-config --force -s synchronous_mode=true >>"$RAW/ctl.log" 2>&1
fi
lib lab_psql "$leader" -c 'create table if not exists public.chaos_rows (id bigint primary key, at timestamptz not null default clock_timestamp())' >/dev/null
wait_until 120 ready >/dev/null || { log "not ready after up"; exit 1; }

ip netns exec pgh-cl env -i PATH=/usr/bin:/bin WATCH_PID=$$ PGPASSFILE="$LAB_DIR/secrets/client.pgpass" \
	/usr/bin/python3 -u "$ROOT/e2e/chaos/client.py" 0.05 "$LAB_VIP_ADDR" </dev/null >"$RAW/client.jsonl" 2>"$RAW/client.err" &
CLIENT_PID=$!
WATCH_PID=$$ python3 -u "$ROOT/e2e/chaos/observer.py" 0.05 "$LAB_VIP_ADDR" \
	n1="$(lib lab_ip n1)" n2="$(lib lab_ip n2)" n3="$(lib lab_ip n3)" </dev/null >"$RAW/observer.jsonl" 2>"$RAW/observer.err" &
OBS_PID=$!
sleep 2

# ---- cycles -------------------------------------------------------------------------------
: >"$RAW/cycles.jsonl"
for cycle in $(seq 1 "$N"); do
	if ! wait_until 180 ready >/dev/null; then
		log "cycle $cycle: cluster not ready within 180 s; stopping"
		echo "{\"cycle\": $cycle, \"fault\": \"(not ready)\", \"ok\": false}" >>"$RAW/cycles.jsonl"
		break
	fi
	sleep 1 # a baseline of good samples
	pick "${FAULT_LIST[@]}"
	fault=$picked
	old=$(lib lab_leader)
	target=$old new="" ok=true note=""
	t0=$(now)
	case $fault in
	switchover) # under synchronous_mode Patroni accepts only the synchronous standby
		if ! target=$(sync_standby); then
			pick $(replicas_of "$old")
			target=$picked
		fi
		lib lab_switchover "$old" "$target" >>"$RAW/ctl.log" 2>&1 || { ok=false; note="switchover refused"; }
		new=$(wait_until 60 new_leader "$old") || { ok=false; note="no new leader"; }
		;;
	kill9) # Patroni and the postmaster of the leader
		lib lab_kill_node "$old"
		new=$(wait_until 90 new_leader "$old") || { ok=false; note="no new leader"; }
		sleep 1
		lib lab_start_patroni "$old"
		;;
	kill9-patroni) # Patroni alone: PostgreSQL keeps running as a primary nobody manages
		lib lab_signal_patroni "$old" KILL
		new=$(wait_until 90 new_leader "$old") || { ok=false; note="no new leader"; }
		sleep 1
		lib lab_start_patroni "$old"
		;;
	linkcut)
		lib lab_link_down "$old"
		new=$(wait_until 90 new_leader "$old") || { ok=false; note="no new leader"; }
		sleep 1
		lib lab_link_up "$old"
		;;
	etcd-kill) # one etcd member, SIGKILL, back after 3 s
		pick n1 n2 n3
		target=$picked
		pid=$(lib lab_pid "$target" etcd) && kill -KILL "$pid" 2>/dev/null || true
		sleep 3
		rm -f "$(lib lab_pidfile "$target" etcd)"
		lib lab_start_etcd "$target"
		;;
	replica-restart)
		pick $(replicas_of "$old")
		target=$picked
		lib lab_patronictl_on "$old" restart "$LAB_SCOPE" "$target" --force >>"$RAW/ctl.log" 2>&1 || { ok=false; note="restart refused"; }
		;;
	rebuild) # a fresh pghook backup, then Patroni rebuilds a replica through create_replica
		pick $(replicas_of "$old")
		target=$picked
		take_backup "$old" || note="backup failed (basebackup fallback expected)"
		lib lab_patronictl_on "$target" reinit "$LAB_SCOPE" "$target" --force --wait >>"$RAW/ctl.log" 2>&1 || { ok=false; note="reinit refused"; }
		;;
	pause)
		lib lab_patronictl_on "$old" pause --wait >>"$RAW/ctl.log" 2>&1 || { ok=false; note="pause failed"; }
		sleep 2
		lib lab_patronictl_on "$old" resume --wait >>"$RAW/ctl.log" 2>&1 || { ok=false; note="resume failed"; }
		;;
	esac
	tf=$(now)
	if ! wait_until 180 ready >/dev/null; then ok=false; note="${note:+$note; }not healthy within 180 s"; fi
	t1=$(now)
	roster_ok=$(roster_check)
	[[ -n $new ]] || new=$(lib lab_leader 2>/dev/null || echo "")
	printf '{"cycle": %d, "fault": "%s", "old": "%s", "target": "%s", "new": "%s", "t0": %s, "tf": %s, "t1": %s, "ok": %s, "roster_ok": %s, "note": "%s"}\n' \
		"$cycle" "$fault" "$old" "$target" "$new" "$t0" "$tf" "$t1" "$ok" "$([[ $roster_ok == 1 ]] && echo true || echo false)" "$note" >>"$RAW/cycles.jsonl"
	log "cycle $cycle/$N: $fault ($old -> ${new:-?}) $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s to ready${note:+ — $note}"
done
sleep 1
stop_samplers

# ---- after: every acknowledged row on the final primary, logs, leaks ------------------------
final=$(lib lab_leader) || final=""
if [[ -n $final ]]; then
	lib lab_psql "$final" -c 'copy (select id from public.chaos_rows order by id) to stdout' >"$RAW/final_ids.txt" || true
fi
echo "$final" >"$RAW/final_leader"
for n in n1 n2 n3; do
	cp "$(lib lab_node_dir "$n")/patroni.log" "$RAW/patroni-$n.log" 2>/dev/null || true
	cp "$(lib lab_node_dir "$n")/vipwatch.log" "$RAW/vipwatch-$n.log" 2>/dev/null || true
done
bash "$LAB" down >"$RAW/down.log" 2>&1 || true
# Leaks: no namespace, bridge or lab process left (every lab process — Patroni,
# PostgreSQL, etcd, pghook's watchers and announcers — runs with its cwd under LAB_DIR).
{
	ip netns list | grep -E '^pgh-' || true
	ip link show pghbr0 2>/dev/null | head -1 || true
	for p in /proc/[0-9]*; do
		cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
		[[ $cwd == "$LAB_DIR"* ]] && echo "process ${p#/proc/} ($(tr '\0' ' ' <"$p/cmdline" | cut -c1-80)) in $cwd"
	done
	true
} >"$RAW/leaks.txt"
trap - EXIT
CHAOS_CMD="PGHOOK_BIN=$PGHOOK_BIN N=$N SEED=$SEED LAB_DCS=$LAB_DCS SYNC=$SYNC bash e2e/chaos/chaos.sh" \
CHAOS_SEED=$SEED CHAOS_MODE=$mode CHAOS_DCS=$LAB_DCS \
	python3 "$ROOT/e2e/chaos/report.py" "$RAW" "$OUT"
