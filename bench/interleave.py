#!/usr/bin/env python3
"""Start-up of several pghook binaries, interleaved: one start of each in turn.

hyperfine runs all starts of one command before the next, so a machine whose speed
drifts within minutes (a shared VM) can shift one command against another; alternating
them spreads that drift over all. Each start is fork + exec + wait, timed with
perf_counter; the output goes to /dev/null.

Usage: bench/interleave.py [--rounds N] [--args "callback ..."] BINARY...
  ARGS default: the callback of bench/run.sh (its roster and config are created here).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

CALLBACK = ("--log-level error callback postgres node1 /var/lib/postgresql/15/main "
            "0.0.0.0:5432 /usr/lib/postgresql/15/bin pw on_role_change replica postgres")


def start(binary, argv, devnull):
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            os.execv(binary, [binary] + argv)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    ms = (time.perf_counter() - t) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"interleave: {binary} {' '.join(argv)} failed (exit {os.waitstatus_to_exitcode(status)})")
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=600)
    ap.add_argument("--args", default=CALLBACK)
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    if a.rounds < 1:
        sys.exit(f"interleave: --rounds {a.rounds}: give at least 1")
    for b in a.binaries:
        if not os.access(b, os.X_OK):
            sys.exit(f"interleave: {b} is not an executable file")
    argv = a.args.split()
    devnull = os.open(os.devnull, os.O_WRONLY)
    times = {b: [] for b in a.binaries}
    with tempfile.TemporaryDirectory(prefix="pghook-interleave-") as work:
        os.environ.update(HOME=work, PGHOOK_PGTAB=f"{work}/pgtab", PGHOOK_CONFIG=f"{work}/pghook.yaml")
        open(f"{work}/pghook.yaml", "w").close()
        for b in a.binaries:  # warm-up: page cache, roster row present
            for _ in range(10):
                start(b, argv, devnull)
        for i in range(a.rounds):
            for b in (a.binaries if i % 2 == 0 else a.binaries[::-1]):
                times[b].append(start(b, argv, devnull))
    print(f"{a.rounds} rounds, args: {a.args}")
    print("| binary | median ms | p25 ms | p10 ms | min ms |")
    print("|---|---:|---:|---:|---:|")
    for b in a.binaries:
        x = sorted(times[b])
        print(f"| {b} | {statistics.median(x):.2f} | {x[len(x) // 4]:.2f} | {x[len(x) // 10]:.2f} | {x[0]:.2f} |")


if __name__ == "__main__":
    main()
