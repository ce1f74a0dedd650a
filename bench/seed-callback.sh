#!/bin/bash
# The seed's callback.sh, as the write-up describes it (the seed system's callback.sh):
# Patroni appends "action role scope" after six positional arguments; on on_start and
# on_role_change the line SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,PWD is appended to
# ~/.pgtab when grep does not find it, and the VIP functions are empty stubs.
# Kept only as the baseline of bench/run.sh — pghook replaces it.
SCOPE=$1 NODENAME=$2 DATA_DIR=$3 LISTEN=$4 BIN_DIR=$5 PWD_=$6
ACTION=$7 ROLE=$8
PGTAB=${PGTAB:-$HOME/.pgtab}
set_vip() { :; }
unset_vip() { :; }
case "$ACTION" in
  on_start|on_role_change)
    line="${SCOPE},${NODENAME},${DATA_DIR},${LISTEN},${BIN_DIR},${PWD_}"
    [ -f "$PGTAB" ] || echo "SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,PWD,ROLE" > "$PGTAB"
    grep -q "^${line}" "$PGTAB" || echo "${line}" >> "$PGTAB"
    if [ "$ROLE" = "master" ]; then set_vip; else unset_vip; fi
    ;;
  on_stop) unset_vip ;;
esac
exit 0
