//go:build e2e

// Package exece2e drives the three-node Patroni lab with pghook's exec
// backend (LAB_VIP=exec, e2e/lab/exec.sh): a fake cloud API in the client
// namespace assigns one address to one node and refuses a second holder
// (409) while another holds it; each node's pghook holds, releases and
// checks it through a curl script named in pghook.yaml by `pghook install
// --exec-hold …`. Patroni calls pghook; the tests cause a switchover, a
// kill -9 of the primary, a cut of its link and a spell of API errors, and
// check what the API assigns, sampled every 50 ms, against Patroni's
// primary, and what the API logged. A package of its own because it needs
// its own lab: e2e/ runs the netlink VIP.
package exece2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pghook/pghook/e2e/labkit"
)

var (
	nodes = []string{"n1", "n2", "n3"}
	env   map[string]string
)

const (
	sampleEvery = 50 * time.Millisecond // the API's holder and Patroni's /primary
	// holdBound: the API assigns the address to the new primary at most
	// this long after the new primary alone answers /primary. Why it is
	// enough: the new primary's watcher runs exec.hold as soon as the
	// watched leader key names it (Patroni is then promoting, before
	// /primary answers); the old primary's watcher releases when the key
	// leaves it (switchover, kill -9: its watcher still runs), or the API
	// lets the silent holder's assignment lapse after LAB_CLOUD_LEASE (5 s,
	// link cut) — before Patroni's ttl (10 s) elects a new leader. A hold
	// that races the release is refused (409) and retried at the next
	// watch_interval (300 ms). A step runs exec.check, then exec.hold:
	// each a fork of sh and curl, measured at 150–330 ms on the shared
	// 2-core lab machine. Worst case two steps and the interval between
	// them, 2 × 0.65 + 0.3 s, plus a 50 ms sample on each side: < 2 s.
	// Measured: 0.3–1.2 s.
	holdBound = 2 * time.Second
	// failFor is how long the API answers 500 in TestReconcilerRetries.
	failFor = 3 * time.Second
)

func TestMain(m *testing.M) {
	labkit.Main(m, "e2e/exec", map[string]string{"LAB_VIP": "exec"}, func(l *labkit.Lab) error {
		lab = l
		env = l.Env
		return nil
	})
}

var lab *labkit.Lab

func primaries() []string { return lab.Primaries(nodes) }
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	lab.Eventually(t, d, what, f)
}

// --- the cloud API ------------------------------------------------------------------

var httpc = &http.Client{Timeout: time.Second}

type apiState struct {
	Holder   string `json:"holder"`
	Refusals int    `json:"refusals"`
	Errors   int    `json:"errors"`
	Lapses   int    `json:"lapses"`
}

func state(ctx context.Context) (apiState, error) {
	var st apiState
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env["LAB_CLOUD_URL"]+"/admin/state", nil)
	if err != nil {
		return st, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return st, fmt.Errorf("cloud API state: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("cloud API state: HTTP %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func admin(t *testing.T, call string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env["LAB_CLOUD_URL"]+call, nil)
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("cloud API %s: %v", call, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("cloud API %s: HTTP %d", call, resp.StatusCode)
	}
}

// apiLine is one line of the API's request log.
type apiLine struct {
	T      float64 `json:"t"`
	Client string  `json:"client"`
	Method string  `json:"method"`
	Path   string  `json:"path"`
	Node   string  `json:"node"`
	Status int     `json:"status"`
	Holder string  `json:"holder"`
	Event  string  `json:"event"` // "lapsed": the holder's assignment lapsed
	Silent float64 `json:"silent_s"`
}

func (l apiLine) at() time.Time {
	sec, frac := math.Modf(l.T)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// apiLog returns the /v1 calls and the lapses the API logged after off.
func apiLog(t *testing.T, off int64) []apiLine {
	var out []apiLine
	for _, s := range labkit.LogSince(env["LAB_CLOUD_LOG"], off) {
		var l apiLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Errorf("cloud API log line is not JSON: %q: %v", s, err)
			continue
		}
		if strings.HasPrefix(l.Path, "/v1/") || l.Event != "" {
			out = append(out, l)
		}
	}
	return out
}

// pghookLogs are pghook's logs on every node, with their sizes.
func pghookLogs() map[string]int64 { return labkit.LogOffsets(lab.PghookLogs(nodes)) }

// pghookRefusals counts pghook's log lines that report the API's 409.
func pghookRefusals(offs map[string]int64) int {
	c := 0
	for f, off := range offs {
		for _, l := range labkit.LogSince(f, off) {
			if strings.Contains(l, "exec backend command failed") && strings.Contains(l, "HTTP 409") {
				c++
			}
		}
	}
	return c
}

// --- the recorder -------------------------------------------------------------------

type sample struct {
	at        time.Time
	holder    string
	primaries []string // nodes answering 200 on /primary
	err       error    // the API did not answer
}

type recorder struct {
	mu    sync.Mutex
	s     []sample
	loops *labkit.Loops
}

func startRecorder() *recorder {
	r := &recorder{loops: labkit.NewLoops()}
	r.loops.Every(sampleEvery, func(now time.Time) {
		var s sample
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.primaries = primaries()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := state(ctx)
		cancel()
		wg.Wait()
		s.at, s.holder, s.err = now, st.Holder, err
		r.mu.Lock()
		r.s = append(r.s, s)
		r.mu.Unlock()
	})
	return r
}

func (r *recorder) Stop() { r.loops.Stop() }

func (r *recorder) window(start, end time.Time) []sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sample
	for _, s := range r.s {
		if !s.at.Before(start) && s.at.Before(end) {
			out = append(out, s)
		}
	}
	return out
}

