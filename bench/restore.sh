#!/usr/bin/env bash
# Restore benchmark, side by side on the same backup files: pghook
# create-replica against GNU tar (tar -I zstd -xf / tar -xzf / tar -I lz4 -xf /
# tar -xf, each followed by `sync -f` since pghook syncs; for gzip also
# tar -I igzip and tar -I pigz, the programs pghook prefers), against
# pg_basebackup -X stream -c fast from the running primary, and against the
# disk's sequential write limit for the same size, measured two ways: the
# issue's "fsync'd dd" (dd bs=1M conv=fsync, through the page cache like
# every restore) and the raw device (dd oflag=direct conv=fsync). For zstd and
# gzip also the floor of their decompressor: decoding alone, and into a pipe
# (bench/pipe_floor.py), nothing written.
# Data: a PostgreSQL 15 instance on loopback, pgbench -i (~75%) plus a
# table of random text (~25%), SIZE_GB in all (default 2).
# RUNS (default 3) rounds, each running every tool once in turn (so that
# the machine's noise spreads over all of them); the tables give medians
# and the min-max.
# Usage: make bench-restore  (as root; PGHOOK_BIN=path/to/pghook SIZE_GB=2 RUNS=3 bash bench/restore.sh)
# Writes bench/results/restore.md and .json (restore-tmpfs.* with BACKUP_ON=tmpfs). Removes the instance and every
# directory it made on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOOK_BIN:?set PGHOOK_BIN to the built pghook}"
PGHOOK_BIN=$(readlink -f "$PGHOOK_BIN")
SIZE_GB=${SIZE_GB:-2}
COMPRESSIONS=${COMPRESSIONS:-zstd gzip lz4 none}
RUNS=${RUNS:-3}
PGBIN=/usr/lib/postgresql/15/bin
[ "$(id -u)" = 0 ] || { echo "bench-restore: run as root (initdb as postgres, drop_caches)" >&2; exit 1; }
for b in "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBIN/pg_basebackup" /usr/bin/pgbench /usr/bin/time zstd gzip lz4 python3; do
  command -v "$b" >/dev/null || { echo "bench-restore: $b missing" >&2; exit 1; }
done
MEASURE=$PWD/bench/measure.py
mkdir -p bench/results
W=$(mktemp -d /var/tmp/pghook-bench-restore.XXXXXX)
PGDATA=$W/pgdata BK=
cleanup() {
  [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$W" ${BK:+"$BK"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$W"
# BACKUP_ON=disk (default): the backups on the same virtual disk as the restored data
# directory, so a restore's reads compete with its writes (dd only writes). tmpfs: the
# backups in RAM (/dev/shm), standing in for shared storage on another device — the
# restore's writes alone hit the disk. Results: bench/results/restore[-tmpfs].md/.json.
BACKUP_ON=${BACKUP_ON:-disk}
case $BACKUP_ON in
  disk) BK=$W/backups RESULT=restore ;;
  tmpfs) BK=$(mktemp -d /dev/shm/pghook-bench-backups.XXXXXX) RESULT=restore-tmpfs ;;
  *) echo "bench-restore: BACKUP_ON must be disk or tmpfs" >&2; exit 2 ;;
esac
mkdir -p "$BK" && chmod 755 "$BK"
t_start=$(date +%s)
# What else runs on the machine (the numbers are only as quiet as it is).
others() { top -b -n 2 -d 1 -w 200 | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ && $9+0 >= 5 {printf "%s%s %s%%", sep, $12, $9; sep=", "}'; }
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg); busy: $(others)"
log() { printf '[%4ds] %s\n' "$(( $(date +%s) - t_start ))" "$*" >&2; }

# --- the primary ---------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$PGDATA" "$W/sock" && chown postgres: "$PGDATA" "$W/sock"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync >/dev/null
# The replication user, by password from a pgpass (what Patroni gives pghook).
PW=bench-$RANDOM$RANDOM
{ printf 'host replication replicator 127.0.0.1/32 scram-sha-256\nhost all replicator 127.0.0.1/32 scram-sha-256\n'; cat "$PGDATA/pg_hba.conf"; } > "$W/hba" && mv "$W/hba" "$PGDATA/pg_hba.conf"
chown postgres: "$PGDATA/pg_hba.conf"
printf '127.0.0.1:%s:*:replicator:%s\n' "$PORT" "$PW" > "$W/pgpass" && chmod 600 "$W/pgpass"
export PGPASSFILE=$W/pgpass
# fsync=off only speeds up generating the data; the restores write their own files.
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$W/sock/pg.log" -w -o \
  "-c port=$PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$W/sock -c fsync=off -c wal_keep_size=2GB -c max_wal_size=4GB -c checkpoint_timeout=30min" start >/dev/null
