//go:build e2e

// Package subnetse2e drives the two-subnet lab (LAB_TOPOLOGY=two-subnet,
// e2e/lab/subnets.sh): n1 and n2 in subnet A, n3 in subnet B, the client
// and BIND in subnet C, a router between. Every node runs pghook with one
// VIP per subnet (vip.addresses) named in DNS (vip.dns): the primary holds
// its own subnet's VIP and primary.pglab.test. names that VIP. The test
// causes switchovers across the subnets (A→B, B→A), a kill -9 of the
// primary and a cut of its link, and samples every 50 ms who holds each
// VIP, what the leader key says and what BIND answers, while a client in
// subnet C resolves the name and writes through it, next to the same
// client writing to each node's own address (the floor). A package of its
// own because it needs its own lab.
package subnetse2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pghook/pghook/e2e/labkit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var (
	nodes     = []string{"n1", "n2", "n3"}
	env       map[string]string
	nodeIP    = map[string]string{}
	subnetVIP = map[string]string{} // node → the VIP of its subnet
	vips      []string              // subnet A's, subnet B's
)

const (
	clientEvery = 50 * time.Millisecond // each client target's resolve + connect + write
	sampleEvery = 50 * time.Millisecond // VIP holders, leader key, BIND's answer
	// nameBound is how long after promotion (the new node alone answering
	// /primary, sampled every 50 ms) the name may take to name the new
	// primary's subnet VIP held by it alone. The VIP helper's watcher takes
	// the VIP at the leader key's write, in-process (guard, probe, add,
	// first announcement: 49-75 ms in the lab's logs), then sends one RFC
	// 2136 update (1-23 ms): in the lab's logs the record was pointed
	// before Patroni logged the end of the promotion. Measured by the
	// sampler (each sample reads three kernels, etcd and BIND, and slips
	// under load): 200-400 ms; 400-800 ms on a slower CI machine when the
	// unprivileged watcher still ran the helper per take. 1 s holds both.
	nameBound = time.Second
	// offLeaderBound: how long a node may go on holding a VIP while the
	// leader key names another member. It lets go at the key's move (an
	// etcd watch): the record's delete, then the address. Measured: at
	// most 100 ms in a row (500 ms with the helper run per release).
	offLeaderBound = time.Second
	// floorSlack: the name's client may lose at most this much more than
	// the client that writes to the new primary's own address. The goal is
	// 100 ms (what the single VIP achieves); measured: -130 to +240 ms in
	// switchovers and kill -9, because the name's client resolves, then
	// connects, and within a subnet a SYN to the VIP can still go to the
	// old holder's MAC until the router takes the new holder's
	// announcement. 1 s leaves room for a slower machine; the figure is
	// logged per event and recorded in docs/RELIABILITY.md §6.
	floorSlack = time.Second
	// clientUserTimeout is the client's tcp_user_timeout (labkit/client.go),
	// which its keepalives (1 s idle) also end at.
	clientUserTimeout = 2 * time.Second
)

// gapSlack is how much more than the floor the name's client may lose in
// an event. After a link cut, the name's client can have a write in flight
// to the cut node, which fails only after its tcp_user_timeout; the floor's
// client writes to the new primary and never has one (measured: +2.1 s in
// one run, within floorSlack in others).
func gapSlack(event string) time.Duration {
	if event == "link cut" {
		return floorSlack + clientUserTimeout
	}
	return floorSlack
}

func TestMain(m *testing.M) {
	labkit.Main(m, "e2e/subnets", map[string]string{"LAB_TOPOLOGY": "two-subnet", "LAB_VIP": "dns"}, func(l *labkit.Lab) error {
		lab = l
		env = l.Env
		for _, n := range nodes {
			nodeIP[n] = env["LAB_"+strings.ToUpper(n)+"_IP"]
			v, err := lib("lab_subnet_vip", n)
			if err != nil {
				return err
			}
			subnetVIP[n] = v
			if !slices.Contains(vips, v) {
				vips = append(vips, v)
			}
		}
		return nil
	})
}

var lab *labkit.Lab

func lib(fn string, args ...string) (string, error)             { return lab.Lib(fn, args...) }
func lookup(ctx context.Context, name string) ([]string, error) { return lab.Lookup(ctx, name) }
func primaries() []string                                       { return lab.Primaries(nodes) }

// --- sampling -----------------------------------------------------------------------

// sample is one tick: who holds each VIP (read from each node's kernel, so
// an isolated node counts too), what the leader key says and what BIND
// answers.
type sample struct {
	at      time.Time
	holders map[string][]string // VIP → nodes holding it
	leader  string              // the DCS leader key ("" empty, "?" unknown)
	answer  []string
	dnsErr  error
}

