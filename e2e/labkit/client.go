//go:build e2e

package labkit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientScript runs in the lab's client namespace (Debian's python3 with
// psycopg2) and behaves like applications that follow the primary. One
// thread per target, each one attempt at a time every INTERVAL (the next
// at once when one took longer): target "name" asks the authoritative
// server for NAME's A records (a plain UDP query, no cache between) and
// connects to the first address; a target that is an address connects to
// it directly (the floor: a client that knows the new primary's own
// address). Each attempt opens a new libpq connection (connect_timeout=2,
// tcp_user_timeout=2000, keepalives after 1 s idle) and commits one row into TABLE. One JSON line per
// attempt; it exits when its stdin closes, so it cannot outlive the test.
const clientScript = `
import random, socket, struct
import psycopg2
server, name, interval, targets, table, app = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split(","), sys.argv[5], sys.argv[6]
def resolve():
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.sendto(q, (server, 53))
        while True:
            r = s.recv(4096)
            if struct.unpack(">H", r[:2])[0] == qid:
                break
    finally:
        s.close()
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", r[:12])
    if flags & 0xF not in (0, 3):
        raise Exception("rcode %d" % (flags & 0xF))
    i = 12
    def skip(i):
        while True:
            n = r[i]
            if n == 0:
                return i + 1
            if n & 0xC0 == 0xC0:
                return i + 2
            i += n + 1
    for _ in range(qd):
        i = skip(i) + 4
    out = []
    for _ in range(an):
        i = skip(i)
        t, _, _, ln = struct.unpack(">HHIH", r[i:i + 10])
        i += 10
        if t == 1 and ln == 4:
            out.append(socket.inet_ntoa(r[i:i + 4]))
        i += ln
    return sorted(out)
def attempt(target):
    t0 = time.time()
    rec = {"at": t0, "target": target}
    try:
        if target == "name":
            ans = resolve()
            rec["ans"] = ans
            rec["resolved"] = time.time() - t0
            if not ans:
                raise Exception("no address")
            host = ans[0]
        else:
            host = target
        # tcp_user_timeout: a write in flight when a link is cut fails after 2 s
        # instead of waiting for TCP's retransmissions (minutes); keepalives: so
        # does one whose query the server acknowledged before the cut and whose
        # answer never comes (no unacknowledged data: only a probe notices).
        c = psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres",
                             connect_timeout=2, tcp_user_timeout=2000, keepalives=1, keepalives_idle=1,
                             keepalives_interval=1, keepalives_count=1, application_name=app)
        try:
            cur = c.cursor()
            cur.execute("insert into public." + table + " (at, via) values (now(), %s) returning inet_server_addr()::text", (host if target == "name" else target,))
            rec["srv"] = cur.fetchone()[0].split("/")[0]
            c.commit()
            rec["ok"] = True
        finally:
            c.close()
    except Exception as e:
        rec["err"] = error_line(e, 200)
    finish(rec, t0)
run_paced(interval, attempt, targets)
`

// Sample is one attempt of the client.
type Sample struct {
	At, End  time.Time
	Target   string        // "name", or the node address it connected to directly
	Answer   []string      // the A records the server gave (target "name")
	Resolved time.Duration // the lookup's time (target "name")
	Srv      string        // the server address that took the write
	OK       bool
	Err      string
}

// ClientOptions are the client's settings.
type ClientOptions struct {
	Every   time.Duration // one attempt per target every Every
	Targets []string      // "name" and node addresses
	Table   string        // public.<Table> (at timestamptz, via text) takes the rows
	App     string        // application_name
}

// pyHarness is what every script StartPython runs begins with: the lab's
// sampling helpers (e2e/lab/sampling.py: finish and error_line record an
// attempt as one JSON line, ticks paces it) and run_paced(interval, fn,
// args), which calls fn(arg) for each arg in its own thread, one call at a
// time, the next at the next interval tick (at once when a call took
// longer, so a call that hangs delays the next as it would in an
// application), and exits when stdin closes, so the script cannot outlive
// the test. %q is the directory of sampling.py.
const pyHarness = `
import os, sys, threading, time
sys.path.insert(0, %q)
from sampling import error_line, finish, ticks
def run_paced(interval, fn, args):
    def paced(arg):
        for _ in ticks(interval, catch_up=False):
            fn(arg)
    for a in args:
        threading.Thread(target=paced, args=(a,), daemon=True).start()
    sys.stdin.read()
    os._exit(0)
`

// Client is a running script in the lab's client namespace.
type Client struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	done  chan struct{}
}

// StartPython runs pyHarness followed by script with Debian's python3 in
// the lab's client namespace (LAB_CLIENT_NS), with only PATH and the
// client's PGPASSFILE in its environment and args as its argv; every line
// it prints goes to line. The script ends with run_paced (or exits when
// its stdin closes): Close closes it.
func (l *Lab) StartPython(t *testing.T, script string, args []string, line func([]byte)) *Client {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.Env["LAB_CLIENT_NS"], "env", "-i", "PATH=/usr/bin:/bin",
		"PGPASSFILE=" + l.Env["LAB_PGPASSFILE"], "/usr/bin/python3", "-u", "-c", fmt.Sprintf(pyHarness, filepath.Join(l.Repo, "e2e/lab")) + script}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Client{cmd: cmd, stdin: in, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line(sc.Bytes())
		}
	}()
	return c
}

// StartClient starts the client in the lab's client namespace, resolving
// LAB_DNS_NAME at LAB_DNS_SERVER; every attempt goes to emit.
func (l *Lab) StartClient(t *testing.T, o ClientOptions, emit func(Sample)) *Client {
	t.Helper()
	args := []string{l.Env["LAB_DNS_SERVER"], l.Env["LAB_DNS_NAME"], fmt.Sprint(o.Every.Seconds()), strings.Join(o.Targets, ","), o.Table, o.App}
	return l.StartPython(t, clientScript, args, func(line []byte) {
		var r struct {
			At       float64  `json:"at"`
			Took     float64  `json:"took"`
			Target   string   `json:"target"`
			Ans      []string `json:"ans"`
			Resolved float64  `json:"resolved"`
			Srv      string   `json:"srv"`
			OK       bool     `json:"ok"`
			Err      string   `json:"err"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Logf("client: %v: %q", err, line)
			return
		}
		at := time.Unix(0, int64(r.At*1e9))
		emit(Sample{At: at, End: at.Add(time.Duration(r.Took * 1e9)), Target: r.Target, Answer: r.Ans,
			Resolved: time.Duration(r.Resolved * 1e9), Srv: r.Srv, OK: r.OK, Err: r.Err})
	})
}

// Close ends the script (EOF on its stdin) and waits for it; after 5 s
// it is killed.
func (c *Client) Close() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd.Wait()
}