psql() { runuser -u postgres -- /usr/bin/psql -h "$W/sock" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE ROLE replicator REPLICATION LOGIN PASSWORD '$PW'"

# --- data ----------------------------------------------------------------
# pgbench scale 1 is ~15 MB with its indexes; generated server-side (G).
SCALE=$(python3 -c "print(max(1, round($SIZE_GB * 1024 * 0.75 / 15)))")
TEXT_ROWS=$(python3 -c "print(int($SIZE_GB * 2**30 * 0.25 / 300))")
log "generating: pgbench -i -s $SCALE, $TEXT_ROWS rows of random text (~${SIZE_GB} GB)"
g0=$(date +%s.%N)
runuser -u postgres -- /usr/bin/pgbench -h "$W/sock" -p "$PORT" -U postgres -i -s "$SCALE" -I dtGvp -q postgres >/dev/null 2>&1
psql -c "CREATE TABLE notes (id bigint PRIMARY KEY, body text)" \
     -c "INSERT INTO notes SELECT g, md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text) FROM generate_series(1, $TEXT_ROWS) g" \
     -c "CHECKPOINT"
GEN_S=$(python3 -c "import time; print(round(time.time() - $g0, 1))")
DB_BYTES=$(du -sb --exclude=pg_wal "$PGDATA" | cut -f1)  # the table data, not the WAL generating it left
log "generated $((DB_BYTES >> 20)) MB in ${GEN_S} s"

# --- backups -------------------------------------------------------------
export PGHOOK_CONFIG=$W/pghook.yaml
: > "$PGHOOK_CONFIG"
declare -A BDIR BACKUP_S BACKUP_MB
for c in $COMPRESSIONS; do
  b0=$(date +%s.%N)
  BDIR[$c]=$("$PGHOOK_BIN" --log-level warn backup --scope "bench-$c" --backup-dir "$BK" --compression "$c" \
    --host 127.0.0.1 --port "$PORT" --user replicator)
  BACKUP_S[$c]=$(python3 -c "import time; print(round(time.time() - $b0, 1))")
  BACKUP_MB[$c]=$(( $(du -sb "${BDIR[$c]}" | cut -f1) >> 20 ))
  log "backup $c: ${BACKUP_MB[$c]} MB in ${BACKUP_S[$c]} s (${BDIR[$c]})"
done

# --- runs ----------------------------------------------------------------
CACHES=cold
drop_caches() {
  sync
  if [ "$CACHES" = cold ] && ! { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
    CACHES=warm
    log "drop_caches refused: caches are warm for every run"
  fi
}
ROWS=$W/rows.jsonl
: > "$ROWS"
TRIAL=0
# run NAME COMPRESSION READ_FROM_PRIMARY_BYTES(or "") -- CMD...: one measured run into $W/out.
run() {
  local name=$1 comp=$2 primary=$3; shift 4
  rm -rf "$W/out" && mkdir -p "$W/out"
  drop_caches
  local rc=0 load
  load=$(cut -d' ' -f1 /proc/loadavg)
  python3 "$MEASURE" "$W/m.json" -- "$@" >"$W/run.log" 2>&1 || rc=$?
  local bytes; bytes=${RUN_BYTES:-$(du -sb "$W/out" | cut -f1)}  # RUN_BYTES: rows that write nothing
  if [ "$rc" != 0 ]; then log "FAILED ($rc): $name"; tail -5 "$W/run.log" >&2; fi
  python3 - "$W/m.json" "$name" "$comp" "$bytes" "$primary" "$rc" "$TRIAL" "$load" "$*" >> "$ROWS" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
name, comp, nbytes, primary, rc, trial, load, cmd = sys.argv[2:]
m.update(name=name, compression=comp, bytes_written=int(nbytes), rc=int(rc), trial=int(trial), load1=float(load),
         mb_s=int(nbytes) / 2**20 / m["wall_s"], read_from_primary_bytes=None if primary == "" else int(primary),
         command=cmd)
print(json.dumps(m))
PY
  log "#$TRIAL $name ($comp): $(python3 -c "import json; m=json.load(open('$W/m.json')); print(f\"{m['wall_s']:.2f} s, RSS {m['maxrss_mb']:.0f} MB / tree {m['tree_rss_mb']:.0f} MB\")")"
  rm -rf "$W/out"
}
CONN="host=127.0.0.1 port=$PORT user=replicator dbname=postgres"
tarflag() { case $1 in *.zst) echo "-I zstd ";; *.gz) echo "-z ";; *.lz4) echo "-I lz4 ";; esac; }
# The gzip program pghook's create-replica uses: the first on PATH (replica/decompress.go).
GZIP_PROG=$(for p in igzip pigz gzip; do command -v "$p" >/dev/null && { echo "$p"; break; }; done)
pghook_name() { if [ "$1" = gzip ]; then echo "pghook create-replica ($GZIP_PROG)"; else echo "pghook create-replica"; fi; }
DD_MB=$(( DB_BYTES >> 20 ))
for TRIAL in $(seq 1 "$RUNS"); do
  for c in $COMPRESSIONS; do
    d=${BDIR[$c]}
    # (a) pghook: IDENTIFY_SYSTEM + WAL probe against the primary, then the files.
    run "$(pghook_name "$c")" "$c" 0 -- "$PGHOOK_BIN" --log-level warn create-replica --scope="bench-$c" --role=replica \
      --datadir="$W/out/data" --connstring="$CONN" --backup_dir="$BK"
    # (b) GNU tar on the same files, then syncfs like pghook. PostgreSQL 15
    # compresses pg_wal.tar only with gzip, so each file gets its own flag.
    base=$(ls "$d"/base.tar*) wal=$(ls "$d"/pg_wal.tar*)
    run "GNU tar $(tarflag "$base")-xf + sync" "$c" "" -- sh -c \
      "mkdir -p '$W/out/data/pg_wal' && tar $(tarflag "$base")-xf '$base' -C '$W/out/data' && tar $(tarflag "$wal")-xf '$wal' -C '$W/out/data/pg_wal' && sync -f '$W/out/data'"
    # pghook decompresses gzip with igzip, else pigz, when installed: tar gets them too.
    if [ "$c" = gzip ]; then
      for p in igzip pigz; do
        command -v "$p" >/dev/null || continue
        run "tar -I $p -xf + sync" "$c" "" -- sh -c \
          "mkdir -p '$W/out/data/pg_wal' && tar -I $p -xf '$base' -C '$W/out/data' && tar -I $p -xf '$wal' -C '$W/out/data/pg_wal' && sync -f '$W/out/data'"
      done
    fi
  done
  # (c) pg_basebackup from the primary: it reads the whole database from it.
  run "pg_basebackup -X stream -c fast" "-" "" -- "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U replicator -D "$W/out/data" -X stream -c fast
  python3 - "$ROWS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = rows[-1]; r["read_from_primary_bytes"] = r["bytes_written"]
