#!/usr/bin/env python3
"""The floor of a restore that decompresses with a program: run the program
(argv) with its output into a 1 MB pipe, as pghook create-replica does, and
read and discard it in 1 MB reads into one buffer. Decoding plus handing the
bytes to another process, before a single byte is written. Exits with the
program's status; prints the bytes read to stderr."""
import fcntl
import os
import subprocess
import sys

F_SETPIPE_SZ = 1031
r, w = os.pipe()
fcntl.fcntl(w, F_SETPIPE_SZ, 1 << 20)
proc = subprocess.Popen(sys.argv[1:], stdout=w)
os.close(w)
buf, n = bytearray(1 << 20), 0
while (got := os.readv(r, [buf])) > 0:
    n += got
rc = proc.wait()
print(f"{n} bytes", file=sys.stderr)
sys.exit(rc)
