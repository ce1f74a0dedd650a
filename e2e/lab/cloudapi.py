#!/usr/bin/env python3
"""cloudapi.py — the lab's fake "cloud API" for pghook's exec backend (LAB_VIP=exec).

It owns ONE address and assigns it to ONE node at a time, like a provider's API for a
secondary private address without reassignment:

  POST /v1/assign?node=N&address=A    200 assigned to N (also when N holds it already);
                                      409 while another node holds it (a refusal)
  POST /v1/unassign?node=N&address=A  200; the address is freed only if N holds it (a
                                      late release by a former holder changes nothing)
  GET  /v1/holder?node=N&address=A    200 "assigned to N" if N holds it, else 404 naming
                                      the holder (or nobody)

An assignment lapses when its holder has made no call for --lease seconds: the API's
view of a stopped instance (a node whose link is cut can reach nothing, so it can never
release). While the holder's pghook keeps checking (every watch_interval) it stays.

Any other address is 404. For the tests, never failing:

  GET  /admin/state                   JSON: holder, since, counters (refusals, errors)
  POST /admin/fail?seconds=S          answer 500 to every /v1 call for S seconds
  POST /admin/drop                    forget the assignment (as if removed by hand)

Every request is logged as one JSON line (time, client, method, path, node, status,
holder after it) to --log, flushed at once; so is every lapse ("event": "lapsed").
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class State:
    def __init__(self, address, lease):
        self.address = address
        self.lease = lease
        self.lock = threading.Lock()
        self.holder = ""
        self.since = 0.0
        self.heard = 0.0  # the holder's last call
        self.fail_until = 0.0
        self.refusals = 0
        self.errors = 0
        self.lapses = 0
        self.requests = 0

    def lapse(self, now, log):
        """Free an assignment whose holder has been silent for the lease (logged)."""
        if self.holder and now - self.heard > self.lease:
            rec = {"t": round(now, 6), "event": "lapsed", "node": self.holder,
                   "silent_s": round(now - self.heard, 3), "holder": ""}
            self.holder, self.since = "", now
            self.lapses += 1
            log.write(json.dumps(rec) + "\n")
            log.flush()


def make_handler(st, log):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # the JSON log below replaces it
            pass

        def answer(self, code, body):
            data = (body if isinstance(body, str) else json.dumps(body)).encode() + b"\n"
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            u = urlsplit(self.path)
            q = parse_qs(u.query)
            rec = {"t": round(time.time(), 6), "client": self.client_address[0], "method": self.command,
                   "path": u.path, "node": q.get("node", [""])[0], "status": code, "holder": st.holder}
            log.write(json.dumps(rec) + "\n")
            log.flush()

        def handle_call(self):
            u = urlsplit(self.path)
            q = parse_qs(u.query)
            node = q.get("node", [""])[0]
            addr = q.get("address", [""])[0]
            now = time.time()
            with st.lock:
                st.requests += 1
                if u.path.startswith("/admin/"):
                    return self.admin(u.path, q, now)
                st.lapse(now, log)
                if now < st.fail_until:
                    st.errors += 1
                    return self.answer(500, "internal error (injected)")
                if not node:
                    return self.answer(400, "node= is required")
                if addr != st.address:
                    return self.answer(404, "no such address %r (this API owns %s)" % (addr, st.address))
                if node == st.holder:
                    st.heard = now
                if self.command == "POST" and u.path == "/v1/assign":
                    if st.holder and st.holder != node:
                        st.refusals += 1
                        return self.answer(409, "address %s is assigned to %s" % (addr, st.holder))
                    if st.holder != node:
                        st.holder, st.since, st.heard = node, now, now
                    return self.answer(200, "assigned to %s" % node)
                if self.command == "POST" and u.path == "/v1/unassign":
                    if st.holder == node:
                        st.holder, st.since = "", now
                        return self.answer(200, "unassigned from %s" % node)
                    return self.answer(200, "not assigned to %s (holder: %s)" % (node, st.holder or "nobody"))
                if self.command == "GET" and u.path == "/v1/holder":
                    if st.holder == node:
                        return self.answer(200, "assigned to %s" % node)
                    return self.answer(404, "assigned to %s" % (st.holder or "nobody"))
                return self.answer(400, "no such call %s %s" % (self.command, u.path))

        def admin(self, path, q, now):
            st.lapse(now, log)
            if path == "/admin/state" and self.command == "GET":
                return self.answer(200, {"holder": st.holder, "since": st.since, "address": st.address,
                                         "refusals": st.refusals, "errors": st.errors, "lapses": st.lapses,
                                         "failing": now < st.fail_until, "requests": st.requests})
            if path == "/admin/fail" and self.command == "POST":
                try:
                    secs = float(q.get("seconds", ["0"])[0])
                except ValueError:
                    return self.answer(400, "seconds= must be a number")
                st.fail_until = now + secs
                return self.answer(200, "failing for %gs" % secs)
            if path == "/admin/drop" and self.command == "POST":
                st.holder, st.since = "", now
                return self.answer(200, "dropped")
            return self.answer(400, "no such call %s %s" % (self.command, path))

        def do_GET(self):
            self.handle_call()

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            self.handle_call()

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", required=True, help="HOST:PORT")
    p.add_argument("--address", required=True, help="the one address this API assigns")
    p.add_argument("--lease", type=float, default=5.0, help="seconds a silent holder keeps the address")
    p.add_argument("--log", required=True, help="JSON-lines request log (appended)")
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    st = State(a.address, a.lease)
    with open(a.log, "a", encoding="utf-8") as log:
        srv = ThreadingHTTPServer((host, int(port)), make_handler(st, log))
        srv.daemon_threads = True
        srv.serve_forever()


if __name__ == "__main__":
    main()
