"""e2e/lab/sampling.py — what the lab's Python samplers share (bench/vip_lab_client.py,
bench/vip_lab_holders.py, e2e/chaos/client.py, e2e/chaos/observer.py): they exit with
the script that started them, they act at a fixed rate, and they write one JSON line
per sample."""
import json
import os
import subprocess
import sys
import threading
import time

_out = threading.Lock()


def emit(record):
    """Write RECORD as one JSON line to stdout, whole even when threads emit at once."""
    line = json.dumps(record) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def finish(record, t0):
    """A client's sample is done: its duration since T0, then the line."""
    record["took"] = time.time() - t0
    emit(record)


def holders(nodes, vip):
    """The nodes (n1, n2, …) whose eth0 holds VIP, each read from its namespace pgh-<node>."""
    h = []
    for n in nodes:
        p = subprocess.run(["ip", "-n", "pgh-" + n, "-4", "-o", "addr", "show", "dev", "eth0"],
                           capture_output=True, text=True)
        if (" inet %s/" % vip) in p.stdout:
            h.append(n)
    return h


def error_line(e, limit):
    """The first line of an exception's message, at most LIMIT characters (its type
    when the message is empty): what a sample records as its error."""
    msg = str(e).strip()
    return msg.splitlines()[0][:limit] if msg else type(e).__name__


def exit_with_parent():
    """Exit this process as soon as WATCH_PID (default: the parent) is gone, whatever
    happens to that script (a sampler must not outlive its run)."""
    pid = int(os.environ.get("WATCH_PID", "0")) or os.getppid()

    def watch():
        while True:
            try:
                os.kill(pid, 0)
            except OSError:
                os._exit(0)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def ticks(interval, catch_up):
    """Yield every INTERVAL seconds. After a late tick, catch_up=True yields the missed
    ticks at once (a client keeps its number of attempts); catch_up=False restarts the
    schedule from now (a sampler does not burst)."""
    nxt = time.time()
    while True:
        now = time.time()
        if now < nxt:
            time.sleep(nxt - now)
        elif not catch_up:
            nxt = now
        nxt += interval
        yield
