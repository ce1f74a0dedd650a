//go:build e2e

// Package dnse2e drives the three-node Patroni lab with pghook's dns
// backend (LAB_VIP=dns: BIND 9 in its own namespace, authoritative for
// pglab.test.; primary.pglab.test. names the primary's own address,
// replicas.pglab.test. the streaming replicas'). Patroni calls pghook; the
// tests cause a switchover, a kill -9 of the primary and a cut of its
// link, and check what BIND serves, what it logged, and what a client that
// follows the name gets. A package of its own because it needs its own lab:
// e2e/ runs the netlink VIP.
package dnse2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pghook/pghook/e2e/labkit"
)

var (
	nodes  = []string{"n1", "n2", "n3"}
	env    map[string]string
	nodeIP = map[string]string{}
	ipNode = map[string]string{}
)

const (
	clientEvery = 50 * time.Millisecond // the client's resolve + connect + write
	dnsEvery    = 20 * time.Millisecond // the test's own questions to BIND
	leaderEvery = 50 * time.Millisecond // Patroni's /primary on every node
)

func TestMain(m *testing.M) {
	labkit.Main(m, "e2e/dns", map[string]string{"LAB_VIP": "dns"}, func(l *labkit.Lab) error {
		lab = l
		env = l.Env
		for _, n := range nodes {
			nodeIP[n] = env["LAB_"+strings.ToUpper(n)+"_IP"]
			ipNode[nodeIP[n]] = n
		}
		return nil
	})
}

var lab *labkit.Lab

func lookup(ctx context.Context, name string) ([]string, error) { return lab.Lookup(ctx, name) }