// leaderSample: the nodes answering 200 on Patroni's /primary (its own
// ticker: an isolated node's 300 ms timeout must not slow the others).
type leaderSample struct {
	at        time.Time
	primaries []string
}

// holds reports the VIPs node holds in s.
func (s sample) holds(node string) []string {
	var out []string
	for _, v := range vips {
		if slices.Contains(s.holders[v], node) {
			out = append(out, v)
		}
	}
	return out
}

type recorder struct {
	mu      sync.Mutex
	samples []sample
	leadS   []leaderSample
	cli     []labkit.Sample
	loops   *labkit.Loops
	client  *labkit.Client
	handles map[string]*netlink.Handle
}

var httpClient = &http.Client{Timeout: 300 * time.Millisecond}

// leaderKey reads the leader key through etcd's v3 JSON gateway from every
// member at once (linearizable: an isolated member does not answer) and
// returns the first answer.
func leaderKey() string {
	key := base64.StdEncoding.EncodeToString([]byte("/service/" + env["LAB_SCOPE"] + "/leader"))
	got := make(chan string, len(nodes))
	for _, n := range nodes {
		go func() {
			resp, err := httpClient.Post("http://"+nodeIP[n]+":2379/v3/kv/range", "application/json", strings.NewReader(`{"key":"`+key+`"}`))
			if err != nil {
				got <- "?"
				return
			}
			defer resp.Body.Close()
			var r struct {
				Kvs []struct {
					Value string `json:"value"`
				} `json:"kvs"`
			}
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&r) != nil {
				got <- "?"
				return
			}
			if len(r.Kvs) == 0 {
				got <- ""
				return
			}
			v, _ := base64.StdEncoding.DecodeString(r.Kvs[0].Value)
			got <- string(v)
		}()
	}
	for range nodes {
		if v := <-got; v != "?" {
			return v
		}
	}
	return "?"
}

func (r *recorder) holders() map[string][]string {
	out := map[string][]string{}
	for _, n := range nodes {
		link, err := r.handles[n].LinkByName("eth0")
		if err != nil {
			continue
		}
		addrs, err := r.handles[n].AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip := a.IP.String(); slices.Contains(vips, ip) {
				out[ip] = append(out[ip], n)
			}
		}
	}
	return out
}

func startRecorder(t *testing.T) *recorder {
	r := &recorder{loops: labkit.NewLoops(), handles: map[string]*netlink.Handle{}}
	for _, n := range nodes {
		ns, err := netns.GetFromName(env["LAB_"+strings.ToUpper(n)+"_NS"])
		if err != nil {
			t.Fatal(err)
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			t.Fatal(err)
		}
		r.handles[n] = h
	}
	targets := []string{"name"}
	for _, n := range nodes {
		targets = append(targets, nodeIP[n])
	}
	o := labkit.ClientOptions{Every: clientEvery, Targets: targets, Table: "subnets_client", App: "subnets-client"}
	r.client = lab.StartClient(t, o, func(s labkit.Sample) {
		r.mu.Lock()
		r.cli = append(r.cli, s)
		r.mu.Unlock()
	})
	// Patroni's /primary on its own ticker: an isolated node's 300 ms
	// timeout must not slow the other samples.
	r.loops.Every(sampleEvery, func(now time.Time) {
		p := primaries()
		r.mu.Lock()
		r.leadS = append(r.leadS, leaderSample{at: now, primaries: p})
		r.mu.Unlock()
	})
	r.loops.Every(sampleEvery, func(now time.Time) {
		s := sample{at: now, holders: r.holders()}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); s.leader = leaderKey() }()
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			s.answer, s.dnsErr = lookup(ctx, env["LAB_DNS_NAME"])
		}()
		wg.Wait()
		r.mu.Lock()
		r.samples = append(r.samples, s)
		r.mu.Unlock()
	})
	return r
}

// Stop ends the sampling and the client; call it once.
func (r *recorder) Stop() {
	r.loops.Stop()
	r.client.Close()
	for _, h := range r.handles {
		h.Close()
	}
}

// --- events -------------------------------------------------------------------------

type eventResult struct {
	name, old, new string
	promote        time.Duration // event → the new node alone answers /primary
	named          time.Duration // event → the name names the new node's subnet VIP, held by it alone
	gap            time.Duration // the name's client: the longest time without a write
	floor          time.Duration // the same, writing to the nodes' own addresses
	failed         int           // the name's client's failed attempts in the event
	samples        int
	offLeader      int           // samples where a node other than the key's leader held a VIP
	offLeaderRun   time.Duration // the longest such run
	offLeaderLast  string        // its last sample
	bothFailed     int           // settled attempts that failed through the name and to the address alike
}

// routing: the name names the leader's subnet VIP, held by the leader
// alone (lab_dns_on_leader).
var routing = labkit.Routing{What: "the name on the leader's VIP", Routed: func(string) error {
	_, err := lib("lab_dns_on_leader")
	return err
}}

