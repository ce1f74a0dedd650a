"""bench/vip_lab_client.py — runs in the lab's client namespace (pgh-cl) for bench/vip-lab.sh.

Every INTERVAL seconds, for each target (the VIP and every node's own address), on its
own thread: a new connection and one autocommit INSERT into public.bench_vip_lab; one
JSON line per attempt: {"t": target, "at": start, "took": s, "ok": bool, "node": nX}.
A write to a replica fails (read-only), so the direct targets give the Patroni floor:
the client writing to whichever node is primary, by its own address. Exits when
WATCH_PID is gone. Usage: python3 vip_lab_client.py INTERVAL vip=ADDR n1=ADDR ...
"""
import os, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "lab"))
from sampling import error_line, exit_with_parent, finish, ticks  # noqa: E402
import psycopg2

interval = float(sys.argv[1])
targets = [a.split("=", 1) for a in sys.argv[2:]]


def write(name, host, t0, slots):
    r = {"t": name, "at": t0, "ok": False}
    try:
        c = psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres",
                             connect_timeout=1, application_name="vip-lab-bench",
                             options="-c statement_timeout=2000")
        try:
            c.autocommit = True
            cur = c.cursor()
            cur.execute("insert into public.bench_vip_lab(src) values (%s) "
                        "returning current_setting('data_directory')", (name,))
            dd = cur.fetchone()[0]
            r.update(ok=True, node=os.path.basename(os.path.dirname(dd)))
        finally:
            c.close()
    except Exception as e:
        r["err"] = error_line(e, 120)
    finish(r, t0)
    slots.release()


exit_with_parent()
slots = {n: threading.BoundedSemaphore(24) for n, _ in targets}
for _ in ticks(interval, catch_up=True):
    t0 = time.time()
    for name, host in targets:
        if slots[name].acquire(blocking=False):
            threading.Thread(target=write, args=(name, host, t0, slots[name]), daemon=True).start()
