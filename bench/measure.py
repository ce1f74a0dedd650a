#!/usr/bin/env python3
"""measure.py OUT.json -- CMD ARGS...: run CMD under /usr/bin/time -v and
record wall time, time -v's "Maximum resident set size" (the largest single
process: wait4 reports the max, not the sum, of a process and its children)
and the peak sum of RSS over the whole process tree, sampled every 20 ms
(pghook plus its zstd/gzip child, tar plus its zstd/gzip child). Exits with
CMD's status."""
import json, os, subprocess, sys, time

out, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
page = os.sysconf("SC_PAGE_SIZE")
tfile = out + ".time"


def tree_rss(root):
    kids, rss = {}, {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            with open(f"/proc/{p}/statm") as f:
                rss[int(p)] = int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(p))
    total, todo = 0, list(kids.get(root, []))  # descendants of time(1), not time itself
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(kids.get(p, []))
    return total


t0 = time.perf_counter()
proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", tfile] + cmd)
peak = 0
while proc.poll() is None:
    peak = max(peak, tree_rss(proc.pid))
    time.sleep(0.02)
wall = time.perf_counter() - t0
maxrss_kb, cpu_s = 0, 0.0
with open(tfile) as f:
    for line in f:
        if "Maximum resident set size" in line:
            maxrss_kb = int(line.rsplit(":", 1)[1])
        if "User time (seconds)" in line or "System time (seconds)" in line:
            cpu_s += float(line.rsplit(":", 1)[1])
json.dump({"wall_s": wall, "maxrss_mb": maxrss_kb / 1024, "tree_rss_mb": peak / 2**20,
           "cpu_s": cpu_s, "rc": proc.returncode}, open(out, "w"))
sys.exit(proc.returncode)
