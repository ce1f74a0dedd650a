#!/usr/bin/env bash
# demo.sh — bring the lab up, show pghook's roster on every node, switch the Patroni
# leader over and show how the roster followed. Leaves the lab running.
#
#   PGHOOK_BIN=$PWD/bin/pghook bash e2e/lab/demo.sh      (or: make demo)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

: "${PGHOOK_BIN:?set PGHOOK_BIN to the pghook binary (absolute path), or run make demo}"

if [[ -t 1 ]]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

# show_vip — which nodes hold the VIP (read from each namespace's kernel), and which
# server answers through it from the client namespace.
show_vip() {
	local holders answer
	holders=$(lab_vip_holders)
	answer=$(lab_psql_client "$LAB_VIP_ADDR" -c "select current_setting('data_directory') || ' (in_recovery=' || pg_is_in_recovery() || ')'" 2>&1) || true
	printf 'VIP %s held by: %s\nthrough the VIP, the client reaches: %s\n' "$LAB_VIP_ADDR" "${holders:-nobody}" "$answer"
}

# show_pgtab — every node's roster, through pghook itself (the file as a fallback).
show_pgtab() {
	local n
	for n in "${LAB_NODES[@]}"; do
		echo "-- $n: $LAB_DIR/$n/home/.pgtab"
		"$PGHOOK_BIN" pgtab --config "$(lab_pghook_yaml "$n")" 2>/dev/null ||
			cat "$LAB_DIR/$n/home/.pgtab" 2>/dev/null ||
			echo "(no roster yet)"
	done
}

# roster_role NODE — the ROLE column of NODE's own row in its .pgtab.
roster_role() {
	local r
	if r=$("$PGHOOK_BIN" pgtab --config "$(lab_pghook_yaml "$1")" --json 2>/dev/null); then
		jq -r --arg s "$LAB_SCOPE" --arg n "$1" '.[] | select(.scope == $s and .node == $n) | .role' <<<"$r"
	else
		awk -F, -v s="$LAB_SCOPE" -v n="$1" '$1 == s && $2 == n {print $6}' "$LAB_DIR/$1/home/.pgtab"
	fi
}
roster_is() { [[ $(roster_role "$1") == "$2" ]]; }
leader_is() { [[ $(lab_leader) == "$1" ]]; }
# show_cluster: Patroni's view, pghook's roster on each node, who holds the VIP.
show_cluster() {
	say "patronictl list"
	lab_patronictl list
	say "pghook's roster on each node"
	show_pgtab
	say "the VIP"
	show_vip
}

say "lab up"
bash "$HERE/lab.sh" up

show_cluster

old=$(lab_leader)
new=
for n in "${LAB_NODES[@]}"; do
	if [[ $n != "$old" ]]; then new=$n; break; fi
done

say "switchover $old -> $new"
t0=$(date +%s.%N)
lab_patronictl switchover --master "$old" --candidate "$new" --force
lab_wait 60 "$new to lead" leader_is "$new" || {
	lab_dump_logs patroni 30
	exit 1
}
printf 'new leader %s after %.1fs\n' "$new" "$(echo "$(date +%s.%N) - $t0" | bc)"
# The new primary's on_role_change writes "primary" at once; the old one goes through
# on_stop (demoted) and then on_role_change replica a few seconds later.
lab_wait 60 "$new's roster row to say primary" roster_is "$new" primary || exit 1
lab_wait 60 "$old's roster row to say replica" roster_is "$old" replica || exit 1
lab_wait_healthy 60 || exit 1
printf 'rosters and replication settled after %.1fs\n' "$(echo "$(date +%s.%N) - $t0" | bc)"

show_cluster

say "callbacks pghook logged on $old and $new (JSON lines in patroni.log)"
for n in "$old" "$new"; do
	grep -h '"message":"callback applied"' "$LAB_DIR/$n/patroni.log" | tail -n 3 | jq -c '{node, action, role, roster_role, vip, took_ms}' 2>/dev/null ||
		grep -h '^{' "$LAB_DIR/$n/patroni.log" | tail -n 3
done

say "explore"
cat <<EOF
The lab is still running (etcd, Patroni and PostgreSQL 15 in namespaces pgh-n1..3,
client namespace pgh-cl, bridge pghbr0 10.251.77.1/24; state in $LAB_DIR).

  ip netns exec pgh-$new ip -br addr                 # a node's view of the network
  ip netns exec pgh-n1 patronictl -c $LAB_DIR/n1/patroni.yml list
  tail -f $LAB_DIR/$new/patroni.log                  # Patroni + pghook's JSON callback lines
  $PGHOOK_BIN pgtab --config $LAB_DIR/$new/pghook.yaml

  # a shell as postgres on $new, with pghook's environment for the cluster:
  cd /tmp && ip netns exec pgh-$new setpriv --reuid=postgres --regid=postgres --init-groups \\
      env -i HOME=$LAB_DIR/$new/home PATH=/usr/bin:/bin TERM=\$TERM bash
  eval "\$($LAB_DIR/bin/pghook env --config $LAB_DIR/$new/pghook.yaml $LAB_SCOPE)"; psql

  # psql into the leader from the client namespace (password from the lab's pgpass):
  ip netns exec pgh-cl env PGPASSFILE=$LAB_DIR/secrets/client.pgpass \\
      psql -h $(lab_ip "$new") -U postgres -d postgres

  # helpers for scripts and tests: source e2e/lab/lib.sh; lab_leader; lab_psql $new -c 'select 1'
  bash e2e/lab/lab.sh status

Take it down with:  make lab-down     (or: bash e2e/lab/lab.sh down)
EOF
