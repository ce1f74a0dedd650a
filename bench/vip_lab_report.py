"""bench/vip_lab_report.py — turns bench/vip-lab.sh's raw samples into
bench/results/vip-lab.json and vip-lab.md.
Usage: python3 vip_lab_report.py RAWDIR OUT_PREFIX   (env: BENCH_CMD, BENCH_DATE, BENCH_NOTE)
RAWDIR/<dcs>/<tool>/{client.jsonl,holders.jsonl,events.tsv,n*-vipwatch.log,n*-callbacks.log};
events.tsv columns: rep scenario old new t0 t_end
"""
import datetime, glob, json, os, statistics, sys

raw, outp = sys.argv[1], sys.argv[2]
DCSS = [d for d in ["etcd3", "etcd"] if os.path.isdir(os.path.join(raw, d))]
TOOLS = ["pghook", "shell", "vip-manager-1000", "vip-manager-100"]
SCEN = ["switchover", "kill9", "linkcut"]
KINDS = ["ct2", "none"]


def load(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def longest_gap(done, t0, t_end):
    """done: sorted completion times of successful writes. The longest gap between
    consecutive successes that ends after t0 (the last success before t0 opens it)."""
    before = [t for t in done if t <= t0]
    after = [t for t in done if t0 < t <= t_end]
    seq = ([before[-1]] if before else []) + after
    if len(seq) < 2:
        return None
    return max(b - a for a, b in zip(seq, seq[1:]))


def unowned(hs, t0, t_end):
    """Samples in the window with the VIP on no host, and the longest run of them
    (from its first empty sample to the next sample with a holder)."""
    win = [h for h in hs if t0 <= h["at"] <= t_end]
    n, longest, start = 0, 0.0, None
    for h in win:
        if not h["h"]:
            n += 1
            if start is None:
                start = h["at"]
        elif start is not None:
            longest = max(longest, h["at"] - start)
            start = None
    if start is not None and win:
        longest = max(longest, win[-1]["at"] - start)
    return n, longest


def log_counts(d):
    c = {"takeover_wait": 0, "taken_anyway": 0, "release_deferred": 0}
    for f in glob.glob(os.path.join(d, "n*-vipwatch.log")) + glob.glob(os.path.join(d, "n*-callbacks.log")):
        with open(f, errors="replace") as fh:
            for line in fh:
                if "another host answers for the vip; waiting" in line:
                    c["takeover_wait"] += 1
                if "taking it anyway" in line:
                    c["taken_anyway"] += 1
                if "release deferred" in line:
                    c["release_deferred"] += 1
    return c


def vip_moves(d):
    """(time, node, "added"|"removed") from pghook's watcher logs, sorted."""
    out = []
    for f in glob.glob(os.path.join(d, "n*-vipwatch.log")):
        node = os.path.basename(f).split("-")[0]
        with open(f, errors="replace") as fh:
            for line in fh:
                if '"vip added"' not in line and '"vip removed"' not in line:
                    continue
                try:
                    r = json.loads(line)
                    t = datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00")[:26] + "+00:00").timestamp()
                except (ValueError, KeyError):
                    continue
                out.append((t, node, "added" if r["message"] == "vip added" else "removed"))
    return sorted(out)


def logged_gap(moves, old, new, t0, t_end):
    """From the old holder's last "vip removed" to the new holder's first "vip added"
    after it, in the window: the unowned time as pghook logged it (negative: overlap)."""
    rem = [t for t, n, k in moves if n == old and k == "removed" and t0 <= t <= t_end]
    if not rem:
        return None
    add = [t for t, n, k in moves if n == new and k == "added" and t0 <= t <= t_end]
    if not add:
        return None
    return min(add, key=lambda a: abs(a - rem[-1])) - rem[-1]


events, logs = [], {}
for dcs in DCSS:
    for tool in TOOLS:
        d = os.path.join(raw, dcs, tool)
        if not os.path.exists(os.path.join(d, "events.tsv")):
            continue
        logs.setdefault(dcs, {})[tool] = log_counts(d)
        cl = load(os.path.join(d, "client.jsonl"))
        hs = load(os.path.join(d, "holders.jsonl"))
        moves = vip_moves(d)
        ok = {k: {"vip": sorted(r["at"] + r["took"] for r in cl if r.get("k") == k and r["t"] == "vip" and r["ok"]),
                  "dir": sorted(r["at"] + r["took"] for r in cl if r.get("k") == k and r["t"] != "vip" and r["ok"])}
              for k in KINDS}
        with open(os.path.join(d, "events.tsv")) as f:
            for line in f:
                p = line.split()
                if len(p) < 6:
                    continue
                rep, scen, old, new, t0, t_end = p[0], p[1], p[2], p[3], float(p[4]), float(p[5])
                ev = {"dcs": dcs, "tool": tool, "scenario": scen, "rep": int(rep), "old": old, "new": new,
                      "t0": t0, "t_end": t_end}
                for k in KINDS:
                    dt = longest_gap(ok[k]["vip"], t0, t_end)
                    fl = longest_gap(ok[k]["dir"], t0, t_end)
                    ev["downtime_" + k] = dt
                    ev["floor_" + k] = fl
                    ev["excess_" + k] = None if dt is None or fl is None else dt - fl
                    ev["longest_attempt_" + k] = max((r["took"] for r in cl if r.get("k") == k and r["t"] == "vip"
                                                      and t0 <= r["at"] <= t_end), default=None)
                ev["double_samples"] = sum(1 for h in hs if t0 <= h["at"] <= t_end and len(h["h"]) >= 2)
                ev["unowned_samples"], ev["unowned_longest_s"] = unowned(hs, t0, t_end)
                ev["unowned_logged_s"] = logged_gap(moves, old, new, t0, t_end)
                last_old = max((h["at"] for h in hs if t0 <= h["at"] <= t_end and old in h["h"]), default=None)
                ev["old_vip_held_until_s"] = None if last_old is None else last_old - t0
                events.append(ev)

METRICS = ["downtime_ct2", "floor_ct2", "excess_ct2", "longest_attempt_ct2",
           "downtime_none", "floor_none", "excess_none", "longest_attempt_none",
           "unowned_samples", "unowned_longest_s", "unowned_logged_s", "double_samples"]


def agg(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs)}