open(sys.argv[1], "w").write("".join(json.dumps(x) + "\n" for x in rows))
PY
  # (d) the disk's sequential write limit for the same size: through the page
  # cache then fsync (the issue's "fsync'd dd"), and direct to the device.
  # On this kind of VM the page-cache dd takes ~1 s right after another
  # page-cache write of that size and 2-5 s after a pause of a few seconds or
  # after direct I/O (the restores'): an unmeasured dd first, so that the
  # measured one is the fast, strict yardstick in every round.
  mkdir -p "$W/out" && dd if=/dev/zero of="$W/out/warm" bs=1M count="$DD_MB" conv=fsync status=none && rm -f "$W/out/warm"
  run "dd bs=1M conv=fsync (write limit)" "-" "" -- dd if=/dev/zero of="$W/out/dd" bs=1M count="$DD_MB" conv=fsync status=none
  run "dd bs=1M oflag=direct conv=fsync (raw device)" "-" "" -- dd if=/dev/zero of="$W/out/dd" bs=1M count="$DD_MB" oflag=direct conv=fsync status=none
  # (e) floors of the programs pghook decompresses zstd and gzip with, nothing
  # written: decoding alone, and decoding into a 1 MB pipe that a reader empties
  # (bench/pipe_floor.py) — the least a restore through that program can take
  # here. MB/s over the database's size, like dd.
  for c in $COMPRESSIONS; do
    case $c in zstd) prog=zstd ;; gzip) prog=$GZIP_PROG ;; *) continue ;; esac
    base=$(ls "${BDIR[$c]}"/base.tar*)
    RUN_BYTES=$DB_BYTES run "floor: $prog -d > /dev/null (decoding only)" "$c" "" -- sh -c "$prog -d -c -q '$base' > /dev/null"
    RUN_BYTES=$DB_BYTES run "floor: $prog -d into a 1 MB pipe, read and discarded" "$c" "" -- python3 bench/pipe_floor.py "$prog" -d -c -q "$base"
  done
