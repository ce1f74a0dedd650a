"""e2e/lab/sampling.py — what the lab's Python samplers share (bench/vip_lab_client.py,
bench/vip_lab_holders.py, e2e/chaos/client.py, e2e/chaos/observer.py): they exit with
the script that started them, and they act at a fixed rate."""
import os
import threading
import time


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