summary = {}
for dcs in DCSS:
    for tool in TOOLS:
        for sc in SCEN:
            evs = [e for e in events if e["dcs"] == dcs and e["tool"] == tool and e["scenario"] == sc]
            if evs:
                s = {m: agg([e.get(m) for e in evs]) for m in METRICS}
                s["events"] = len(evs)
                summary.setdefault(dcs, {}).setdefault(tool, {})[sc] = s

doc = {"command": os.environ.get("BENCH_CMD", ""), "date": os.environ.get("BENCH_DATE", ""),
       "note": os.environ.get("BENCH_NOTE", ""), "summary": summary, "logs": logs, "events": events}
with open(outp + ".json", "w") as f:
    json.dump(doc, f, indent=1)


def fs(a, fmt):
    if a is None:
        return "–"
    if a["min"] == a["max"]:
        return fmt % a["median"]
    return (fmt + " (" + fmt + "–" + fmt + ")") % (a["median"], a["min"], a["max"])


L = ["# VIP in the three-node Patroni lab: pghook vs shell callback vs vip-manager 1.0.2", "",
     "Date: %s  " % doc["date"], "Command: `%s`" % doc["command"], ""]
if doc["note"]:
    L += [doc["note"], ""]
L += ["Median (min–max) per DCS × tool × scenario; n = events measured. ct2 = libpq with "
      "connect_timeout=2, none = libpq without connect_timeout; each a loop of one attempt at a time.", "",
      "| DCS | tool | scenario | n | downtime ct2 s | − floor | longest attempt ct2 s | downtime none s | − floor | longest attempt none s | floor s | unowned samples | unowned s (pghook log) | samples on 2+ hosts |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for dcs in DCSS:
    for tool in TOOLS:
        for sc in SCEN:
            s = summary.get(dcs, {}).get(tool, {}).get(sc)
            if not s:
                continue
            L.append("| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                dcs, tool, sc, s["events"], fs(s["downtime_ct2"], "%.2f"), fs(s["excess_ct2"], "%+.2f"),
                fs(s["longest_attempt_ct2"], "%.2f"), fs(s["downtime_none"], "%.2f"), fs(s["excess_none"], "%+.2f"),
                fs(s["longest_attempt_none"], "%.2f"), fs(s["floor_ct2"], "%.2f"),
                fs(s["unowned_samples"], "%d"), fs(s["unowned_logged_s"], "%.3f"), fs(s["double_samples"], "%d")))
L += ["", "pghook's logs (all events of the run): takeover waits (the new holder's probe found another "
      "host answering) / taken anyway after takeover_wait / callbacks' releases deferred by the hand-over hold", ""]
for dcs in DCSS:
    for tool in TOOLS:
        c = logs.get(dcs, {}).get(tool)
        if c and tool == "pghook":
            L.append("- %s: %d / %d / %d" % (dcs, c["takeover_wait"], c["taken_anyway"], c["release_deferred"]))
L += ["", "## Per event", "",
      "| DCS | tool | scenario | rep | old→new | downtime ct2 / none s | floor ct2 / none s | longest attempt ct2 / none s | unowned samples (longest run s) | unowned s (pghook log) | doubles | old node held VIP until (s after t0) |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|"]
f2 = lambda x, fmt="%.2f": "–" if x is None else fmt % x
for e in events:
    L.append("| %s | %s | %s | %d | %s→%s | %s / %s | %s / %s | %s / %s | %d (%s) | %s | %d | %s |" % (
        e["dcs"], e["tool"], e["scenario"], e["rep"], e["old"], e["new"],
        f2(e["downtime_ct2"]), f2(e["downtime_none"]), f2(e["floor_ct2"]), f2(e["floor_none"]),
        f2(e["longest_attempt_ct2"]), f2(e["longest_attempt_none"]),
        e["unowned_samples"], f2(e["unowned_longest_s"]), f2(e.get("unowned_logged_s"), "%.3f"),
        e["double_samples"], f2(e["old_vip_held_until_s"])))
with open(os.path.join(os.path.dirname(__file__), "vip_lab_method.md")) as f:
    L += ["", f.read().rstrip()]
with open(outp + ".md", "w") as f:
    f.write("\n".join(L) + "\n")
print("\n".join(L[:40]))