func names(ips []string) string {
	var out []string
	for _, ip := range ips {
		if n, ok := ipNode[ip]; ok {
			out = append(out, n)
		} else {
			out = append(out, ip)
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

// --- the recorder: BIND's answers, Patroni's primaries, the client -------------------

type dnsSample struct {
	at                time.Time
	primary, replicas []string
	err               error
}

type leaderSample struct {
	at        time.Time
	primaries []string // nodes answering 200 on /primary
}

type recorder struct {
	mu     sync.Mutex
	dnsS   []dnsSample
	leadS  []leaderSample
	cliS   []labkit.Sample
	loops  *labkit.Loops
	client *labkit.Client
}

func startRecorder(t *testing.T) *recorder {
	r := &recorder{loops: labkit.NewLoops()}
	r.client = startClient(t, func(s labkit.Sample) {
		r.mu.Lock()
		r.cliS = append(r.cliS, s)
		r.mu.Unlock()
	})
	r.loops.Every(dnsEvery, func(now time.Time) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p, err := lookup(ctx, env["LAB_DNS_NAME"])
		var rs []string
		if err == nil {
			rs, err = lookup(ctx, env["LAB_DNS_REPLICAS"])
		}
		r.mu.Lock()
		r.dnsS = append(r.dnsS, dnsSample{at: now, primary: p, replicas: rs, err: err})
		r.mu.Unlock()
	})
	r.loops.Every(leaderEvery, func(now time.Time) {
		got := lab.Primaries(nodes)
		r.mu.Lock()
		r.leadS = append(r.leadS, leaderSample{at: now, primaries: got})
		r.mu.Unlock()
	})
	return r
}

func (r *recorder) Stop() {
	r.loops.Stop()
	r.client.Close()
}

// startClient starts the lab's client (labkit.StartClient) following the
// name: an application that resolves it at BIND before every connection;
// every attempt goes to emit.
func startClient(t *testing.T, emit func(labkit.Sample)) *labkit.Client {
	t.Helper()
	o := labkit.ClientOptions{Every: clientEvery, Targets: []string{"name"}, Table: "dns_client", App: "dns-client"}
	return lab.StartClient(t, o, emit)
}

// --- logs -------------------------------------------------------------------------

// logFiles are pghook's logs on every node and BIND's log.
func logFiles() []string {
	return append(lab.PghookLogs(nodes), env["LAB_DNS_LOG"])
}

func logOffsets() map[string]int64 { return labkit.LogOffsets(logFiles()) }

var (
	// BIND 9.18: "client @0x… 10.251.77.12#40143/key pglab-hook: updating zone
	// 'pglab.test/IN': adding an RR at 'primary.pglab.test' A 10.251.77.12"
	bindAdd = regexp.MustCompile(`adding an RR at 'primary\.pglab\.test' A ([0-9.]+)`)
	// "… update unsuccessful: primary.pglab.test/A: 'RRset exists (value
	// dependent)' prerequisite not satisfied (NXRRSET)"
	bindRefused = regexp.MustCompile(`primary\.pglab\.test/A.*prerequisite not satisfied`)
	// Who sent it: "client @0x… 10.251.77.12#40143".
	bindClient = regexp.MustCompile(`client @\S+ ([0-9.]+)#\d+`)
)

// bindSender is the address of the client a line of BIND's log is about.
func bindSender(line string) string {
	if m := bindClient.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

const pghookRefusal = "release refused by the server's prerequisite"

// --- events -----------------------------------------------------------------------

type eventResult struct {
	name, old, new string
	promote        time.Duration // event → the new node alone answers /primary
	flip           time.Duration // event → BIND answers the new node alone
	firstWrite     time.Duration // event → the client's first write through the name on the new primary
	gap            time.Duration // the client's last write before it → that first write
	leftReplicas   time.Duration // event → the new primary's address out of the replicas' name
	failed         int           // client attempts that failed between the event and settling
	bindRefusals   int           // releases BIND refused (prerequisite), counted from its log
	pghookRefusals int           // the same, as pghook logged them
}

// routing: the name names the leader alone; settled, the replicas' name
// names the two others.
var routing = labkit.Routing{
	What:   "the name on the leader",
	Routed: func(l string) error { return namesAlone(env["LAB_DNS_NAME"], []string{nodeIP[l]}) },
	Settled: func(l string) error {
		if err := namesAlone(env["LAB_DNS_NAME"], []string{nodeIP[l]}); err != nil {
			return err
		}
		var want []string
		for _, n := range nodes {
			if n != l {
				want = append(want, nodeIP[n])
			}
		}
		slices.Sort(want)
		return namesAlone(env["LAB_DNS_REPLICAS"], want)
	},
}

// namesAlone is nil when BIND answers name with want (sorted), nothing else.
func namesAlone(name string, want []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	got, err := lookup(ctx, name)
	if err != nil {
		return err
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s names %s, want %s", name, names(got), names(want))
	}
	return nil
}

func settle(t *testing.T, timeout time.Duration) string {
	t.Helper()
	return lab.Settle(t, timeout, routing)
}

// analyse checks one event's window [start, end) of the recording.
func analyse(t *testing.T, r *recorder, res *eventResult, start, end time.Time, offs map[string]int64) {
	t.Helper()
	r.mu.Lock()
	dnsS := slices.Clone(r.dnsS)
	leadS := slices.Clone(r.leadS)
	cliS := slices.Clone(r.cliS)
	r.mu.Unlock()
	newIP := nodeIP[res.new]

	var promoteAt, flipAt time.Time
	for _, s := range leadS {
		if !s.at.Before(start) && s.at.Before(end) && slices.Equal(s.primaries, []string{res.new}) {
			promoteAt = s.at
			break
		}
	}
	if promoteAt.IsZero() {
		t.Errorf("%s: %s never answered /primary alone", res.name, res.new)
		return
	}
	for _, s := range leadS {
		if s.at.After(promoteAt) && s.at.Before(end) && len(s.primaries) > 1 {
			t.Errorf("%s: two primaries at +%v: %v", res.name, s.at.Sub(start).Round(time.Millisecond), s.primaries)
		}
	}
	var wrong []string
	for _, s := range dnsS {
		if s.at.Before(start) || !s.at.Before(end) || s.err != nil {
			continue
		}
		if flipAt.IsZero() {
			if slices.Equal(s.primary, []string{newIP}) {
				flipAt = s.at
			}
			continue
		}
		// After the flip the name names the new primary alone until the
		// event's end: a stale node's take, or its release, would show here.
		if !slices.Equal(s.primary, []string{newIP}) && len(wrong) < 5 {
			wrong = append(wrong, fmt.Sprintf("+%v: %s", s.at.Sub(start).Round(time.Millisecond), names(s.primary)))
		}
	}
	if flipAt.IsZero() {
		t.Errorf("%s: %s never named %s alone", res.name, env["LAB_DNS_NAME"], res.new)
		return
	}
	if len(wrong) > 0 {
		t.Errorf("%s: after naming %s at +%v the record changed: %v", res.name, res.new, flipAt.Sub(start).Round(time.Millisecond), wrong)
	}
	res.promote, res.flip = promoteAt.Sub(start), flipAt.Sub(start)
	// The replicas' name: the new primary leaves it once Patroni stops
	// calling it a replica, and does not come back before the event ends.
	var leftAt time.Time
	for _, s := range dnsS {
		if s.at.Before(start) || !s.at.Before(end) || s.err != nil {
			continue
		}
		in := slices.Contains(s.replicas, newIP)
		switch {
		case leftAt.IsZero() && !in && s.at.After(promoteAt):
			leftAt = s.at
		case !leftAt.IsZero() && in:
			t.Errorf("%s: %s back in %s at +%v after leaving it at +%v", res.name, res.new, env["LAB_DNS_REPLICAS"],
				s.at.Sub(start).Round(time.Millisecond), leftAt.Sub(start).Round(time.Millisecond))
			leftAt = time.Time{}
		}
	}
	if leftAt.IsZero() {
		t.Errorf("%s: the new primary %s never left %s", res.name, res.new, env["LAB_DNS_REPLICAS"])
	} else {
		res.leftReplicas = leftAt.Sub(start)
	}

	// The client: from the later of flip and promotion + 1 s (the record's
	// TTL; this client asks the server itself) every attempt writes on the
	// new primary.
	settledAt := flipAt
	if promoteAt.After(settledAt) {
		settledAt = promoteAt
	}
	settledAt = settledAt.Add(time.Second)
	var bad []string
	ok := 0
	var lastOK time.Time
	for _, s := range cliS {
		if s.OK && s.Srv != newIP && !s.At.Before(start.Add(-5*time.Second)) && s.End.Before(end) {
			lastOK = s.End // a write on the old primary
		}
	}
	for _, s := range cliS {
		if s.At.Before(start) || !s.At.Before(end) {
			continue
		}
		good := s.OK && s.Srv == newIP
		if good && res.firstWrite == 0 {
			res.firstWrite = s.End.Sub(start)
			if !lastOK.IsZero() && lastOK.Before(s.End) {
				res.gap = s.End.Sub(lastOK)
			}
		}
		if !good && s.At.Before(settledAt) {
			res.failed++
		}
		if s.At.After(settledAt) {
			if good {
				ok++
			} else if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("+%v answer %s srv %s err %q", s.At.Sub(start).Round(time.Millisecond), names(s.Answer), s.Srv, s.Err))
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s: client attempts after the name settled (+%v) did not write on %s: %v", res.name, settledAt.Sub(start).Round(time.Millisecond), res.new, bad)
	}
	if ok == 0 || res.firstWrite == 0 {
		t.Errorf("%s: the client never wrote through the name on %s after the event", res.name, res.new)
	}

	// BIND's log: once the new primary's address was added, nothing else was.
	seenNew := false
	for _, l := range labkit.LogSince(env["LAB_DNS_LOG"], offs[env["LAB_DNS_LOG"]]) {
		if m := bindAdd.FindStringSubmatch(l); m != nil {
			if m[1] == newIP {
				seenNew = true
			} else if seenNew {
				t.Errorf("%s: BIND added %s (sent by %s) to the name after the new primary's address: %s", res.name, names(m[1:]), names([]string{bindSender(l)}), l)
			}
		}
		if bindRefused.MatchString(l) {
			res.bindRefusals++
		}
	}
	if !seenNew {
		t.Errorf("%s: BIND's log shows no update adding %s", res.name, newIP)
	}
	for f, off := range offs {
		if f == env["LAB_DNS_LOG"] {
			continue
		}
		for _, l := range labkit.LogSince(f, off) {
			if strings.Contains(l, pghookRefusal) {
				res.pghookRefusals++
			}
		}
	}
	// A release BIND refused is one pghook logged as refused.
	if res.bindRefusals > 0 && res.pghookRefusals == 0 {
		t.Errorf("%s: BIND refused %d release(s), pghook logged none", res.name, res.bindRefusals)
	}
}

func otherThan(n string) string { return labkit.OtherThan(nodes, n) }

// TestDNSNameFollowsPrimary: switchover, kill -9 of the primary's Patroni
// and postmaster, cut of the primary's link — after each the name answers
// the new primary alone and keeps answering it (no stale node overwrites
// or removes it; every release BIND refused is one pghook logged), the
// client writes through the name, the new primary leaves the replicas'
// name for good and, once the old primary is back, that name holds the two
// replicas again.
func TestDNSNameFollowsPrimary(t *testing.T) {
	old := settle(t, 90*time.Second)
	lab.Must(t, "lab_psql", old, "-c", "create table if not exists public.dns_client (id bigserial primary key, at timestamptz not null, via text not null)")
	rec := startRecorder(t)
	defer rec.Stop()
	time.Sleep(time.Second)
	var results []*eventResult

	for _, f := range []labkit.Fault{lab.Switchover(t, otherThan), lab.KillNine(t), lab.LinkCut(t)} {
		var offs map[string]int64
		ev := lab.RunEvent(t, f, routing, func() { offs = logOffsets() })
		res := &eventResult{name: ev.Name, old: ev.Old, new: ev.New}
		analyse(t, rec, res, ev.Start, ev.End, offs)
		t.Logf("%s: %s -> %s: /primary +%v, name +%v (name - promotion %v), out of the replicas' name +%v, first write through the name +%v, failed attempts %d, refused releases BIND %d / pghook %d",
			res.name, res.old, res.new, res.promote.Round(time.Millisecond), res.flip.Round(time.Millisecond), (res.flip - res.promote).Round(time.Millisecond),
			res.leftReplicas.Round(time.Millisecond), res.firstWrite.Round(time.Millisecond), res.failed, res.bindRefusals, res.pghookRefusals)
		results = append(results, res)
	}
	rec.Stop()
	t.Log("event       promotion  name     name-promotion  out of replicas  first write  write gap  failed  refusals (BIND/pghook)")
	for _, r := range results {
		t.Logf("%-10s  %8v  %8v  %8v  %8v  %8v  %8v  %6d  %d/%d", r.name, r.promote.Round(time.Millisecond), r.flip.Round(time.Millisecond),
			(r.flip - r.promote).Round(time.Millisecond), r.leftReplicas.Round(time.Millisecond), r.firstWrite.Round(time.Millisecond), r.gap.Round(time.Millisecond), r.failed, r.bindRefusals, r.pghookRefusals)
	}
}

// TestStaleNodeCannotMoveTheName: a replica that believes it should give
// up the name (`pghook vip down`, what a former primary's late callback
// does) is refused by BIND's prerequisite, logs the refusal and counts the
// release as done; one that tries to take it (`pghook vip up`) is refused
// by the DCS guard before any update is sent. Through both the name keeps
// naming the primary alone.
func TestStaleNodeCannotMoveTheName(t *testing.T) {
	l := settle(t, 120*time.Second)
	r := otherThan(l)
	offs := logOffsets()
	stop := make(chan struct{})
	var bad []string
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(dnsEvery):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			p, err := lookup(ctx, env["LAB_DNS_NAME"])
			cancel()
			if err == nil && !slices.Equal(p, []string{nodeIP[l]}) {
				mu.Lock()
				bad = append(bad, names(p))
				mu.Unlock()
			}
		}
	}()
	out, code := lab.PghookAs(t, r, "vip", "down", "--scope", env["LAB_SCOPE"])
	if code != 0 || !strings.Contains(out, pghookRefusal) {
		t.Errorf("vip down on replica %s: exit %d, want 0 with %q logged:\n%s", r, code, pghookRefusal, out)
	}
	out, code = lab.PghookAs(t, r, "vip", "up", "--scope", env["LAB_SCOPE"])
	if code == 0 {
		t.Errorf("vip up on replica %s: exit 0, want the DCS guard's refusal:\n%s", r, out)
	}
	t.Logf("vip up on replica %s: exit %d: %s", r, code, strings.TrimSpace(out))
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	if len(bad) > 0 {
		t.Errorf("%s named something else than %s while replica %s tried: %v", env["LAB_DNS_NAME"], l, r, bad)
	}
	refused, added := 0, 0
	for _, line := range labkit.LogSince(env["LAB_DNS_LOG"], offs[env["LAB_DNS_LOG"]]) {
		if bindRefused.MatchString(line) && bindSender(line) == nodeIP[r] {
			refused++
		}
		if bindAdd.MatchString(line) && bindSender(line) == nodeIP[r] {
			added++
			t.Errorf("BIND took an update adding to the name from replica %s: %s", r, line)
		}
	}
	if refused != 1 {
		t.Errorf("BIND's log shows %d refused prerequisite(s) from %s, want 1", refused, r)
	}
}
