"""bench/vip_lab_client.py — runs in the lab's client namespace (pgh-cl) for bench/vip-lab.sh.

Behaves like an application's connection loop: for each client kind and each target (the
VIP and every node's own address) one thread makes one attempt at a time — a new libpq
connection and one autocommit INSERT into public.bench_vip_lab — and starts the next at
the next INTERVAL tick (at once when the attempt took longer). A stalled attempt (a SYN
that nobody answers) therefore delays the next one, as it delays a real client.
Kinds: ct2 = connect_timeout=2; none = no connect_timeout (the kernel's SYN retransmits
decide: 1 s, 3 s, 7 s, …). Once connected, either kind ends a write whose answer never
comes after 2 s, as an application's own query timeout would (TCP_USER_TIMEOUT and
keepalives on the connected socket; the server's statement_timeout cannot help when the
link is cut): without it, a write in flight at a link cut hangs for the kernel's
retransmissions (~15 min) and the loop measures nothing after that event. Connection
establishment keeps libpq's defaults. One JSON line per attempt:
{"t": target, "k": kind, "at": start, "took": s, "ok": bool, "node": nX, "err": …}.
A write to a replica fails (read-only), so the direct targets give the Patroni floor:
the same client writing to whichever node is primary, by its own address. Exits when
WATCH_PID is gone. Usage: python3 vip_lab_client.py INTERVAL vip=ADDR n1=ADDR ...
"""
import os, socket, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "lab"))
from sampling import error_line, exit_with_parent, finish  # noqa: E402
import psycopg2

interval = float(sys.argv[1])
targets = [a.split("=", 1) for a in sys.argv[2:]]
KINDS = {"ct2": {"connect_timeout": 2}, "none": {}}


def bound_writes(fd):
    """A write on the connection FD fails after 2 s without an answer (see above)."""
    sk = socket.socket(fileno=os.dup(fd))
    try:
        sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 2000)
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        sk.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
    finally:
        sk.close()


def attempt(name, host, kind):
    t0 = time.time()
    r = {"t": name, "k": kind, "at": t0, "ok": False}
    try:
        c = psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres",
                             application_name="vip-lab-bench-" + kind,
                             options="-c statement_timeout=2000", **KINDS[kind])
        try:
            bound_writes(c.fileno())
            c.autocommit = True
            cur = c.cursor()
            cur.execute("insert into public.bench_vip_lab(src) values (%s) "
                        "returning current_setting('data_directory')", (name + "/" + kind,))
            dd = cur.fetchone()[0]
            r.update(ok=True, node=os.path.basename(os.path.dirname(dd)))
        finally:
            c.close()
    except Exception as e:
        r["err"] = error_line(e, 120)
    finish(r, t0)


def loop(name, host, kind):
    nxt = time.time()
    while True:
        now = time.time()
        if now < nxt:
            time.sleep(nxt - now)
        else:
            nxt = now
        nxt += interval
        attempt(name, host, kind)


exit_with_parent()
for kind in KINDS:
    for name, host in targets:
        threading.Thread(target=loop, args=(name, host, kind), daemon=True).start()
while True:
    time.sleep(3600)