func settle(t *testing.T, timeout time.Duration) string {
	t.Helper()
	return lab.Settle(t, timeout, routing)
}

// gapOf is the longest time between two consecutive writes of the client
// samples that match, over [start, end): the last write before start is
// the first end point. Only a primary takes a write, so through the name
// it is what the application lost; over the nodes' own addresses (one
// target per node, whichever is primary writes) it is the floor: what
// Patroni's failover itself costs.
func gapOf(cli []labkit.Sample, match func(labkit.Sample) bool, start, end time.Time) time.Duration {
	var ends []time.Time
	for _, s := range cli {
		if match(s) && s.OK && s.End.Before(end) && s.End.After(start.Add(-5*time.Second)) {
			ends = append(ends, s.End)
		}
	}
	// The event's end closes the last interval: a client stuck since its
	// last write counts to the end.
	ends = append(ends, end)
	slices.SortFunc(ends, time.Time.Compare)
	var gap time.Duration
	for i := 1; i < len(ends); i++ {
		if ends[i].After(start) {
			gap = max(gap, ends[i].Sub(ends[i-1]))
		}
	}
	return gap
}

func analyse(t *testing.T, r *recorder, res *eventResult, start, end time.Time) {
	t.Helper()
	r.mu.Lock()
	samples := slices.Clone(r.samples)
	leadS := slices.Clone(r.leadS)
	cli := slices.Clone(r.cli)
	r.mu.Unlock()
	newVIP := subnetVIP[res.new]
	var promoteAt, namedAt, runStart time.Time
	for _, s := range leadS {
		if !s.at.Before(start) && s.at.Before(end) {
			if promoteAt.IsZero() && slices.Equal(s.primaries, []string{res.new}) {
				promoteAt = s.at
			}
			if len(s.primaries) > 1 {
				t.Errorf("%s: two primaries at +%v: %v", res.name, s.at.Sub(start).Round(time.Millisecond), s.primaries)
			}
		}
	}
	for _, s := range samples {
		if s.at.Before(start) || !s.at.Before(end) {
			continue
		}
		res.samples++
		// No VIP on two nodes, ever.
		for _, v := range vips {
			if len(s.holders[v]) > 1 {
				t.Errorf("%s: +%v: %s held by %v", res.name, s.at.Sub(start).Round(time.Millisecond), v, s.holders[v])
			}
		}
		// At most the leader holds one: count the samples where a node
		// holds a VIP while the leader key names another member, and the
		// longest run of them. (With the key empty nobody leads: the old
		// holder's watcher then decides by its own Patroni.)
		off := false
		for _, n := range nodes {
			if len(s.holds(n)) > 0 && s.leader != "?" && s.leader != "" && n != s.leader {
				off = true
			}
		}
		if off {
			res.offLeader++
			if runStart.IsZero() {
				runStart = s.at
			}
			if d := s.at.Sub(runStart) + sampleEvery; d > res.offLeaderRun {
				res.offLeaderRun = d
				res.offLeaderLast = fmt.Sprintf("+%v key %s holders %v", s.at.Sub(start).Round(time.Millisecond), s.leader, s.holders)
			}
		} else {
			runStart = time.Time{}
		}
		good := s.dnsErr == nil && slices.Equal(s.answer, []string{newVIP}) && slices.Equal(s.holders[newVIP], []string{res.new})
		switch {
		case namedAt.IsZero() && good:
			namedAt = s.at
		case !namedAt.IsZero() && s.dnsErr == nil && !slices.Equal(s.answer, []string{newVIP}):
			t.Errorf("%s: the name moved away from %s after naming it: +%v %v", res.name, newVIP, s.at.Sub(start).Round(time.Millisecond), s.answer)
		}
	}
	if promoteAt.IsZero() || namedAt.IsZero() {
		t.Errorf("%s: promotion at %v, name on %s's VIP at %v: want both", res.name, promoteAt, res.new, namedAt)
		return
	}
	res.promote, res.named = promoteAt.Sub(start), namedAt.Sub(start)
	if d := namedAt.Sub(promoteAt); d > nameBound {
		t.Errorf("%s: the name named %s %v after promotion, want <= %v", res.name, newVIP, d.Round(time.Millisecond), nameBound)
	}
	if res.offLeaderRun > offLeaderBound {
		t.Errorf("%s: a node held a VIP while the leader key named another for %v in a row (last: %s), want <= %v", res.name, res.offLeaderRun, res.offLeaderLast, offLeaderBound)
	}
	isName := func(s labkit.Sample) bool { return s.Target == "name" }
	res.gap = gapOf(cli, isName, start, end)
	res.floor = gapOf(cli, func(s labkit.Sample) bool { return s.Target != "name" }, start, end)
	for _, s := range cli {
		if isName(s) && !s.OK && !s.At.Before(start) && s.At.Before(end) {
			res.failed++
		}
	}
	if res.gap == 0 || res.floor == 0 {
		t.Errorf("%s: no write gap measured (name %v, floor %v)", res.name, res.gap, res.floor)
	} else if slack := gapSlack(res.name); res.gap > res.floor+slack {
		t.Errorf("%s: the name's client lost %v, the floor %v: want <= floor + %v", res.name, res.gap.Round(time.Millisecond), res.floor.Round(time.Millisecond), slack)
	} else if res.gap > res.floor+100*time.Millisecond {
		t.Logf("%s: the name's client lost %v more than the floor (the goal is 100 ms)", res.name, (res.gap - res.floor).Round(time.Millisecond))
	}
	// After the name settled, every attempt through it writes on the new
	// primary — unless the same client writing to the new primary's own
	// address failed at that moment too (the server, not the name: the
	// old primary rejoining loads the 2-core machine).
	direct := func(from, to time.Time) bool {
		for _, d := range cli {
			if d.Target == nodeIP[res.new] && !d.OK && d.End.After(from) && d.At.Before(to) {
				return true
			}
		}
		return false
	}
	for _, s := range cli {
		if isName(s) && s.At.After(namedAt.Add(time.Second)) && s.At.Before(end) && s.At.After(promoteAt.Add(time.Second)) && !(s.OK && s.Srv == newVIP) {
			if direct(s.At, s.End) {
				res.bothFailed++
				continue
			}
			t.Errorf("%s: +%v through the name: answer %v, server %q, err %q (the new primary's own address answered then)", res.name, s.At.Sub(start).Round(time.Millisecond), s.Answer, s.Srv, s.Err)
			break
		}
	}
}

