"""e2e/lab/sampling.py — what the lab's Python samplers share (bench/vip_lab_client.py,
bench/vip_lab_holders.py, e2e/chaos/client.py, e2e/chaos/observer.py): they exit with
the script that started them, they act at a fixed rate, and they write one JSON line
per sample."""
import ctypes
import json
import os
import socket
import struct
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


_NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_RTM_NEWADDR, _RTM_GETADDR, _NLMSG_DONE, _NLMSG_ERROR = 20, 22, 3, 2
_NLM_F_REQUEST_DUMP = 0x301
_IFA_LOCAL, _IFA_LABEL = 2, 3


class HolderReader:
    """Which nodes' eth0 hold an address, read through one rtnetlink socket opened in
    each node's namespace (pgh-<node>) and kept: a sample is three address dumps, well
    under a millisecond, so every node is read at nearly the same instant (the lab's
    Go tests read the same way). A namespace that is gone reads as not holding; one
    made again (a new lab) gets a new socket."""

    def __init__(self, nodes):
        self.nodes = list(nodes)
        self._socks = {}  # node -> (inode of /run/netns/pgh-node, socket)
        self._seq = 0
        self._libc = ctypes.CDLL(None, use_errno=True)

    def _sock(self, node):
        path = os.path.join(_NETNS_DIR, "pgh-" + node)
        try:
            ino = os.stat(path).st_ino
        except FileNotFoundError:
            self._drop(node)
            return None
        have = self._socks.get(node)
        if have and have[0] == ino:
            return have[1]
        self._drop(node)
        # setns changes this thread's namespace only: open the socket there, come back.
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(path, os.O_RDONLY)
        try:
            if self._libc.setns(target, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns " + path)
            try:
                sk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            finally:
                if self._libc.setns(home, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to this process's namespace")
        finally:
            os.close(target)
            os.close(home)
        self._socks[node] = (ino, sk)
        return sk

    def _drop(self, node):
        have = self._socks.pop(node, None)
        if have:
            have[1].close()

    def _holds(self, sk, vip):
        """Whether eth0 (or an eth0:label) in SK's namespace has the IPv4 address VIP."""
        self._seq += 1
        req = struct.pack("=LHHLL", 16 + 8, _RTM_GETADDR, _NLM_F_REQUEST_DUMP, self._seq, 0)
        req += struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0)
        sk.send(req)
        want = socket.inet_aton(vip)
        found = False
        while True:
            buf = sk.recv(65536)
            off = 0
            while off + 16 <= len(buf):
                ln, typ, _, seq, _ = struct.unpack_from("=LHHLL", buf, off)
                if ln < 16:
                    return found
                if seq == self._seq:
                    if typ == _NLMSG_DONE:
                        return found
                    if typ == _NLMSG_ERROR:
                        raise OSError(-struct.unpack_from("=i", buf, off + 16)[0], "RTM_GETADDR")
                    if typ == _RTM_NEWADDR:
                        found = found or _addr_matches(buf[off + 16:off + ln], want)
                off += (ln + 3) & ~3

    def close(self):
        for n in list(self._socks):
            self._drop(n)

    def holders(self, vip):
        """The nodes whose eth0 holds VIP."""
        h = []
        for n in self.nodes:
            sk = self._sock(n)
            if sk is None:
                continue
            try:
                if self._holds(sk, vip):
                    h.append(n)
            except OSError:
                self._drop(n)
        return h


def _addr_matches(msg, want):
    """Whether one RTM_NEWADDR body (ifaddrmsg + attributes) is WANT on eth0."""
    local = label = None
    off = 8
    while off + 4 <= len(msg):
        ln, typ = struct.unpack_from("=HH", msg, off)
        if ln < 4:
            break
        val = msg[off + 4:off + ln]
        if typ == _IFA_LOCAL:
            local = val
        elif typ == _IFA_LABEL:
            label = val.rstrip(b"\0").decode(errors="replace")
        off += (ln + 3) & ~3
    return local == want and label is not None and (label == "eth0" or label.startswith("eth0:"))


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
