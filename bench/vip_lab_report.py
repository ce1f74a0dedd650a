"""bench/vip_lab_report.py — turns bench/vip-lab.sh's raw samples into
bench/results/vip-lab.json and vip-lab.md.
Usage: python3 vip_lab_report.py RAWDIR OUT_PREFIX   (env: BENCH_CMD, BENCH_DATE, BENCH_NOTE)
RAWDIR/<tool>/{client.jsonl,holders.jsonl,events.tsv}; events.tsv columns:
rep scenario old new t0 t_end
"""
import json, os, statistics, sys

raw, outp = sys.argv[1], sys.argv[2]
TOOLS = [d for d in ["pghook", "shell", "vip-manager-1000", "vip-manager-100"]
         if os.path.isdir(os.path.join(raw, d))]
SCEN = ["switchover", "kill9", "linkcut"]


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


events = []
for tool in TOOLS:
    d = os.path.join(raw, tool)
    cl = load(os.path.join(d, "client.jsonl"))
    hs = load(os.path.join(d, "holders.jsonl"))
    vip_ok = sorted(r["at"] + r["took"] for r in cl if r["t"] == "vip" and r["ok"])
    dir_ok = sorted(r["at"] + r["took"] for r in cl if r["t"] != "vip" and r["ok"])
    with open(os.path.join(d, "events.tsv")) as f:
        for line in f:
            p = line.split()
            if len(p) < 6:
                continue
            rep, scen, old, new, t0, t_end = p[0], p[1], p[2], p[3], float(p[4]), float(p[5])
            ev = {"tool": tool, "scenario": scen, "rep": int(rep), "old": old, "new": new,
                  "t0": t0, "t_end": t_end}
            ev["vip_downtime_s"] = longest_gap(vip_ok, t0, t_end)
            ev["floor_s"] = longest_gap(dir_ok, t0, t_end)
            if ev["vip_downtime_s"] is not None and ev["floor_s"] is not None:
                ev["excess_s"] = ev["vip_downtime_s"] - ev["floor_s"]
            ev["double_samples"] = sum(1 for h in hs if t0 <= h["at"] <= t_end and len(h["h"]) >= 2)
            ev["holder_samples"] = sum(1 for h in hs if t0 <= h["at"] <= t_end)
            # failed VIP writes after the VIP first answered as a primary on the new leader
            # (first = completion of the first success: attempts started during the outage
            # whose SYN was lost may still time out after it; they are not counted)
            first = min((r["at"] + r["took"] for r in cl if r["t"] == "vip" and r["ok"]
                         and r.get("node") == new and t0 < r["at"] <= t_end), default=None)
            ev["vip_fails_after_recovery"] = None if first is None else sum(
                1 for r in cl if r["t"] == "vip" and not r["ok"] and first < r["at"] <= t_end)
            # old node: last time it held the VIP (after t0)
            last_old = max((h["at"] for h in hs if t0 <= h["at"] <= t_end and old in h["h"]), default=None)
            ev["old_vip_held_until_s"] = None if last_old is None else last_old - t0
            events.append(ev)

METRICS = ["vip_downtime_s", "floor_s", "excess_s", "double_samples", "vip_fails_after_recovery"]


def agg(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs)}


summary = {}
for tool in TOOLS:
    for sc in SCEN:
        evs = [e for e in events if e["tool"] == tool and e["scenario"] == sc]
        if evs:
            summary.setdefault(tool, {})[sc] = {m: agg([e.get(m) for e in evs]) for m in METRICS}
            summary[tool][sc]["events"] = len(evs)

doc = {"command": os.environ.get("BENCH_CMD", ""), "date": os.environ.get("BENCH_DATE", ""),
       "note": os.environ.get("BENCH_NOTE", ""), "summary": summary, "events": events}
with open(outp + ".json", "w") as f:
    json.dump(doc, f, indent=1)


def fs(a, fmt):
    if a is None:
        return "–"
    return (fmt + " (" + fmt + "–" + fmt + ")") % (a["median"], a["min"], a["max"])


L = ["# VIP in the three-node Patroni lab: pghook vs shell callback vs vip-manager 1.0.2", "",
     "Date: %s  " % doc["date"], "Command: `%s`" % doc["command"], ""]
if doc["note"]:
    L += [doc["note"], ""]
L += ["Median (min–max) per tool × scenario; n = events measured.", "",
      "| tool | scenario | n | VIP write downtime s | Patroni floor s | downtime − floor s | 50 ms samples VIP on 2+ hosts | failed VIP writes after recovery |",
      "|---|---|---|---|---|---|---|---|"]
for tool in TOOLS:
    for sc in SCEN:
        s = summary.get(tool, {}).get(sc)
        if not s:
            continue
        L.append("| %s | %s | %d | %s | %s | %s | %s | %s |" % (
            tool, sc, s["events"], fs(s["vip_downtime_s"], "%.2f"), fs(s["floor_s"], "%.2f"),
            fs(s["excess_s"], "%+.2f"), fs(s["double_samples"], "%d"),
            fs(s["vip_fails_after_recovery"], "%d")))
L += ["", "## Per event", "",
      "| tool | scenario | rep | old→new | downtime s | floor s | doubles | fails after | old node held VIP until (s after t0) |",
      "|---|---|---|---|---|---|---|---|---|"]
f2 = lambda x, fmt="%.2f": "–" if x is None else fmt % x
for e in events:
    L.append("| %s | %s | %d | %s→%s | %s | %s | %d | %s | %s |" % (
        e["tool"], e["scenario"], e["rep"], e["old"], e["new"], f2(e["vip_downtime_s"]),
        f2(e["floor_s"]), e["double_samples"], f2(e["vip_fails_after_recovery"], "%d"),
        f2(e["old_vip_held_until_s"])))
with open(os.path.join(os.path.dirname(__file__), "vip_lab_method.md")) as f:
    L += ["", f.read().rstrip()]
with open(outp + ".md", "w") as f:
    f.write("\n".join(L) + "\n")
print("\n".join(L[:12 + 4 * len(TOOLS) * 3]))
