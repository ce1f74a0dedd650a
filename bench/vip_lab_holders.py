"""bench/vip_lab_holders.py — for bench/vip-lab.sh, in the root namespace: every INTERVAL
seconds, which nodes' eth0 hold the VIP (sampling.HolderReader: one rtnetlink socket per
node's namespace, all nodes read within a millisecond);
one JSON line per sample {"at": t, "h": [nodes]}. Exits when WATCH_PID is gone.
Usage: python3 vip_lab_holders.py INTERVAL VIP n1 n2 n3
"""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e", "lab"))
from sampling import HolderReader, emit, exit_with_parent, ticks  # noqa: E402

interval, vip, nodes = float(sys.argv[1]), sys.argv[2], sys.argv[3:]


exit_with_parent()
reader = HolderReader(nodes)
for _ in ticks(interval, catch_up=False):
    t = time.time()
    emit({"at": t, "h": reader.holders(vip)})
