"""e2e/chaos/client.py — runs in the lab's client namespace (pgh-cl) for chaos.sh.

Every INTERVAL seconds, on its own thread: a new connection to ADDR (the VIP) and one
autocommit INSERT of the next number into public.chaos_rows. One JSON line per attempt:
{"id": n, "at": start, "took": s, "ok": bool, "node": "nX", "err": "..."}. ok means the
server acknowledged the commit: that row must be on the final primary (exactly so under
Patroni's synchronous_mode). The password comes from PGPASSFILE. Exits when WATCH_PID
is gone. Usage: python3 client.py INTERVAL ADDR
"""
import os, re, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from sampling import error_line, exit_with_parent, finish, ticks  # noqa: E402
import psycopg2

interval, addr = float(sys.argv[1]), sys.argv[2]
node_re = re.compile(r"/(n[0-9]+)/")


def write(n, t0, slots):
    r = {"id": n, "at": t0, "ok": False}
    try:
        c = psycopg2.connect(host=addr, port=5432, user="postgres", dbname="postgres",
                             connect_timeout=1, application_name="pghook-chaos",
                             options="-c statement_timeout=3000")
        try:
            c.autocommit = True
            cur = c.cursor()
            cur.execute("insert into public.chaos_rows(id) values (%s) "
                        "returning current_setting('data_directory')", (n,))
            dd = cur.fetchone()[0]
            r["ok"] = True
            m = node_re.search(dd + "/")
            r["node"] = m.group(1) if m else dd
        finally:
            c.close()
    except Exception as e:
        r["err"] = error_line(e, 160)
    finish(r, t0)
    slots.release()


exit_with_parent()
slots = threading.BoundedSemaphore(32)
n = 0
for _ in ticks(interval, catch_up=True):
    if slots.acquire(blocking=False):
        n += 1
        threading.Thread(target=write, args=(n, time.time(), slots), daemon=True).start()
