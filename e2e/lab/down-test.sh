#!/usr/bin/env bash
# down-test.sh — `lab.sh down` takes down what a restarted machine kept of a lab that was
# up: LAB_DIR on disk (with its markers, pid files of processes that are gone and a
# postmaster.pid), while /run (namespaces, the control sockets) and /etc/pghook, which
# the lab made, are gone. Every lab test starts with that down; if it fails, no lab test
# runs. As root, with no lab up (it takes one down first).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

fail() {
	echo "down-test: FAIL: $*" >&2
	exit 1
}

[[ $(id -u) == 0 ]] || { echo "down-test: needs root; skipped"; exit 0; }
bash "$HERE/lab.sh" down >/dev/null 2>&1 || fail "the first down (from whatever state this host is in) failed"
[[ ! -e $LAB_DIR ]] || fail "$LAB_DIR still exists after a down"

# What the restarted machine kept.
install -d -m 0755 "$LAB_DIR"
printf 'LAB_DCS=etcd3\nLAB_TOPOLOGY=one-subnet\nLAB_VIP=netlink\n' >"$LAB_DIR/lab.env"
for n in "${LAB_NODES[@]}"; do
	install -d -o postgres -g postgres -m 0700 "$LAB_DIR/$n" "$LAB_DIR/$n/data"
	echo 999999999 >"$LAB_DIR/$n/patroni.pid"
	echo 999999999 >"$LAB_DIR/$n/etcd.pid"
	printf '999999999\n%s\n0\n5432\n/tmp\n*\n  5432001     123456\nready\n' "$LAB_DIR/$n/data" >"$LAB_DIR/$n/data/postmaster.pid"
done
if [[ ! -e /etc/pghook ]]; then touch "$LAB_DIR/.made-etc-pghook"; fi
if [[ ! -e /etc/postgresql ]]; then touch "$LAB_DIR/.made-etc-postgresql"; fi

out=$(bash "$HERE/lab.sh" down 2>&1) || fail "down of a restarted machine's lab exited $?:"$'\n'"$out"
[[ ! -e $LAB_DIR ]] || fail "$LAB_DIR still exists after the down:"$'\n'"$out"
echo "down-test: a restarted machine's lab goes down OK"
