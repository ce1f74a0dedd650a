//go:build e2e

// VIP tests: the lab runs with LAB_VIP=netlink (lab.sh's default): Patroni's
// callbacks move 10.251.77.100 through the pghook-vip helper, and one
// `pghook-vip watch` per node holds it exactly while that node is the
// primary. The tests cause events and sample, from outside, which nodes
// hold the VIP (netlink, every 50 ms), which nodes Patroni calls primary
// (REST /primary) and what a client sees through the VIP (a fresh
// connection + query from the client namespace every 50 ms).
package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/pghook/pghook/e2e/labkit"
)

const (
	vipAddr     = "10.251.77.100"
	sampleEvery = 50 * time.Millisecond
)

var nodeIP = map[string]string{"n1": "10.251.77.11", "n2": "10.251.77.12", "n3": "10.251.77.13"}

// labEnv returns `lab.sh env` as a map.
func labEnv(t *testing.T) map[string]string {
	t.Helper()
	out, err := labCmd("env")
	if err != nil {
		t.Fatalf("lab.sh env: %v: %s", err, out)
	}
	env := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	return env
}

func requireVIP(t *testing.T) {
	t.Helper()
	if v := labEnv(t)["LAB_VIP"]; v != "netlink" {
		t.Skipf("the lab runs LAB_VIP=%s, not netlink", v)
	}
}

// --- samplers -------------------------------------------------------------

type holderSample struct {
	at    time.Time
	nodes []string
}

type probeSample struct {
	kind     string // ct2 (connect_timeout=2) or none (no connect_timeout)
	at       time.Time
	took     time.Duration
	ok       bool // answered by a primary
	answered bool // answered at all (a replica answers with recovery=t)
	node     string
	err      string
}

type primarySample struct {
	at      time.Time
	primary []string // nodes whose /primary said 200
}

// vipWatcher samples holders, Patroni's /primary and the client's view
// until Stop.
type vipWatcher struct {
	t     *testing.T
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup

	closeProbes func()

	mu        sync.Mutex
	holders   []holderSample
	probes    []probeSample
	primaries []primarySample
}

// holderReader reads the VIP holders through netlink handles opened in each
// node's namespace (no process per sample).
type holderReader struct {
	h map[string]*netlink.Handle
}

func newHolderReader(t *testing.T) *holderReader {
	t.Helper()
	r := &holderReader{h: map[string]*netlink.Handle{}}
	for _, n := range nodes {
		ns, err := netns.GetFromName("pgh-" + n)
		if err != nil {
			t.Fatalf("namespace of %s: %v", n, err)
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			t.Fatalf("netlink handle in %s: %v", n, err)
		}
		r.h[n] = h
	}
	return r
}

func (r *holderReader) Close() {
	for _, h := range r.h {
		h.Close()
	}
}

// Holders lists the nodes whose eth0 holds the lab's VIP.
func (r *holderReader) Holders() ([]string, error) { return r.holding(vipAddr) }

