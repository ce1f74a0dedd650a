"""bench/vip_lab_holders.py — for bench/vip-lab.sh, in the root namespace: every INTERVAL
seconds, which nodes' eth0 hold the VIP (read from each node's namespace with `ip -n`);
one JSON line per sample {"at": t, "h": [nodes]}. Exits when WATCH_PID is gone.
Usage: python3 vip_lab_holders.py INTERVAL VIP n1 n2 n3
"""
import json, os, subprocess, sys, threading, time

interval, vip, nodes = float(sys.argv[1]), sys.argv[2], sys.argv[3:]


def watch_parent():  # exit with the bench script (WATCH_PID), whatever happens to it
    pid = int(os.environ.get("WATCH_PID", "0")) or os.getppid()
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            os._exit(0)
        time.sleep(0.5)


threading.Thread(target=watch_parent, daemon=True).start()
nxt = time.time()
while True:
    now = time.time()
    if now < nxt:
        time.sleep(nxt - now)
    else:
        nxt = now  # late: do not burst
    nxt += interval
    t = time.time()
    h = []
    for n in nodes:
        p = subprocess.run(["ip", "-n", "pgh-" + n, "-4", "-o", "addr", "show", "dev", "eth0"],
                           capture_output=True, text=True)
        if (" inet %s/" % vip) in p.stdout:
            h.append(n)
    sys.stdout.write(json.dumps({"at": t, "h": h}) + "\n")
    sys.stdout.flush()
