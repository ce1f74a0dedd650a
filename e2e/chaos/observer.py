"""e2e/chaos/observer.py — for chaos.sh, in the root namespace: every INTERVAL seconds,
which nodes' eth0 hold the VIP (each node's kernel, through an rtnetlink socket in its
namespace, all nodes within a millisecond, so an isolated node is seen too) and which
nodes' Patroni answer 200 on /primary (polled by one thread per node with a short
timeout; the latest answer no older than 0.5 s counts). One JSON line
per sample: {"at": t, "h": [nodes holding the VIP], "p": [nodes with /primary 200]}.
Exits when WATCH_PID is gone. Usage: python3 observer.py INTERVAL VIP n1=ADDR ...
"""
import os, sys, threading, time, urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from sampling import HolderReader, emit, exit_with_parent, ticks  # noqa: E402

interval, vip = float(sys.argv[1]), sys.argv[2]
nodes = [a.split("=", 1) for a in sys.argv[3:]]
primary = {n: (0.0, False) for n, _ in nodes}  # node -> (when answered, is primary)
lock = threading.Lock()


def poll(name, addr):
    while True:
        t = time.time()
        ok = False
        try:
            with urllib.request.urlopen("http://%s:8008/primary" % addr, timeout=0.3) as r:
                ok = r.status == 200
        except urllib.error.HTTPError:
            ok = False
        except Exception:
            time.sleep(max(0, interval - (time.time() - t)))
            continue  # no answer: the last answer ages out
        with lock:
            primary[name] = (time.time(), ok)
        time.sleep(max(0, interval - (time.time() - t)))


exit_with_parent()
reader = HolderReader([n for n, _ in nodes])
for n, a in nodes:
    threading.Thread(target=poll, args=(n, a), daemon=True).start()
for _ in ticks(interval, catch_up=False):
    t = time.time()
    h = reader.holders(vip)
    with lock:
        pr = [n for n, (at, ok) in primary.items() if ok and t - at < 0.5]
    emit({"at": t, "h": h, "p": sorted(pr)})