// holding lists the nodes whose eth0 holds addr.
func (r *holderReader) holding(addr string) ([]string, error) {
	var out []string
	ip := net.ParseIP(addr)
	for _, n := range nodes {
		l, err := r.h[n].LinkByName("eth0")
		if err != nil {
			return nil, fmt.Errorf("%s eth0: %w", n, err)
		}
		as, err := r.h[n].AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("%s addresses: %w", n, err)
		}
		for _, a := range as {
			if a.IP.Equal(ip) {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// probeScript runs in the client namespace (Debian's python3 with psycopg2,
// which Patroni depends on) and behaves like an application's connection
// loop: per client kind, one attempt at a time — a new libpq connection to
// HOST and one query — the next at the next INTERVAL tick (at once when the
// attempt took longer), so an attempt that hangs on a lost SYN delays the
// next one as it would delay a real client. Kinds: ct2 = connect_timeout=2;
// none = no connect_timeout (the kernel's SYN retransmits, 1 s then 3 s,
// decide). One JSON line per attempt (labkit's harness: finish, run_paced). (A
// separate process: moving threads of the test binary into pgh-cl would
// make lab.sh down count the test as a process of the lab.)
const probeScript = `
import psycopg2
host, interval = sys.argv[1], float(sys.argv[2])
KINDS = {"ct2": {"connect_timeout": 2}, "none": {}}
def probe(kind):
    t0 = time.time()
    r = {"at": t0, "k": kind}
    try:
        c = psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres",
                             application_name="vip-probe-" + kind, **KINDS[kind])
        try:
            cur = c.cursor()
            cur.execute("select pg_is_in_recovery()::text, current_setting('data_directory')")
            rec, dd = cur.fetchone()
            r.update(answered=True, ok=(rec == "false"), dir=dd)
        finally:
            c.close()
    except Exception as e:
        r["err"] = error_line(e, 500)
    finish(r, t0)
run_paced(interval, probe, list(KINDS))
`

// startClientProber starts the probe process; every sample goes to emit.
func startClientProber(t *testing.T, emit func(probeSample)) *labkit.Client {
	t.Helper()
	return lab.StartPython(t, probeScript, []string{vipAddr, fmt.Sprint(sampleEvery.Seconds())}, func(line []byte) {
		var r struct {
			At       float64 `json:"at"`
			Took     float64 `json:"took"`
			OK       bool    `json:"ok"`
			Answered bool    `json:"answered"`
			Dir      string  `json:"dir"`
			Err      string  `json:"err"`
			Kind     string  `json:"k"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Logf("probe: %v: %q", err, line)
			return
		}
		s := probeSample{
			kind:     r.Kind,
			at:       time.Unix(0, int64(r.At*1e9)),
			took:     time.Duration(r.Took * 1e9),
			ok:       r.OK,
			answered: r.Answered,
			err:      r.Err,
		}
		if r.Dir != "" {
			s.node = filepath.Base(filepath.Dir(r.Dir))
		}
		emit(s)
	})
}

var restClient = &http.Client{Timeout: 300 * time.Millisecond}

func isPrimary(n string) bool {
	resp, err := restClient.Get("http://" + nodeIP[n] + ":8008/primary")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func startVIPWatcher(t *testing.T) *vipWatcher {
	t.Helper()
	w := &vipWatcher{t: t, start: time.Now(), stop: make(chan struct{})}
	hr := newHolderReader(t)
	pr := startClientProber(t, func(s probeSample) {
		w.mu.Lock()
		w.probes = append(w.probes, s)
		w.mu.Unlock()
	})
	w.closeProbes = pr.Close
	tick := func(f func()) {
		defer w.wg.Done()
		tk := time.NewTicker(sampleEvery)
		defer tk.Stop()
		for {
			f()
			select {
			case <-w.stop:
				return
			case <-tk.C:
			}
		}
	}
	w.wg.Add(2)
	go func() {
		defer hr.Close()
		tick(func() {
			h, err := hr.Holders()
			if err != nil {
				t.Logf("holders: %v", err)
				return
			}
			w.mu.Lock()
			w.holders = append(w.holders, holderSample{time.Now(), h})
			w.mu.Unlock()
		})
	}()
	go tick(func() {
		at := time.Now()
		var mu sync.Mutex
		var prim []string
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func(n string) {
				defer wg.Done()
				if isPrimary(n) {
					mu.Lock()
					prim = append(prim, n)
					mu.Unlock()
				}
			}(n)
		}
		wg.Wait()
		sort.Strings(prim)
		w.mu.Lock()
		w.primaries = append(w.primaries, primarySample{at, prim})
		w.mu.Unlock()
	})
	return w
}

func (w *vipWatcher) Stop() {
	close(w.stop)
	w.wg.Wait()
	w.closeProbes()
	// No thread of ours may stay in a lab namespace (lab.sh down kills those).
	self, _ := os.Readlink("/proc/self/ns/net")
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, tk := range tasks {
		if l, err := os.Readlink(tk); err == nil && l != self {
			w.t.Errorf("thread %s is still in network namespace %s after the probes stopped", tk, l)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	sort.Slice(w.probes, func(i, j int) bool { return w.probes[i].at.Before(w.probes[j].at) })
}

// snapshot copies the samples so far (for waits while sampling goes on).
func (w *vipWatcher) snapshot() ([]holderSample, []probeSample, []primarySample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := append([]holderSample(nil), w.holders...)
	p := append([]probeSample(nil), w.probes...)
	q := append([]primarySample(nil), w.primaries...)
	sort.Slice(p, func(i, j int) bool { return p[i].at.Before(p[j].at) })
	return h, p, q
}

// doubles counts holder samples with two or more holders in [from, to).
func doubles(hs []holderSample, from, to time.Time) (n int, first []string) {
	for _, s := range hs {
		if s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		if len(s.nodes) >= 2 {
			if n == 0 {
				first = s.nodes
			}
			n++
		}
	}
	return
}

// firstHolding is the first sample after from in which node alone holds the VIP.
func firstHolding(hs []holderSample, node string, from time.Time) (time.Time, bool) {
	for _, s := range hs {
		if !s.at.Before(from) && len(s.nodes) == 1 && s.nodes[0] == node {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// lastHolding is the time of the last sample before to in which node held the VIP.
func lastHolding(hs []holderSample, node string, to time.Time) (time.Time, bool) {
	var at time.Time
	found := false
	for _, s := range hs {
		if !s.at.Before(to) {
			break
		}
		for _, n := range s.nodes {
			if n == node {
				at, found = s.at, true
			}
		}
	}
	return at, found
}

func firstPrimary(ps []primarySample, node string, from time.Time) (time.Time, bool) {
	for _, s := range ps {
		if !s.at.Before(from) && len(s.primary) == 1 && s.primary[0] == node {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// outage describes the client's view: the longest time without any
// successful answer from a primary (between consecutive good probes,
// ordered by the time they answered; ~50 ms when all is well).
type outage struct {
	longest        time.Duration
	from, to       time.Time
	failed         int // probes that did not reach a primary
	replicaAnswers int // of which answered by a replica
	total          int
	errSample      string
}

func clientOutage(ps []probeSample, from time.Time) outage {
	var o outage
	var good []time.Time
	for _, p := range ps {
		if p.at.Before(from) {
			continue
		}
		o.total++
		if p.ok {
			good = append(good, p.end())
			continue
		}
		o.failed++
		if p.answered {
			o.replicaAnswers++
		} else if o.errSample == "" {
			o.errSample = p.err
		}
	}
	if len(good) == 0 {
		o.longest = -1
		return o
	}
	sort.Slice(good, func(i, j int) bool { return good[i].Before(good[j]) })
	for i := 1; i < len(good); i++ {
		if d := good[i].Sub(good[i-1]); d > o.longest {
			o.longest, o.from, o.to = d, good[i-1], good[i]
		}
	}
	return o
}

func (p probeSample) end() time.Time { return p.at.Add(p.took) }

// ofKind keeps the probes of one client kind.
func ofKind(ps []probeSample, kind string) []probeSample {
	var out []probeSample
	for _, p := range ps {
		if p.kind == kind {
			out = append(out, p)
		}
	}
	return out
}

// longestAttempt is the probe started in [from, to) that took longest.
func longestAttempt(ps []probeSample, from, to time.Time) probeSample {
	var worst probeSample
	for _, p := range ps {
		if !p.at.Before(from) && p.at.Before(to) && p.took > worst.took {
			worst = p
		}
	}
	return worst
}

// unownedWindow is the longest stretch in [from, to) with the VIP on no
// host: from the first sample that saw nobody to the next sample that saw
// a holder; empty is the number of such samples in all.
func unownedWindow(hs []holderSample, from, to time.Time) (longest time.Duration, at time.Time, empty int) {
	var start time.Time
	for _, s := range hs {
		if s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		if len(s.nodes) == 0 {
			empty++
			if start.IsZero() {
				start = s.at
			}
			continue
		}
		if !start.IsZero() {
			if d := s.at.Sub(start); d > longest {
				longest, at = d, start
			}
			start = time.Time{}
		}
	}
	return longest, at, empty
}

// vipwatchLines are the lines of node's vipwatch.log after offset from
// that contain every one of subs.
func vipwatchLines(node string, from int64, subs ...string) []string {
	return fileLines(filepath.Join(labDir, node, "vipwatch.log"), from, subs...)
}

// fileLines returns the lines of the file at path after offset from (from
// the start when the file is shorter: it was rotated) that contain every
// one of subs.
func fileLines(path string, from int64, subs ...string) []string {
	b, _ := os.ReadFile(path)
	if from > int64(len(b)) {
		from = 0
	}
	var out []string
next:
	for _, l := range strings.Split(string(b[from:]), "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

func vipwatchSize(node string) int64 {
	fi, err := os.Stat(filepath.Join(labDir, node, "vipwatch.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// firstGoodProbe is the probe started after from that first reached a
// primary on node (earliest answer); its end() is when the client had it.
func firstGoodProbe(ps []probeSample, node string, from time.Time) (probeSample, bool) {
	var best probeSample
	found := false
	for _, p := range ps {
		if !p.at.Before(from) && p.ok && p.node == node && (!found || p.end().Before(best.end())) {
			best, found = p, true
		}
	}
	return best, found
}

// --- helpers on the lab ---------------------------------------------------

func vipHolders(t *testing.T) []string {
	t.Helper()
	out, err := lib(t, "lab_vip_holders")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

// vipOnLeader waits until the cluster is healthy and the VIP is on the
// leader alone and answers from the client; it returns the leader.
func vipOnLeader(t *testing.T, timeout time.Duration) string {
	t.Helper()
	if _, err := lib(t, "lab_wait_healthy", strconv.Itoa(int(timeout.Seconds()))); err != nil {
		dumpLogs(t)
		dumpVIPWatch(t)
		t.Fatal(err)
	}
	var l string
	eventually(t, timeout, "the VIP on the leader alone", func() error {
		var err error
		if l, err = lib(t, "lab_leader"); err != nil {
			return err
		}
		h := vipHolders(t)
		if len(h) != 1 || h[0] != l {
			return fmt.Errorf("leader %s, VIP holders %v", l, h)
		}
		out, err := lib(t, "lab_vip_probe")
		if err != nil {
			return err
		}
		if out != "f" {
			return fmt.Errorf("through the VIP pg_is_in_recovery() = %q", out)
		}
		return nil
	})
	return l
}

func dumpVIPWatch(t *testing.T) {
	for _, n := range nodes {
		b, _ := os.ReadFile(filepath.Join(labDir, n, "vipwatch.log"))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		t.Logf("---- %s vipwatch.log (tail) ----\n%s", n, strings.Join(lines, "\n"))
	}
}

// labCapEff returns CapEff of every PostgreSQL and Patroni process in the
// lab's node namespaces, keyed "pid comm (node)".
func labCapEff(t *testing.T) map[string]string {
	t.Helper()
	nsIno := map[string]string{} // "net:[ino]" -> node
	for _, n := range nodes {
		var st syscall.Stat_t
		if err := syscall.Stat("/run/netns/pgh-"+n, &st); err != nil {
			t.Fatal(err)
		}
		nsIno[fmt.Sprintf("net:[%d]", st.Ino)] = n
	}
	out := map[string]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := e.Name()
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		link, err := os.Readlink("/proc/" + pid + "/ns/net")
		if err != nil {
			continue
		}
		node, ok := nsIno[link]
		if !ok {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		c := strings.TrimSpace(string(comm))
		cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		isPatroni := c == "patroni" || (strings.HasPrefix(c, "python") && strings.Contains(string(cmdline), "patroni"))
		if c != "postgres" && !isPatroni {
			continue
		}
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				out[fmt.Sprintf("%s %s (%s)", pid, c, node)] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// checkCaps: no PostgreSQL or Patroni process holds any capability; alive
// is the number of nodes whose Patroni runs.
func checkCaps(t *testing.T, alive int) {
	t.Helper()
	caps := labCapEff(t)
	pg, pat := 0, 0
	for k, v := range caps {
		if strings.Contains(k, " postgres ") {
			pg++
		} else {
			pat++
		}
		if v != "0000000000000000" {
			t.Errorf("%s has CapEff %s, want 0", k, v)
		}
	}
	if pg < 2*alive || pat < alive {
		t.Errorf("found only %d PostgreSQL and %d Patroni processes in the lab: %v", pg, pat, caps)
	}
	t.Logf("CapEff 0 on all %d PostgreSQL and %d Patroni processes", pg, pat)
}

func otherNode(not ...string) string {
	for _, n := range nodes {
		skip := false
		for _, x := range not {
			skip = skip || n == x
		}
		if !skip {
			return n
		}
	}
	return ""
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// --- tests ----------------------------------------------------------------

func TestVIPAfterBootstrap(t *testing.T) {
	requireVIP(t)
	l := vipOnLeader(t, 60*time.Second)
	out, err := lib(t, "lab_psql_client", vipAddr, "-c", "select pg_is_in_recovery()::text || ' ' || current_setting('data_directory')")
	if err != nil {
		t.Fatal(err)
	}
	if want := "false " + filepath.Join(labDir, l, "data"); out != want {
		t.Fatalf("through the VIP: %q, want %q", out, want)
	}
	// The helper as the lab installs it.
	helper := filepath.Join(labDir, "bin", "pghook-vip")
	gc, err := exec.Command("getcap", helper).CombinedOutput()
	if err != nil || !strings.Contains(string(gc), "cap_net_admin,cap_net_raw=ep") {
		t.Errorf("getcap %s: %q %v", helper, gc, err)
	}
	// Every watcher runs as postgres with exactly the helper's two capabilities.
	for _, n := range nodes {
		pid, err := lib(t, "lab_pid", n, "pghook-vip")
		if err != nil {
			t.Fatalf("no vip watcher on %s: %v", n, err)
		}
		st, _ := os.ReadFile("/proc/" + pid + "/status")
		s := string(st)
		if !strings.Contains(s, "CapEff:\t0000000000003000") {
			t.Errorf("%s: watcher %s: want CapEff 3000 (NET_ADMIN+NET_RAW):\n%s", n, pid, s)
		}
	}
	t.Logf("VIP %s on leader %s only; a client through it reaches the primary", vipAddr, l)
}

func TestVIPFollowsSwitchover(t *testing.T) {
	requireVIP(t)
	old := vipOnLeader(t, 90*time.Second)
	cand := otherNode(old)
	logFrom := logSize(cand)
	watchFrom := map[string]int64{old: vipwatchSize(old), cand: vipwatchSize(cand)}
	w := startVIPWatcher(t)
	time.Sleep(500 * time.Millisecond) // a baseline of good samples
	t0 := time.Now()
	if out, err := lib(t, "lab_switchover", old, cand); err != nil {
		w.Stop()
		t.Fatalf("%v: %s", err, out)
	}
	eventually(t, 30*time.Second, "the VIP on the new leader, answering", func() error {
		hs, ps, _ := w.snapshot()
		if _, ok := firstHolding(hs, cand, t0); !ok {
			return fmt.Errorf("%s does not hold the VIP alone yet", cand)
		}
		if _, ok := firstGoodProbe(ps, cand, t0); !ok {
			return fmt.Errorf("no client probe reached %s as primary yet", cand)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // late callbacks of the old primary must not take it back
	w.Stop()
	end := time.Now()

	n2, first := doubles(w.holders, w.start, end)
	o := clientOutage(w.probes, w.start)
	tPrim, okP := firstPrimary(w.primaries, cand, t0)
	tVIP, okV := firstHolding(w.holders, cand, t0)
	tOldGone, _ := lastHolding(w.holders, old, end)
	if !okP || !okV {
		t.Fatalf("no /primary=200 (%v) or no VIP (%v) seen on %s", okP, okV, cand)
	}
	lat := tVIP.Sub(tPrim)
	good, _ := firstGoodProbe(w.probes, cand, t0)
	t.Logf("switchover %s -> %s: client downtime %s (%d of %d probes failed, %d answered by a replica; e.g. %q)",
		old, cand, sec(o.longest), o.failed, o.total, o.replicaAnswers, o.errSample)
	t.Logf("  outage began %s before %s's /primary=200; VIP on %s %s after it (samples every %v), first client answer from it %s after it; old holder %s last seen %s after it; %d samples with 2+ holders %v",
		sec(tPrim.Sub(o.from)), cand, cand, sec(lat), sampleEvery, sec(good.end().Sub(tPrim)), old, sec(tOldGone.Sub(tPrim)), n2, first)
	if n2 != 0 {
		t.Errorf("%d samples with the VIP on two nodes during the switchover (first %v)", n2, first)
	}
	// The hand-over: the old primary keeps the address (refusing) until the
	// key names the new leader, so the VIP is on no host for at most about
	// one sample, and no client attempt hangs on a lost SYN.
	un, unAt, empty := unownedWindow(w.holders, t0, end)
	if empty > 0 {
		t.Logf("  VIP on no host: longest %s (from %s after the switchover began), %d empty samples", sec(un), sec(unAt.Sub(t0)), empty)
	} else {
		t.Logf("  VIP on no host: never sampled")
	}
	if un > 100*time.Millisecond {
		t.Errorf("the VIP was on no host for %s during the switchover, want <= 100ms", sec(un))
	}
	for _, k := range []string{"ct2", "none"} {
		ps := ofKind(w.probes, k)
		ko := clientOutage(ps, w.start)
		worst := longestAttempt(ps, t0, end)
		t.Logf("  client %s (one attempt at a time): downtime %s, longest attempt %s (started %s after the switchover began: %q)",
			k, sec(ko.longest), sec(worst.took), sec(worst.at.Sub(t0)), worst.err)
		if worst.took > time.Second {
			t.Errorf("client %s: an attempt through the VIP took %s, want <= 1s (a SYN to a host that no longer owns the VIP?)", k, sec(worst.took))
		}
		if ko.longest < 0 {
			t.Errorf("client %s never reached the new primary through the VIP", k)
		}
	}
	waits := vipwatchLines(cand, watchFrom[cand], "another host answers for the vip")
	waits = append(waits, logLines(cand, logFrom, "another host answers for the vip")...)
	deferred := vipwatchLines(old, watchFrom[old], "release deferred")
	t.Logf("  %s's takeover waited for another holder %d times; %s deferred %d callback releases", cand, len(waits), old, len(deferred))
	for _, n := range []string{old, cand} {
		for _, l := range vipwatchLines(n, watchFrom[n], `"vip`) {
			t.Logf("    %s vipwatch: %s", n, l)
		}
	}
	if lat > time.Second {
		t.Errorf("the VIP reached the new primary %s after its /primary=200, want <= 1s", sec(lat))
	}
	if o.longest < 0 {
		t.Errorf("the client never reached the new primary through the VIP")
	}
	if h := vipHolders(t); len(h) != 1 || h[0] != cand {
		t.Errorf("after the switchover VIP holders %v, want [%s]", h, cand)
	}
	// Patroni runs the callback as postgres, without capabilities: it must
	// have handed the hold to the node's running watcher (control socket),
	// not started the helper.
	if l := logLines(cand, logFrom, `"message":"callback applied"`, `"action":"on_role_change"`, `"vip":"hold"`); len(l) == 0 {
		t.Errorf("no on_role_change callback holding the VIP in %s's patroni.log", cand)
	} else if !strings.Contains(l[len(l)-1], `"vip_backend":"watcher /`) {
		t.Errorf("%s's on_role_change did not go through its watcher: %s", cand, l[len(l)-1])
	} else {
		t.Logf("  %s", l[len(l)-1])
	}
	checkCaps(t, 3)
}

func TestVIPFollowsLeaderCrash(t *testing.T) {
	requireVIP(t)
	old := vipOnLeader(t, 90*time.Second)
	w := startVIPWatcher(t)
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	if _, err := lib(t, "lab_kill_node", old); err != nil {
		w.Stop()
		t.Fatal(err)
	}
	var nl string
	eventually(t, 60*time.Second, "a new leader holding the VIP and answering through it", func() error {
		hs, ps, qs := w.snapshot()
		var l string
		for i := len(qs) - 1; i >= 0; i-- {
			if len(qs[i].primary) == 1 && qs[i].primary[0] != old {
				l = qs[i].primary[0]
				break
			}
		}
		if l == "" {
			return fmt.Errorf("no new primary yet")
		}
		nl = l
		if _, ok := firstHolding(hs, nl, t0); !ok {
			return fmt.Errorf("%s does not hold the VIP alone yet", nl)
		}
		if _, ok := firstGoodProbe(ps, nl, t0); !ok {
			return fmt.Errorf("no client probe reached %s as primary yet", nl)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	w.Stop()
	end := time.Now()

	tNew, _ := firstHolding(w.holders, nl, t0)
	tPrim, _ := firstPrimary(w.primaries, nl, t0)
	good, _ := firstGoodProbe(w.probes, nl, t0)
	tOld, held := lastHolding(w.holders, old, end)
	nAfter, firstAfter := doubles(w.holders, tNew, end)
	nBefore, _ := doubles(w.holders, t0, tNew)
	t.Logf("kill -9 of %s (Patroni + postmaster): %s primary after %s; VIP there after %s (%s after its /primary=200); client through the VIP reaches it after %s",
		old, nl, sec(tPrim.Sub(t0)), sec(tNew.Sub(t0)), sec(tNew.Sub(tPrim)), sec(good.end().Sub(t0)))
	if held {
		t.Logf("  the dead node's watcher removed the VIP after %s; samples with 2+ holders: %d before the new leader held it, %d after", sec(tOld.Sub(t0)), nBefore, nAfter)
	}
	if nAfter != 0 {
		t.Errorf("%d samples with the VIP on two nodes after the new leader took it (first %v)", nAfter, firstAfter)
	}
	if h := vipHolders(t); len(h) != 1 || h[0] != nl {
		t.Errorf("VIP holders %v, want [%s]: the dead node kept it?", h, nl)
	}
	checkCaps(t, 2)

	if _, err := lib(t, "lab_start_patroni", old); err != nil {
		t.Fatal(err)
	}
	vipOnLeader(t, 120*time.Second)
}

func TestVIPHelperRefusesUntrustedConfig(t *testing.T) {
	requireVIP(t)
	l := vipOnLeader(t, 60*time.Second)
	n := otherNode(l) // a replica: an accepted `down` would be harmless there
	d := filepath.Join(labDir, n)
	src, err := os.ReadFile(filepath.Join(d, "pghook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(d, "home", "untrusted-pghook.yaml")
	if err := os.WriteFile(bad, src, 0o640); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(bad)
	if out, err := exec.Command("chown", "postgres:postgres", bad).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	helper := filepath.Join(labDir, "bin", "pghook-vip")
	for _, args := range [][]string{
		{"down", "--scope", scope, "--config", bad},
		{"up", "--scope", scope, "--config", bad},
		{"down", "--scope", scope, "--config", filepath.Join(d, "pghook.yaml"), "--vip-address", "10.251.77.200/24"},
	} {
		out, err := lib(t, "lab_exec_pg", append([]string{n, helper}, args...)...)
		if err == nil {
			t.Errorf("pghook-vip %v accepted: %s", args, out)
			continue
		}
		if !strings.Contains(err.Error(), "refus") {
			t.Errorf("pghook-vip %v failed, but not with a refusal: %v", args, err)
		}
	}
	if h := vipHolders(t); len(h) != 1 || h[0] != l {
		t.Errorf("VIP holders %v, want [%s]", h, l)
	}
}

func TestVIPLinkCut(t *testing.T) {
	requireVIP(t)
	old := vipOnLeader(t, 90*time.Second)
	w := startVIPWatcher(t)
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	if _, err := lib(t, "lab_link_down", old); err != nil {
		w.Stop()
		t.Fatal(err)
	}
	linkUp := func() {
		if _, err := lib(t, "lab_link_up", old); err != nil {
			t.Errorf("lab_link_up %s: %v", old, err)
		}
	}
	var nl string
	ok := func() bool {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			hs, ps, qs := w.snapshot()
			nl = ""
			for i := len(qs) - 1; i >= 0; i-- {
				for _, p := range qs[i].primary {
					if p != old {
						nl = p
					}
				}
				if nl != "" {
					break
				}
			}
			if nl != "" {
				_, dropped := firstAbsent(hs, old, t0)
				_, holds := firstHolding(hs, nl, t0)
				_, good := firstGoodProbe(ps, nl, t0)
				if dropped && holds && good {
					return true
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		return false
	}()
	if !ok {
		linkUp()
		w.Stop()
		dumpLogs(t)
		dumpVIPWatch(t)
		h, _, _ := w.snapshot()
		t.Fatalf("after 60s: new leader %q; VIP holders now %v", nl, h[len(h)-1].nodes)
	}
	time.Sleep(time.Second)
	tUp := time.Now()
	linkUp()
	// Healthy again, and the old node (back as a replica) must not pull
	// clients back nor take the VIP.
	l := vipOnLeader(t, 120*time.Second)
	time.Sleep(2 * time.Second)
	w.Stop()
	end := time.Now()

	tDrop, _ := firstAbsent(w.holders, old, t0)
	tNew, _ := firstHolding(w.holders, nl, t0)
	tPrim, _ := firstPrimary(w.primaries, nl, t0)
	good, _ := firstGoodProbe(w.probes, nl, t0)
	nIso, firstIso := doubles(w.holders, t0, tUp)
	nAfter, firstAfter := doubles(w.holders, tUp, end)
	// Patroni's own split brain (3.0.2 + etcd3 when the partition heals):
	// two members answering /primary=200 at once after the link is back.
	split := 0
	for _, q := range w.primaries {
		if !q.at.Before(tUp) && len(q.primary) >= 2 {
			split++
		}
	}
	postHeal := clientOutage(w.probes, tUp)
	t.Logf("link cut of %s: it dropped the VIP after %s; %s primary after %s, holding the VIP after %s; client through the VIP reaches it after %s",
		old, sec(tDrop.Sub(t0)), nl, sec(tPrim.Sub(t0)), sec(tNew.Sub(t0)), sec(good.end().Sub(t0)))
	t.Logf("  samples with 2+ holders: %d while %s was isolated (first %v), %d after the link returned (first %v); /primary=200 on 2+ nodes after the link returned (Patroni split brain): %d samples; leader now %s",
		nIso, old, firstIso, nAfter, firstAfter, split, l)
	t.Logf("  after the link returned: %d of %d client probes failed (longest %s)", postHeal.failed, postHeal.total, sec(postHeal.longest))
	if split > 0 {
		t.Logf("  NOTE: Patroni itself had two primaries after the partition healed (a Patroni 3.0.2 etcd3 behaviour); counted apart")
	}
	if nAfter > 0 && split == 0 {
		t.Errorf("%d samples with the VIP on two nodes after the link returned, without two Patroni primaries", nAfter)
	}
	if postHeal.longest > 2*time.Second && split == 0 {
		t.Errorf("after the link returned the client lost the primary for %s (ARP pulled back?)", sec(postHeal.longest))
	}
}

// firstAbsent is the first sample after from in which node does not hold the VIP.
func firstAbsent(hs []holderSample, node string, from time.Time) (time.Time, bool) {
	for _, s := range hs {
		if s.at.Before(from) {
			continue
		}
		held := false
		for _, n := range s.nodes {
			held = held || n == node
		}
		if !held {
			return s.at, true
		}
	}
	return time.Time{}, false
}
