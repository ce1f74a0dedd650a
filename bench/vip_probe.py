#!/usr/bin/env python3
"""Peer-side probe for bench/vip.sh: waits until this namespace's neighbour
entry for VIP on IFACE carries the holder's MAC, and prints the wall-clock
time (CLOCK_REALTIME, shared by all network namespaces) when it saw it.

Usage: vip_probe.py IFACE VIP HOLDER_MAC TIMEOUT_S
Prints "ready" once listening, then one line "<t1 epoch seconds> <how>"
("event" = seen in an RTM_NEWNEIGH notification, "dump" = seen by the 1 ms
table poll), or "timeout <s>" (exit 1). Event-driven (RTNLGRP_NEIGH) with a
1 ms dump poll as a backstop, so the resolution is well under 1 ms.
"""
import os
import select
import socket
import struct
import sys
import time

RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_DONE = 3
NDA_DST, NDA_LLADDR = 1, 2
RTNLGRP_NEIGH = 3


def parse(buf, ifindex, vip, mac):
    """True when buf holds an RTM_NEWNEIGH for vip on ifindex with lladdr mac."""
    off = 0
    while off + 16 <= len(buf):
        ln, typ, _, _, _ = struct.unpack_from("=IHHII", buf, off)
        if ln < 16:
            break
        if typ == RTM_NEWNEIGH:
            # ndmsg: family u8, pad u8, pad u16, ifindex s32, state u16, flags u8, type u8
            fam = buf[off + 16]
            idx = struct.unpack_from("=i", buf, off + 20)[0]
            a = off + 16 + 12
            dst = ll = None
            while a + 4 <= off + ln:
                alen, atyp = struct.unpack_from("=HH", buf, a)
                if alen < 4:
                    break
                val = buf[a + 4:a + alen]
                if atyp == NDA_DST:
                    dst = val
                elif atyp == NDA_LLADDR:
                    ll = val
                a += (alen + 3) & ~3
            if fam == socket.AF_INET and idx == ifindex and dst == vip and ll == mac:
                return True
        off += (ln + 3) & ~3
    return False


def main():
    iface, vip_s, mac_s, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    ifindex = socket.if_nametoindex(iface)
    vip = socket.inet_aton(vip_s)
    mac = bytes(int(x, 16) for x in mac_s.split(":"))
    ev = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    ev.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    ev.bind((0, 1 << (RTNLGRP_NEIGH - 1)))
    dq = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    dq.bind((0, 0))
    seq = 0

    def dump():
        nonlocal seq
        seq += 1
        # nlmsghdr + ndmsg (family AF_INET)
        req = struct.pack("=IHHII", 16 + 12, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        req += struct.pack("=BBHiHBB", socket.AF_INET, 0, 0, 0, 0, 0, 0)
        dq.send(req)
        found = False
        while True:
            b = dq.recv(65536)
            if parse(b, ifindex, vip, mac):
                found = True
            # stop at NLMSG_DONE
            off, done = 0, False
            while off + 16 <= len(b):
                ln, typ = struct.unpack_from("=IH", b, off)
                if typ == NLMSG_DONE:
                    done = True
                if ln < 16:
                    break
                off += (ln + 3) & ~3
            if done:
                return found

    if dump():
        print("already", flush=True)
        return 2
    print("ready", flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([ev], [], [], 0.001)
        if r:
            b = ev.recv(65536)
            t = time.time()
            if parse(b, ifindex, vip, mac):
                print(f"{t:.6f} event", flush=True)
                return 0
        elif dump():
            t = time.time()
            print(f"{t:.6f} dump", flush=True)
            return 0
    print(f"timeout {timeout}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