done

# --- report --------------------------------------------------------------
BACKUPS=$(for c in $COMPRESSIONS; do printf '%s %s %s\n' "$c" "${BACKUP_MB[$c]}" "${BACKUP_S[$c]}"; done)
CMDLINE="SIZE_GB=$SIZE_GB RUNS=$RUNS COMPRESSIONS='$COMPRESSIONS' BACKUP_ON=$BACKUP_ON PGHOOK_BIN=$PGHOOK_BIN bash bench/restore.sh"
export RESULT BACKUP_ON
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg); busy: $(others)"
python3 - "$ROWS" "$SIZE_GB" "$SCALE" "$TEXT_ROWS" "$DB_BYTES" "$GEN_S" "$CACHES" "$BACKUPS" "$CMDLINE" "$(( $(date +%s) - t_start ))" "$LOAD_BEFORE" "$LOAD_AFTER" "$RUNS" <<'PY'
import json, os, platform, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
size_gb, scale, text_rows, db_bytes, gen_s, caches, backups, cmdline, total_s, load_before, load_after, runs = sys.argv[2:]
backups = {l.split()[0]: {"size_mb": int(l.split()[1]), "seconds": float(l.split()[2])} for l in backups.splitlines() if l.strip()}
# One line per tool and compression: the median run, min-max, the highest RSS.
tools = {}
for r in rows:
    tools.setdefault((r["name"], r["compression"]), []).append(r)
summary = []
for (name, comp), rs in tools.items():
    walls = sorted(r["wall_s"] for r in rs)
    med = statistics.median(walls)
    nbytes = statistics.median(r["bytes_written"] for r in rs)
    summary.append({"name": name, "compression": comp, "runs": len(rs), "failed": sum(r["rc"] != 0 for r in rs),
                    "wall_s": med, "wall_min_s": walls[0], "wall_max_s": walls[-1], "mb_s": nbytes / 2**20 / med,
                    "maxrss_mb": max(r["maxrss_mb"] for r in rs), "tree_rss_mb": max(r["tree_rss_mb"] for r in rs),
                    "read_from_primary_bytes": rs[0]["read_from_primary_bytes"]})
def find(prefix, comp=None):
    return next((t for t in summary if t["name"].startswith(prefix) and (comp is None or t["compression"] == comp)), None)
dd, raw, pgb = find("dd bs=1M conv"), find("dd bs=1M oflag=direct"), find("pg_basebackup")
goals = []
for c in backups:
    p, t = find("pghook", c), find("GNU tar", c)
    if not p:
        continue
    if t:
        goals.append({"goal": f"{c}: >= 1.2x GNU tar" if c != "none" else "none: vs GNU tar (no goal)",
                      "value": f"{t['wall_s'] / p['wall_s']:.2f}x", "met": (t["wall_s"] / p["wall_s"] >= 1.2) if c != "none" else None})
    if c == "gzip" and "(" in p["name"]:
        prog = p["name"].split("(")[1].rstrip(")")
        same = find(f"tar -I {prog} ", c)
        if same:
            goals.append({"goal": f"gzip: vs tar -I {prog} (the same decompressor; no goal)", "value": f"{same['wall_s'] / p['wall_s']:.2f}x", "met": None})
    goals.append({"goal": f"{c}: faster than pg_basebackup", "value": f"{pgb['wall_s'] / p['wall_s']:.2f}x", "met": p["wall_s"] < pgb["wall_s"]})
    # The same ratio round by round (pghook against the dd of its own round): this
    # VM's page-cache dd moves 2-4x with the host, the rounds show how far.
    per = []
    for t in sorted({r["trial"] for r in rows}):
        pr = next((r for r in rows if r["trial"] == t and r["name"] == p["name"] and r["compression"] == c), None)
        dr = next((r for r in rows if r["trial"] == t and r["name"] == dd["name"]), None)
        if pr and dr:
            per.append(f"{100 * pr['mb_s'] / dr['mb_s']:.0f}%")
    goals.append({"goal": f"{c}: >= 70% of the disk write limit (fsync'd dd, dd bs=1M conv=fsync)", "value": f"{100 * p['mb_s'] / dd['mb_s']:.0f}% (rounds: {', '.join(per)})", "met": p["mb_s"] >= 0.7 * dd["mb_s"]})
    fl = next((t for t in summary if t["name"].startswith("floor:") and "pipe" in t["name"] and t["compression"] == c), None)
    if fl:
        goals.append({"goal": f"{c}: the decompressor's floor (into a pipe, nothing written) against the fsync'd dd (no goal)",
                      "value": f"{fl['wall_s']:.2f} s = {100 * fl['mb_s'] / dd['mb_s']:.0f}%", "met": None})
    goals.append({"goal": f"{c}: share of the raw device's write rate (dd oflag=direct; no goal)", "value": f"{100 * p['mb_s'] / raw['mb_s']:.0f}%", "met": None})
    goals.append({"goal": f"{c}: peak RSS <= 100 MB (pghook + decompressor)", "value": f"{p['maxrss_mb']:.0f} / {p['tree_rss_mb']:.0f} MB", "met": p["tree_rss_mb"] <= 100})