// --- events -------------------------------------------------------------------------

type eventResult struct {
	name, old, new string
	promote        time.Duration // event → the new node alone answers /primary
	hold           time.Duration // event → the API assigns the address to it
	refusals       int           // 409s the API answered in the event
	pghookRefusals int           // the same, as pghook logged them
	errors         int           // 5xx the API answered (injected)
	lapses         int           // assignments that lapsed (silent holder)
	apiDown        int           // samples the API did not answer
}

// routing: the API assigns the address to the leader.
var routing = labkit.Routing{What: "the address assigned to the leader", Routed: assignedTo}

// assignedTo is nil when the API assigns the address to node.
func assignedTo(node string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := state(ctx)
	if err != nil {
		return err
	}
	if st.Holder != node {
		return fmt.Errorf("the API assigns the address to %q, leader %s", st.Holder, node)
	}
	return nil
}

func settle(t *testing.T, timeout time.Duration) string {
	t.Helper()
	return lab.Settle(t, timeout, routing)
}

// analyse checks one event's window [start, end) of the recording and of
// the API's log.
func analyse(t *testing.T, r *recorder, res *eventResult, start, end time.Time, apiOff int64, pgOffs map[string]int64) {
	t.Helper()
	ss := r.window(start, end)
	var promoteAt, holdAt time.Time
	for _, s := range ss {
		if promoteAt.IsZero() && slices.Equal(s.primaries, []string{res.new}) {
			promoteAt = s.at
		}
		if holdAt.IsZero() && s.err == nil && s.holder == res.new {
			holdAt = s.at
		}
		if s.err != nil {
			res.apiDown++
		}
	}
	if promoteAt.IsZero() || holdAt.IsZero() {
		t.Errorf("%s: %s never answered /primary alone (%v) or never held the address (%v)", res.name, res.new, promoteAt, holdAt)
		return
	}
	res.promote, res.hold = promoteAt.Sub(start), holdAt.Sub(start)
	if d := holdAt.Sub(promoteAt); d > holdBound {
		t.Errorf("%s: the API assigned the address to %s %v after its promotion, bound %v", res.name, res.new, d.Round(time.Millisecond), holdBound)
	}
	// From the hold to the event's end the new primary keeps the address:
	// neither a stale node's hold nor a release takes it away.
	var wrong []string
	for _, s := range ss {
		if s.at.Before(holdAt) || s.err != nil {
			continue
		}
		if s.holder != res.new && len(wrong) < 5 {
			wrong = append(wrong, fmt.Sprintf("+%v: %q", s.at.Sub(start).Round(time.Millisecond), s.holder))
		}
		if len(s.primaries) > 1 {
			t.Errorf("%s: two primaries at +%v: %v (Patroni's own split)", res.name, s.at.Sub(start).Round(time.Millisecond), s.primaries)
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%s: after %s held the address at +%v it moved: %v", res.name, res.new, res.hold.Round(time.Millisecond), wrong)
	}
	// The API's log: after the new primary's assignment no other node got
	// one (the API refuses, so a 200 assign by another node would be a
	// hand-over pghook did not want); every refusal is logged by pghook.
	seenNew := false
	for _, l := range apiLog(t, apiOff) {
		rel := l.at().Sub(start).Round(time.Millisecond)
		switch {
		case l.Status == 409:
			res.refusals++
		case l.Status >= 500:
			res.errors++
		}
		if l.Event == "lapsed" {
			res.lapses++
			t.Logf("%s: +%v %s's assignment lapsed (silent for %.1f s)", res.name, rel, l.Node, l.Silent)
			continue
		}
		if l.Path != "/v1/holder" && l.Status != 500 {
			// The hand-over as the API saw it (checks left out).
			t.Logf("%s: +%v %s by %s: %d (holder after it: %q)", res.name, rel, l.Path, l.Node, l.Status, l.Holder)
		}
		if l.Path == "/v1/assign" && l.Status == 200 {
			if l.Node == res.new {
				seenNew = true
			} else if seenNew {
				t.Errorf("%s: +%v the API assigned the address to %s after %s held it", res.name, rel, l.Node, res.new)
			}
		}
	}
	if !seenNew {
		t.Errorf("%s: the API's log shows no assign by %s", res.name, res.new)
	}
	// What the new primary's watcher did, from its log.
	wf := filepath.Join(env["LAB_DIR"], res.new, "vipwatch.log")
	for _, line := range labkit.LogSince(wf, pgOffs[wf]) {
		var e struct {
			Time    time.Time `json:"time"`
			Message string    `json:"message"`
			VIP     string    `json:"vip"`
			Reason  string    `json:"reason"`
			Took    float64   `json:"took_ms"`
			Error   string    `json:"error"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Message == "watching" || e.Time.Before(start) {
			continue
		}
		t.Logf("%s: +%v %s watcher: %s %s (%s, %.0f ms) %s", res.name, e.Time.Sub(start).Round(time.Millisecond), res.new, e.Message, e.VIP, e.Reason, e.Took, e.Error)
	}
	res.pghookRefusals = pghookRefusals(pgOffs)
	if res.refusals > 0 && res.pghookRefusals == 0 {
		t.Errorf("%s: the API refused %d hold(s), pghook logged none", res.name, res.refusals)
	}
}

func otherThan(n string) string { return labkit.OtherThan(nodes, n) }

// TestAddressFollowsPrimary: switchover, kill -9 of the primary's Patroni
// and postmaster, cut of the primary's link — after each the API assigns
// the address to the new primary within holdBound of its promotion and
// keeps it there; the API's refusals of a second holder are counted and
// logged (and pghook logged each as a failed hold, retried).
func TestAddressFollowsPrimary(t *testing.T) {
	settle(t, 90*time.Second)
	rec := startRecorder()
	defer rec.Stop()
	time.Sleep(time.Second)
	var results []*eventResult

	for _, f := range []labkit.Fault{lab.Switchover(t, otherThan), lab.KillNine(t), lab.LinkCut(t)} {
		var apiOff int64
		var pgOffs map[string]int64
		ev := lab.RunEvent(t, f, routing, func() {
			apiOff, pgOffs = labkit.LogSize(env["LAB_CLOUD_LOG"]), pghookLogs()
		})
		res := &eventResult{name: ev.Name, old: ev.Old, new: ev.New}
		analyse(t, rec, res, ev.Start, ev.End, apiOff, pgOffs)
		t.Logf("%s: %s -> %s: /primary +%v, held +%v (hold - promotion %v), refusals API %d / pghook %d, lapses %d",
			res.name, res.old, res.new, res.promote.Round(time.Millisecond), res.hold.Round(time.Millisecond),
			(res.hold - res.promote).Round(time.Millisecond), res.refusals, res.pghookRefusals, res.lapses)
		results = append(results, res)
	}
	rec.Stop()
	t.Log("event       promotion  held      held-promotion  refusals (API/pghook)  lapses  API unanswered samples")
	for _, r := range results {
		t.Logf("%-10s  %8v  %8v  %8v  %d/%d  %d  %d", r.name, r.promote.Round(time.Millisecond), r.hold.Round(time.Millisecond),
			(r.hold - r.promote).Round(time.Millisecond), r.refusals, r.pghookRefusals, r.lapses, r.apiDown)
	}
}

// TestReconcilerRetries: the API loses the assignment and answers 500 to
// every call for failFor. The leader's watcher finds its check failing and
// holds, the hold fails, and it runs the hold again at each step until the
// API answers: the address is the leader's again within failFor +
// holdBound, after several failed holds and no assignment to anyone else.
func TestReconcilerRetries(t *testing.T) {
	l := settle(t, 120*time.Second)
	apiOff := labkit.LogSize(env["LAB_CLOUD_LOG"])
	offs := pghookLogs()
	start := time.Now()
	admin(t, fmt.Sprintf("/admin/fail?seconds=%g", failFor.Seconds()))
	admin(t, "/admin/drop")
	var back time.Time
	eventually(t, failFor+30*time.Second, "the address back on the leader", func() error {
		if err := assignedTo(l); err != nil {
			return err
		}
		back = time.Now()
		return nil
	})
	took := back.Sub(start)
	if took < failFor {
		t.Errorf("the address was back after %v, while the API failed for %v", took, failFor)
	}
	if took > failFor+holdBound+time.Second {
		t.Errorf("the address was back after %v: want within %v of the API answering again", took, holdBound+time.Second)
	}
	var failedHolds, okHolds int
	for _, line := range apiLog(t, apiOff) {
		switch {
		case line.Path == "/v1/assign" && line.Node == l && line.Status == 500:
			failedHolds++
		case line.Path == "/v1/assign" && line.Status == 200:
			if line.Node != l {
				t.Errorf("the API assigned the address to %s, not the leader %s", line.Node, l)
			}
			okHolds++
		}
	}
	if failedHolds < 2 || okHolds == 0 {
		t.Errorf("the leader's holds: %d answered 500, %d succeeded; want several retries, then success", failedHolds, okHolds)
	}
	logged := 0
	for f, off := range offs {
		for _, line := range labkit.LogSince(f, off) {
			if strings.Contains(line, "exec backend command failed") && strings.Contains(line, "HTTP 500") {
				logged++
			}
		}
	}
	if logged == 0 {
		t.Error("pghook logged no failed command while the API answered 500")
	}
	t.Logf("API failing %v: address back on %s after %v; holds by %s answered 500: %d, then %d succeeded; pghook logged %d failed commands",
		failFor, l, took.Round(time.Millisecond), l, failedHolds, okHolds, logged)
	settle(t, 30*time.Second)
}

// TestStaleNodeCannotTake: on a replica, `pghook vip up` (what a stale
// callback would do) is refused by the DCS guard before any command runs,
// and `pghook vip down` runs exec.release, which the API answers without
// touching the primary's assignment.
func TestStaleNodeCannotTake(t *testing.T) {
	l := settle(t, 120*time.Second)
	r := otherThan(l)
	apiOff := labkit.LogSize(env["LAB_CLOUD_LOG"])
	out, code := lab.PghookAs(t, r, "vip", "up", "--scope", env["LAB_SCOPE"])
	if code == 0 {
		t.Errorf("vip up on replica %s: exit 0, want the DCS guard's refusal:\n%s", r, out)
	}
	out, code = lab.PghookAs(t, r, "vip", "down", "--scope", env["LAB_SCOPE"])
	if code != 0 {
		t.Errorf("vip down on replica %s: exit %d:\n%s", r, code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if st, err := state(ctx); err != nil || st.Holder != l {
		t.Errorf("after the replica's up and down the API assigns the address to %q (%v), want %s", st.Holder, err, l)
	}
	unassigns := 0
	for _, line := range apiLog(t, apiOff) {
		if line.Node != r {
			continue
		}
		if line.Path == "/v1/assign" {
			t.Errorf("replica %s reached the API with an assign: %+v", r, line)
		}
		if line.Path == "/v1/unassign" {
			unassigns++
		}
	}
	if unassigns == 0 {
		t.Errorf("vip down on replica %s sent no unassign", r)
	}
}
