"""e2e/chaos/report.py RAW OUT — the invariants and figures of a chaos run (chaos.sh).

Reads RAW/cycles.jsonl, observer.jsonl, client.jsonl, final_ids.txt, leaks.txt and the
Patroni logs; writes OUT.json and OUT.md; exits 1 when a goal of issue #6 is missed.
Per cycle, in its window [t0, t1] (fault injected at t0, cluster ready again at t1):
  leader-changing faults (switchover, kill9, kill9-patroni, linkcut):
    promotion = first sample with the new leader's /primary = 200; VIP lag = from there
    to the first sample with the VIP on exactly the new leader; doubles = samples with
    the VIP on 2+ hosts (switchover: all of them; failovers: also counted after the new
    leader held it);
  other faults: samples with the VIP not on exactly the leader;
  downtime = the longest gap between acknowledged client writes through the VIP;
  Patroni split brain = samples with /primary = 200 on 2+ nodes (Patroni's own doing,
    reported apart from what pghook answers for).
"""
import json, math, os, re, statistics, sys

raw, out = sys.argv[1], sys.argv[2]
LEADER_FAULTS = {"switchover", "kill9", "kill9-patroni", "linkcut"}


def jl(name):
    p = os.path.join(raw, name)
    if not os.path.exists(p):
        return []
    rows = []
    for line in open(p):
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


cycles = [c for c in jl("cycles.jsonl") if "t0" in c]
aborted = [c for c in jl("cycles.jsonl") if "t0" not in c]
obs = sorted(jl("observer.jsonl"), key=lambda s: s["at"])
cli = jl("client.jsonl")
acked = sorted((r for r in cli if r.get("ok")), key=lambda r: r["at"] + r["took"])
final_ids = set()
fp = os.path.join(raw, "final_ids.txt")
if os.path.exists(fp):
    final_ids = {int(x) for x in open(fp).read().split() if x.strip().isdigit()}
leaks = [l for l in open(os.path.join(raw, "leaks.txt")).read().splitlines() if l.strip()] \
    if os.path.exists(os.path.join(raw, "leaks.txt")) else ["leaks.txt missing"]


def window(samples, a, b):
    return [s for s in samples if a <= s["at"] <= b]


def pct(xs, p):
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)] if s else None


per = []
for c in cycles:
    t0, t1 = c["t0"], c["t1"]
    w = window(obs, t0, t1)
    r = {"cycle": c["cycle"], "fault": c["fault"], "old": c["old"], "new": c.get("new", ""),
         "ok": c["ok"], "roster_ok": c["roster_ok"], "note": c.get("note", ""),
         "samples": len(w), "doubles": sum(len(s["h"]) >= 2 for s in w),
         "patroni_split": sum(len(s["p"]) >= 2 for s in w)}
    if c["fault"] in LEADER_FAULTS and c.get("new") and c["new"] != c["old"]:
        new = c["new"]
        promo = next((s["at"] for s in w if new in s["p"]), None)
        onlynew = next((s["at"] for s in w if s["h"] == [new]), None)
        r["promoted_after"] = None if promo is None else promo - t0
        if promo is not None and onlynew is not None:
            r["vip_lag"] = max(0.0, onlynew - promo)
            r["doubles_after_vip"] = sum(len(s["h"]) >= 2 for s in w if s["at"] >= onlynew)
        else:
            r["vip_lag"] = None
    else:
        leader = c["old"]
        r["vip_off_leader"] = sum(s["h"] != [leader] for s in w)
    # downtime: longest gap between acknowledgements in [t0 - 1 s, t1]
    acks = [x["at"] + x["took"] for x in acked if t0 - 1 <= x["at"] + x["took"] <= t1]
    gaps = [b - a for a, b in zip(acks, acks[1:])]
    r["downtime"] = max(gaps) if gaps else (t1 - t0)
    per.append(r)

lost = sorted(x["id"] for x in acked if x["id"] not in final_ids) if final_ids else None

# create_replica outcomes from Patroni's logs
rebuilt_pghook = rebuilt_basebackup = pghook_failed = 0
codes = {}
for n in ("n1", "n2", "n3"):
    p = os.path.join(raw, "patroni-%s.log" % n)
    if not os.path.exists(p):
        continue
    for line in open(p, errors="replace"):
        if "replica has been created using pghook" in line:
            rebuilt_pghook += 1
        elif "replica has been created using basebackup" in line:
            rebuilt_basebackup += 1
        m = re.search(r"Error creating replica using method pghook: .*exited with code=(\d+)", line)
        if m:
            pghook_failed += 1
            codes[m.group(1)] = codes.get(m.group(1), 0) + 1

by_fault = {}
for r in per:
    by_fault.setdefault(r["fault"], []).append(r)