meta = {"command": cmdline, "size_gb": float(size_gb), "runs": int(runs), "pgbench_scale": int(scale), "text_rows": int(text_rows),
        "database_bytes": int(db_bytes), "generation_s": float(gen_s), "page_cache": caches, "total_s": int(total_s),
        "cpus": os.cpu_count(), "kernel": platform.release(), "backups": backups,
        "load_before": load_before, "load_after": load_after, "backups_on": os.environ["BACKUP_ON"]}
json.dump({"meta": meta, "summary": summary, "results": rows, "goals": goals}, open(f"bench/results/{os.environ['RESULT']}.json", "w"), indent=1)
with open(f"bench/results/{os.environ['RESULT']}.md", "w") as f:
    f.write(f"Command: `{cmdline}` (bench/restore.sh), {os.cpu_count()} CPUs, kernel {platform.release()}.\n\n")
    f.write(f"Database: pgbench scale {scale} + {text_rows} rows of random text = {int(db_bytes) / 2**20:.0f} MB of files (without pg_wal), "
            f"generated in {float(gen_s):.0f} s; page cache {caches} before each run; {runs} rounds of every tool in turn; whole run {total_s} s.\n\n")
    f.write("Backups on: " + ("the same virtual disk as the restored data directory (reads compete with the writes; dd only writes).\n\n" if os.environ["BACKUP_ON"] == "disk"
            else "tmpfs (/dev/shm), standing in for shared storage on another device: only the restore's writes hit the disk, as dd's do.\n\n"))
    f.write(f"Machine: load average (1/5/15 min) and processes above 5% CPU at the start: {load_before}; at the end: {load_after}; "
            f"1-min load when each run started: {min(r['load1'] for r in rows):.2f}–{max(r['load1'] for r in rows):.2f}.\n\n")
    f.write("| backup | size | took |\n|---|---|---|\n")
    for c, b in backups.items():
        f.write(f"| {c} | {b['size_mb']} MB | {b['seconds']:.1f} s |\n")
    f.write("\n| tool | compression | wall (median) | min–max | MB/s written | peak RSS (largest process) | peak RSS (process tree) | read from primary |\n|---|---|---|---|---|---|---|---|\n")
    for r in summary:
        prim = "-" if r["read_from_primary_bytes"] is None else (
            "0 (IDENTIFY_SYSTEM + WAL probe only)" if r["read_from_primary_bytes"] == 0 else f"{r['read_from_primary_bytes'] / 2**20:.0f} MB")
        fail = "" if r["failed"] == 0 else f" **({r['failed']} of {r['runs']} failed)**"
        f.write(f"| {r['name']}{fail} | {r['compression']} | {r['wall_s']:.2f} s | {r['wall_min_s']:.2f}–{r['wall_max_s']:.2f} s | {r['mb_s']:.0f} | {r['maxrss_mb']:.0f} MB | {r['tree_rss_mb']:.0f} MB | {prim} |\n")
    f.write("\n| goal (medians) | result | met |\n|---|---|---|\n")
    for g in goals:
        f.write(f"| {g['goal']} | {g['value']} | {'-' if g['met'] is None else ('yes' if g['met'] else '**no**')} |\n")
    f.write("\nEvery run:\n\n| round | tool | compression | wall | MB/s | 1-min load at start |\n|---|---|---|---|---|---|\n")
    for r in rows:
        f.write(f"| {r['trial']} | {r['name']}{'' if r['rc'] == 0 else ' (exit %d)' % r['rc']} | {r['compression']} | {r['wall_s']:.2f} s | {r['mb_s']:.0f} | {r['load1']:.2f} |\n")
print(open(f"bench/results/{os.environ['RESULT']}.md").read())
PY
