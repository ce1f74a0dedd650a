#!/usr/bin/env bash
# Side-by-side wall time of one callback (roster upsert) — pghook against the seed's
# shell callback doing the same job — in one hyperfine run, >= 30 runs each.
# Usage: make bench   (PGHOOK_BIN=path/to/pghook bash bench/run.sh)
#   make bench BASELINES="<git ref> ..."  also builds each ref (its own `make build`, in a
#   temporary worktree) and runs it in the same hyperfine run, to show what a change
#   costs the callback beside the seed script; BASELINE_DIR=dir keeps those binaries there
#   (pghook-<short commit>), e.g. for bench/interleave.py.
# Writes bench/results/callback.json and .md; copy the table into docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PGHOOK_BIN:?set PGHOOK_BIN to the built pghook}"
RUNS=${RUNS:-100}
command -v hyperfine >/dev/null || { echo "bench: hyperfine missing (make deps)" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
  for wt in "$work"/wt-*; do [ -d "$wt" ] && git worktree remove --force "$wt"; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/results
args=(postgres node1 /var/lib/postgresql/15/main 0.0.0.0:5432 /usr/lib/postgresql/15/bin pw on_role_change replica postgres)
# Baselines: the same callback from other commits, each built by its own `make build`
# (before HOME moves below: the builds use the caller's Go cache).
cmds=()
i=0
for ref in ${BASELINES:-}; do
  i=$((i + 1))
  short=$(git rev-parse --short "$ref^{commit}") || { echo "bench: BASELINES: $ref is not a commit" >&2; exit 1; }
  git worktree add -q --detach "$work/wt-$i" "$short"
  make -s -C "$work/wt-$i" build BIN="$work/pghook-$i" >/dev/null
  cmds+=(-n "pghook at $short ($ref)" "$work/pghook-$i --log-level error callback ${args[*]}")
  if [ -n "${BASELINE_DIR:-}" ]; then mkdir -p "$BASELINE_DIR" && cp "$work/pghook-$i" "$BASELINE_DIR/pghook-$short"; fi
done
# A roster of a realistic size: a few clusters on the host, this node's row present,
# so both tools do a lookup and (pghook) a rewrite.
export HOME=$work PGTAB=$work/seed.pgtab PGHOOK_PGTAB=$work/pghook.pgtab PGHOOK_CONFIG=$work/pghook.yaml
: > "$work/pghook.yaml"
for s in other1 other2 other3; do
  "$PGHOOK_BIN" callback "$s" node1 /d 0.0.0.0:5433 /b pw on_start replica "$s" 2>/dev/null
  bench/seed-callback.sh "$s" node1 /d 0.0.0.0:5433 /b pw on_start replica "$s"
done
hyperfine -N --warmup 20 --runs "$RUNS" --style basic \
  --export-json bench/results/callback.json --export-markdown bench/results/callback.md \
  -n "pghook callback (atomic upsert under flock)" "$PGHOOK_BIN --log-level error callback ${args[*]}" \
  "${cmds[@]}" \
  -n "seed callback.sh (grep + append)" "bench/seed-callback.sh ${args[*]}"
# Medians, which the goal is stated in.
python3 - <<'PY'
import json
d = json.load(open("bench/results/callback.json"))
for r in d["results"]:
    print(f'{r["command"]}: median {r["median"]*1000:.2f} ms, mean {r["mean"]*1000:.2f} ms ± {r["stddev"]*1000:.2f}, runs {len(r["times"])}')
PY