def summary(rs):
    d = [r["downtime"] for r in rs]
    lags = [r["vip_lag"] for r in rs if r.get("vip_lag") is not None]
    s = {"n": len(rs), "failed": sum(not r["ok"] for r in rs),
         "downtime_median": statistics.median(d) if d else None, "downtime_p95": pct(d, 95),
         "downtime_max": max(d) if d else None, "doubles": sum(r["doubles"] for r in rs),
         "patroni_split_samples": sum(r["patroni_split"] for r in rs),
         "roster_bad": sum(not r["roster_ok"] for r in rs)}
    if any(r["fault"] in LEADER_FAULTS for r in rs):
        s["vip_lag_max"] = max(lags) if lags else None
        # A leader change whose new leader never held the VIP counts as late;
        # cycles without a leader change (in the total) have no lag at all.
        s["vip_lag_over_1s"] = sum(l > 1.0 for l in lags) + sum(
            r.get("vip_lag") is None for r in rs
            if r["fault"] in LEADER_FAULTS and r["new"] and r["new"] != r["old"])
        s["doubles_after_vip"] = sum(r.get("doubles_after_vip", 0) for r in rs)
    else:
        s["vip_off_leader"] = sum(r.get("vip_off_leader", 0) for r in rs)
    return s


summ = {f: summary(rs) for f, rs in sorted(by_fault.items())}
tot = summary(per) if per else {}
switch = summ.get("switchover", {})
goals = {
    "switchover double-VIP samples = 0": switch.get("doubles", 0) == 0,
    "VIP on the leader <= 1 s after promotion in every cycle": all(
        (r.get("vip_lag") is not None and r["vip_lag"] <= 1.0) for r in per
        if r["fault"] in LEADER_FAULTS and r["new"] and r["new"] != r["old"]),
    "0 acknowledged writes lost (sync mode)": os.environ.get("CHAOS_MODE") != "sync" or lost == [],
    "0 invalid or stale .pgtab": tot.get("roster_bad", 1) == 0,
    "0 leaked processes/addresses after down": not leaks,
    "every cycle recovered": not aborted and tot.get("failed", 1) == 0,
}
res = {"command": os.environ.get("CHAOS_CMD", ""), "seed": os.environ.get("CHAOS_SEED", ""),
       "mode": os.environ.get("CHAOS_MODE", ""), "dcs": os.environ.get("CHAOS_DCS", ""),
       "cycles": len(per), "aborted": aborted, "acked_writes": len(acked), "attempts": len(cli),
       "lost_acked": lost, "final_rows": len(final_ids), "leaks": leaks,
       "create_replica": {"by_pghook": rebuilt_pghook, "by_basebackup": rebuilt_basebackup,
                          "pghook_nonzero": pghook_failed, "codes": codes},
       "by_fault": summ, "total": tot, "goals": goals, "per_cycle": per}
json.dump(res, open(out + ".json", "w"), indent=1)


def f(v, fmt="%.2f"):
    return "-" if v is None else (fmt % v if isinstance(v, float) else str(v))


md = ["# Chaos run: %s, %s" % (res["dcs"], res["mode"]), "",
      "Command: `%s`  " % res["command"], "Seed: %s; %d cycles; %d write attempts through the VIP, %d acknowledged."
      % (res["seed"], len(per), len(cli), len(acked)), "",
      "| fault | n | not recovered | downtime median s | p95 s | max s | VIP lag after promotion max s | cycles with lag > 1 s | samples VIP on 2+ hosts | of them after the new leader held it | samples VIP off the leader (no leader change) | Patroni split-brain samples | bad .pgtab |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for fault, s in summ.items():
    md.append("| %s | %d | %d | %s | %s | %s | %s | %s | %d | %s | %s | %d | %d |" % (
        fault, s["n"], s["failed"], f(s["downtime_median"]), f(s["downtime_p95"]), f(s["downtime_max"]),
        f(s.get("vip_lag_max")), f(s.get("vip_lag_over_1s")), s["doubles"], f(s.get("doubles_after_vip")),
        f(s.get("vip_off_leader")), s["patroni_split_samples"], s["roster_bad"]))
md += ["", "Acknowledged writes missing on the final primary: %s." % (
    "not checked (no final primary)" if lost is None else ("%d" % len(lost) + (" (ids %s)" % lost[:20] if lost else ""))),
    "create_replica: %d replicas built by pghook, %d by the basebackup fallback, pghook exited non-zero %d times %s."
    % (rebuilt_pghook, rebuilt_basebackup, pghook_failed, codes or ""),
    "Leaks after `lab.sh down`: %s." % ("none" if not leaks else "; ".join(leaks[:5])), "",
    "| goal | met |", "|---|---|"]
md += ["| %s | %s |" % (g, "yes" if ok else "**no**") for g, ok in goals.items()]
if aborted:
    md += ["", "Stopped early: %s" % aborted]
md += ["", "## Per cycle", "", "| # | fault | old → new | recovered | downtime s | VIP lag s | 2+ hosts | note |", "|---|---|---|---|---|---|---|---|"]
for r in per:
    md.append("| %d | %s | %s → %s | %s | %s | %s | %d | %s |" % (
        r["cycle"], r["fault"], r["old"], r["new"] or "?", "yes" if r["ok"] else "no", f(r["downtime"]),
        f(r.get("vip_lag")), r["doubles"], r["note"]))
open(out + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(md[:8 + len(summ) + 12]))
sys.exit(0 if all(goals.values()) else 1)