func otherSubnet(n string) string {
	for _, c := range nodes {
		if subnetVIP[c] != subnetVIP[n] {
			return c
		}
	}
	return ""
}

// TestPerSubnetVIPNamedInDNS: switchover A→B and B→A, kill -9 of the
// primary, cut of its link. After each: no VIP on two nodes in any sample,
// the name names the new primary's subnet VIP, held by it alone, within
// nameBound of promotion and keeps naming it, and the client that follows
// the name loses at most floorSlack more than one writing to the new
// primary's own address.
func TestPerSubnetVIPNamedInDNS(t *testing.T) {
	l := settle(t, 90*time.Second)
	lab.Must(t, "lab_psql", l, "-c", "create table if not exists public.subnets_client (id bigserial primary key, at timestamptz not null, via text not null)")
	rec := startRecorder(t)
	defer rec.Stop()
	time.Sleep(2 * time.Second)
	var results []*eventResult
	event := func(f labkit.Fault) {
		ev := lab.RunEvent(t, f, routing, nil)
		res := &eventResult{name: ev.Name, old: ev.Old, new: ev.New}
		analyse(t, rec, res, ev.Start, ev.End)
		t.Logf("%s: %s -> %s: /primary +%v, name on %s +%v (after promotion %v), write gap through the name %v, floor %v, failed attempts %d (after settling, also failing on the address: %d), samples %d, non-leader holding a VIP %d (longest %v)",
			res.name, res.old, res.new, res.promote.Round(time.Millisecond), subnetVIP[res.new], res.named.Round(time.Millisecond), (res.named - res.promote).Round(time.Millisecond),
			res.gap.Round(time.Millisecond), res.floor.Round(time.Millisecond), res.failed, res.bothFailed, res.samples, res.offLeader, res.offLeaderRun)
		results = append(results, res)
	}
	switchover := func(old string) string {
		cand := otherSubnet(old)
		lab.Must(t, "lab_switchover", old, cand)
		return cand
	}
	subnetOf := func(n string) string {
		if subnetVIP[n] == vips[0] {
			return "A"
		}
		return "B"
	}
	for range 2 {
		cur := settle(t, 90*time.Second)
		event(labkit.Fault{Name: "switchover " + subnetOf(cur) + "→" + subnetOf(otherSubnet(cur)), Cause: switchover})
	}
	event(lab.KillNine(t))
	event(lab.LinkCut(t))
	rec.Stop()
	t.Log("event          old→new  promotion  name on VIP  name-promotion  gap (name)  floor  failed  samples  non-leader holding (longest)")
	for _, r := range results {
		t.Logf("%-13s  %s→%s  %8v  %8v  %8v  %8v  %8v  %4d  %5d  %d (%v)", r.name, r.old, r.new, r.promote.Round(time.Millisecond), r.named.Round(time.Millisecond),
			(r.named - r.promote).Round(time.Millisecond), r.gap.Round(time.Millisecond), r.floor.Round(time.Millisecond), r.failed, r.samples, r.offLeader, r.offLeaderRun)
	}
}
