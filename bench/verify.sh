#!/usr/bin/env bash
# Backup verification benchmark, on one zstd backup of a SIZE_GB (default 2)
# PostgreSQL 15 database (the data of bench/restore.sh: pgbench -i ~75 %,
# random text ~25 %):
#   - pghook backup verify (every archive read, sizes and CRC32C against the
#     manifest, every WAL record of the backup's range walked; nothing written)
#   - what PostgreSQL 15 offers instead: extract the tars (tar -I zstd -xf, the
#     WAL into pg_wal/) and pg_verifybackup the result (it checks the files and
#     runs pg_waldump over the WAL range); the extraction is written to disk
#   - pghook create-replica of this build, and of PGHOOK_BASE_BIN when set (a
#     build without the WAL walk), to see what the walk costs a restore.
# Wall and CPU time (/usr/bin/time's user+sys, waited-for children included)
# per run. Each round drops the page cache before each run (cold reads); the two
# create-replica builds swap places every other round. Wall time
# and peak RSS (the process tree's sum, bench/measure.py) per run; RUNS
# (default 3) rounds, medians and min-max.
# Usage (as root): PGHOOK_BIN=bin/pghook [PGHOOK_BASE_BIN=…] SIZE_GB=2 RUNS=3 bash bench/verify.sh
# Writes bench/results/verify.md and .json; removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOOK_BIN:?set PGHOOK_BIN to the built pghook}"
PGHOOK_BIN=$(readlink -f "$PGHOOK_BIN")
[ -n "${PGHOOK_BASE_BIN:-}" ] && PGHOOK_BASE_BIN=$(readlink -f "$PGHOOK_BASE_BIN")
SIZE_GB=${SIZE_GB:-2}
RUNS=${RUNS:-3}
PGBIN=/usr/lib/postgresql/15/bin
[ "$(id -u)" = 0 ] || { echo "bench-verify: run as root (initdb as postgres, drop_caches)" >&2; exit 1; }
for b in "$PGBIN/initdb" "$PGBIN/pg_verifybackup" /usr/bin/pgbench /usr/bin/time zstd python3; do
  command -v "$b" >/dev/null || { echo "bench-verify: $b missing" >&2; exit 1; }
done
MEASURE=$PWD/bench/measure.py
mkdir -p bench/results
W=$(mktemp -d /var/tmp/pghook-bench-verify.XXXXXX)
PGDATA=$W/pgdata BK=$W/backups
cleanup() {
  [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$W"
mkdir -p "$BK"
t_start=$(date +%s)
log() { printf '[%4ds] %s\n' "$(( $(date +%s) - t_start ))" "$*" >&2; }

# --- the primary and its data --------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$PGDATA" "$W/sock" && chown postgres: "$PGDATA" "$W/sock"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$W/sock/pg.log" -w -o \
  "-c port=$PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$W/sock -c fsync=off -c wal_keep_size=2GB -c max_wal_size=4GB -c checkpoint_timeout=30min" start >/dev/null
psql() { runuser -u postgres -- /usr/bin/psql -h "$W/sock" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
SCALE=$(python3 -c "print(max(1, round($SIZE_GB * 1024 * 0.75 / 15)))")
TEXT_ROWS=$(python3 -c "print(int($SIZE_GB * 2**30 * 0.25 / 300))")
log "generating: pgbench -i -s $SCALE, $TEXT_ROWS rows of random text (~${SIZE_GB} GB)"
runuser -u postgres -- /usr/bin/pgbench -h "$W/sock" -p "$PORT" -U postgres -i -s "$SCALE" -I dtGvp -q postgres >/dev/null 2>&1
psql -c "CREATE TABLE notes (id bigint PRIMARY KEY, body text)" \
     -c "INSERT INTO notes SELECT g, md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text) FROM generate_series(1, $TEXT_ROWS) g" \
     -c "CHECKPOINT"
# Writes during the backup, so that its WAL range holds real records.
runuser -u postgres -- /usr/bin/pgbench -h "$W/sock" -p "$PORT" -U postgres -T 20 -c 2 -n postgres >/dev/null 2>&1 &
LOADPID=$!
export PGHOOK_CONFIG=$W/pghook.yaml
: > "$PGHOOK_CONFIG"
BDIR=$("$PGHOOK_BIN" --log-level warn backup --scope bench --backup-dir "$BK" --compression zstd --host 127.0.0.1 --port "$PORT" --user postgres)
wait "$LOADPID" || true
chown -R postgres: "$BK"
DATA_BYTES=$(python3 -c "import json; print(json.load(open('$BDIR/pghook.json'))['data_bytes'])")
WAL_RANGE=$(python3 -c "import json; m=json.load(open('$BDIR/pghook.json')); print(m['start_lsn'], '-', m['end_lsn'])")
WAL_BYTES=$(tar -tvf "$BDIR/pg_wal.tar" | awk '$3 > 1000000 {s += $3} END {print s+0}')
log "backup $BDIR: $((DATA_BYTES >> 20)) MB of data, $(( $(du -sb "$BDIR" | cut -f1) >> 20 )) MB stored, WAL $WAL_RANGE in $((WAL_BYTES >> 20)) MB of segments"
CONN="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"

# --- runs ----------------------------------------------------------------
ROWS=$W/rows.jsonl
: > "$ROWS"
run() {
  local name=$1; shift 2
  rm -rf "$W/out" && mkdir -p "$W/out" && chown postgres: "$W/out"
  sync; echo 3 > /proc/sys/vm/drop_caches
  local rc=0
  python3 "$MEASURE" "$W/m.json" -- "$@" >"$W/run.log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then log "FAILED ($rc): $name"; tail -5 "$W/run.log" >&2; fi
  python3 - "$W/m.json" "$name" "$rc" >> "$ROWS" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m.update(name=sys.argv[2], rc=int(sys.argv[3]))
print(json.dumps(m))
PY
  log "$name: $(python3 -c "import json; m=json.load(open('$W/m.json')); print('%.2f s, %.0f MB' % (m['wall_s'], m['tree_rss_mb']))")"
}
for i in $(seq 1 "$RUNS"); do
  log "round $i/$RUNS"
  run "pghook backup verify" -- "$PGHOOK_BIN" --log-level warn backup verify --backup-dir "$BK" --scope bench
  run "tar -I zstd -xf + pg_verifybackup" -- sh -c "tar -I zstd -xf '$BDIR/base.tar.zst' -C '$W/out' && mkdir -p '$W/out/pg_wal' && tar -xf '$BDIR/pg_wal.tar' -C '$W/out/pg_wal' && $PGBIN/pg_verifybackup -q -m '$BDIR/backup_manifest' '$W/out'"
  restores=(this)
  [ -n "${PGHOOK_BASE_BIN:-}" ] && restores=(this base)
  # The disk is slower right after another large write: alternate which build goes first.
  [ $((i % 2)) = 0 ] && [ ${#restores[@]} = 2 ] && restores=(base this)
  for r in "${restores[@]}"; do
    if [ "$r" = this ]; then
      run "pghook create-replica (this build)" -- runuser -u postgres -- "$PGHOOK_BIN" --log-level warn create-replica --scope=bench --role=replica \
        --datadir="$W/out/data" --connstring="$CONN" --backup_dir="$BK"
    else
      run "pghook create-replica (PGHOOK_BASE_BIN, no WAL walk)" -- runuser -u postgres -- "$PGHOOK_BASE_BIN" --log-level warn create-replica --scope=bench --role=replica \
        --datadir="$W/out/data" --connstring="$CONN" --backup_dir="$BK"
    fi
  done
done

# --- results -------------------------------------------------------------
python3 - "$ROWS" "$SIZE_GB" "$DATA_BYTES" "$WAL_RANGE" "$WAL_BYTES" "$RUNS" <<'PY' > bench/results/verify.md
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
size_gb, data, walr, walb, runs = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
print(f"Backup: zstd, {data / 2**20:.0f} MiB of data, WAL {walr} ({walb / 2**20:.0f} MiB of segments); {runs} rounds, cold page cache; median (min–max).\n")
print("| run | wall s | CPU s (user+sys, children included) | peak RSS MiB (process tree) | failures |")
print("|---|---|---|---|---|")
out = {}
for name in dict.fromkeys(r["name"] for r in rows):
    rs = [r for r in rows if r["name"] == name]
    w = [r["wall_s"] for r in rs]
    m = [r["tree_rss_mb"] for r in rs]
    c = [r.get("cpu_s", 0) for r in rs]
    fails = sum(1 for r in rs if r["rc"] != 0)
    out[name] = {"wall_s": w, "cpu_s": c, "tree_rss_mb": m, "failures": fails}
    print(f"| {name} | {statistics.median(w):.2f} ({min(w):.2f}–{max(w):.2f}) | {statistics.median(c):.2f} ({min(c):.2f}–{max(c):.2f}) | {statistics.median(m):.0f} ({min(m):.0f}–{max(m):.0f}) | {fails} |")
json.dump(out, open(sys.argv[1].rsplit("/", 1)[0] + "/verify.json", "w"), indent=1)
PY
cp "$W/verify.json" bench/results/verify.json
cat bench/results/verify.md
