package hooks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// fakeProbe answers GET /primary: 200 when primary, with state and role in
// the body ("" state: PostgreSQL running).
type fakeProbe struct {
	primary bool
	err     error
	state   string
	role    string
	delay   time.Duration // answers this late (a Patroni busy promoting)
}

func (f *fakeProbe) Primary(ctx context.Context) (patroni.PrimaryStatus, error) {
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return patroni.PrimaryStatus{}, ctx.Err()
		}
	}
	if f.err != nil {
		return patroni.PrimaryStatus{}, f.err
	}
	return patroni.PrimaryStatus{Leader: f.primary, State: f.state, Role: f.role}, nil
}

type fakeLeader struct {
	name  string
	err   error
	delay time.Duration // answers this late
}

func (f *fakeLeader) Leader(ctx context.Context) (string, error) {
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return f.name, f.err
}
func (f *fakeLeader) Source() string { return "fake" }

// stateVIP is a VIP backend holding real state, recording operations.
type stateVIP struct {
	held bool
	ops  []string
}

func (s *stateVIP) Name() string { return "state" }
func (s *stateVIP) Hold(context.Context) error {
	s.ops = append(s.ops, "hold")
	s.held = true
	return nil
}
func (s *stateVIP) Release(context.Context) error {
	s.ops = append(s.ops, "release")
	s.held = false
	return nil
}
func (s *stateVIP) Status(context.Context) (netvip.Status, error) {
	return netvip.Status{Held: s.held}, nil
}

var errDown = errors.New("connection refused")

func TestWatcherDecides(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		probe    fakeProbe
		dcs      *fakeLeader
		watched  bool          // the DCS view is an etcd watch (reads the DCS itself)
		answered time.Duration // how long ago Patroni last answered; <0 never
		holding  *bool
		handover time.Duration // a hand-over hold began this long ago; 0 none
		want     bool
	}{
		{"primary holds", fakeProbe{primary: true}, nil, false, -1, nil, 0, true},
		{"replica releases", fakeProbe{}, &fakeLeader{name: "n1"}, false, -1, nil, 0, false},
		{"primary keeps VIP while etcd is down", fakeProbe{primary: true}, &fakeLeader{err: errDown}, false, -1, nil, 0, true},
		{"patroni silent, lock ours", fakeProbe{err: errDown}, &fakeLeader{name: "me"}, false, time.Second, nil, 0, true},
		{"patroni killed, lock moved", fakeProbe{err: errDown}, &fakeLeader{name: "n2"}, false, time.Second, nil, 0, false},
		{"patroni killed, lock expired", fakeProbe{err: errDown}, &fakeLeader{name: ""}, false, time.Second, nil, 0, false},
		{"both silent within grace keeps holding", fakeProbe{err: errDown}, &fakeLeader{err: errDown}, false, time.Second, ptr(true), 0, true},
		{"both silent past grace releases", fakeProbe{err: errDown}, &fakeLeader{err: errDown}, false, 10 * time.Second, ptr(true), 0, false},
		{"both silent, never answered", fakeProbe{err: errDown}, &fakeLeader{err: errDown}, false, -1, nil, 0, false},
		{"primary, lock empty (released in a switchover) holds", fakeProbe{primary: true}, &fakeLeader{name: ""}, false, -1, nil, 0, true},
		{"patroni still says primary but the lock names another", fakeProbe{primary: true}, &fakeLeader{name: "n2"}, false, -1, ptr(true), 0, false},
		{"promoting: lock ours, patroni not primary yet", fakeProbe{}, &fakeLeader{name: "me"}, false, -1, nil, 0, false},
		// The hand-over hold (switchover: PostgreSQL stopped, key ours or empty).
		{"hand-over: stopping, lock ours", fakeProbe{primary: true, state: "stopping", role: "master"}, &fakeLeader{name: "me"}, true, -1, ptr(true), 0, true},
		{"hand-over: stopped and demoted, key released", fakeProbe{state: "stopped", role: "demoted"}, &fakeLeader{name: ""}, true, -1, ptr(true), 0, true},
		{"hand-over within its bound", fakeProbe{state: "stopped", role: "demoted"}, &fakeLeader{name: ""}, true, -1, ptr(true), 9 * time.Second, true},
		{"hand-over past its bound releases", fakeProbe{state: "stopped", role: "demoted"}, &fakeLeader{name: ""}, true, -1, ptr(true), 11 * time.Second, false},
		{"hand-over ends when the key names the new leader", fakeProbe{state: "stopped", role: "demoted"}, &fakeLeader{name: "n2"}, true, -1, ptr(true), time.Second, false},
		{"hand-over ends when postgresql restarts as a replica", fakeProbe{state: "starting", role: "replica"}, &fakeLeader{name: ""}, true, -1, ptr(true), time.Second, false},
		{"hand-over ends when postgresql runs as a replica", fakeProbe{state: "running", role: "replica"}, &fakeLeader{name: ""}, true, -1, ptr(true), time.Second, false},
		{"no hand-over on a node not holding the VIP", fakeProbe{state: "stopped", role: "demoted"}, &fakeLeader{name: ""}, true, -1, ptr(false), 0, false},
		{"no hand-over before the first operation", fakeProbe{state: "stopped", role: "master"}, &fakeLeader{name: "me"}, true, -1, nil, 0, false},
		{"isolated (DCS unreadable): early release while stopping", fakeProbe{primary: true, state: "stopping", role: "master"}, &fakeLeader{err: errDown}, true, -1, ptr(true), 0, false},
		{"no watched DCS view (Patroni's /cluster): early release", fakeProbe{primary: true, state: "stopping", role: "master"}, &fakeLeader{name: "me"}, false, -1, ptr(true), 0, false},
		{"no DCS view at all: early release", fakeProbe{primary: true, state: "stopping", role: "master"}, nil, false, -1, ptr(true), 0, false},
		// The new leader: the key names this node before Patroni says primary.
		{"promoting: key ours (watched), postgresql a running replica", fakeProbe{state: "running", role: "replica"}, &fakeLeader{name: "me"}, true, -1, nil, 0, true},
		{"promoting: key ours (watched), patroni answers late", fakeProbe{state: "running", role: "replica", delay: 400 * time.Millisecond}, &fakeLeader{name: "me"}, true, -1, nil, 0, true},
		{"standby leader answering late is waited for", fakeProbe{state: "running", role: "standby_leader", delay: 300 * time.Millisecond}, &fakeLeader{name: "me"}, true, -1, nil, 0, false},
		{"standby cluster leader: key ours, role standby_leader", fakeProbe{state: "running", role: "standby_leader"}, &fakeLeader{name: "me"}, true, -1, nil, 0, false},
		{"replica, key another's, patroni answers late: waits for it and releases", fakeProbe{state: "running", role: "replica", delay: 100 * time.Millisecond}, &fakeLeader{name: "n2"}, true, -1, ptr(true), 0, false},
		// Patroni's answer already in when the key is read is used (the
		// key answers 20 ms later, so that the answer is in).
		{"key ours but postgresql stopped, not holding", fakeProbe{state: "stopped", role: "replica"}, &fakeLeader{name: "me", delay: 20 * time.Millisecond}, true, -1, ptr(false), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Watcher{Patroni: &tt.probe, Me: "me", Grace: 3 * time.Second, HandoverMax: 10 * time.Second, Log: zerolog.Nop(), holding: tt.holding,
				PromoteAnswer: 200 * time.Millisecond, lastRole: tt.probe.role} // Patroni's previous answer: the same role
			if tt.dcs != nil {
				w.DCS = tt.dcs
				if tt.watched {
					w.DCS = &watchedLeader{tt.dcs}
				}
			}
			if tt.answered >= 0 {
				w.lastAnswer = t0.Add(-tt.answered)
			}
			if tt.handover > 0 {
				w.handoverSince = t0.Add(-tt.handover)
			}
			got, reason := w.Desired(context.Background(), t0)
			if got != tt.want {
				t.Fatalf("hold = %v (%s), want %v", got, reason, tt.want)
			}
		})
	}
}

// At both ends of a switchover's hand-over the key decides without waiting
// for Patroni, whose REST API answers late then; elsewhere its answer is
// waited for (a standby cluster's new leader, a primary whose key moved).
func TestWatcherHandOverEndsWaitFor(t *testing.T) {
	const late = 400 * time.Millisecond
	tests := []struct {
		name        string
		probe       fakeProbe
		leader      string
		lastRole    string
		standby     bool
		holding     *bool
		handover    bool // in the hand-over hold since the last step
		wantHold    bool
		wantRefuse  bool
		wantWaited  bool // the decision came after Patroni's answer
		wantInCause string
	}{
		{name: "new leader: key ours, patroni busy promoting", probe: fakeProbe{state: "running", role: "replica", delay: late},
			leader: "me", lastRole: "replica", wantHold: true, wantInCause: "leader key is this node: patroni is promoting"},
		{name: "standby cluster's new leader: waits, then releases for standby_leader", probe: fakeProbe{state: "running", role: "standby_leader", delay: 100 * time.Millisecond},
			leader: "me", lastRole: "replica", standby: true, wantWaited: true},
		{name: "old holder in its hand-over: key names the new leader", probe: fakeProbe{state: "stopped", role: "demoted", delay: late},
			leader: "n2", lastRole: "demoted", holding: ptr(true), handover: true, wantRefuse: true, wantInCause: "hand-over done"},
		{name: "primary whose key moved, no hand-over: waits, no refusal while postgresql runs", probe: fakeProbe{primary: true, state: "running", role: "master", delay: 100 * time.Millisecond},
			leader: "n2", lastRole: "master", holding: ptr(true), wantWaited: true, wantInCause: "although patroni still says primary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Watcher{Patroni: &tt.probe, DCS: &watchedLeader{&fakeLeader{name: tt.leader}}, Me: "me", Standby: tt.standby,
				PromoteAnswer: 200 * time.Millisecond, HandoverMax: 10 * time.Second, Log: zerolog.Nop(), holding: tt.holding, lastRole: tt.lastRole}
			now := time.Now()
			if tt.handover {
				w.handoverSince = now.Add(-time.Second)
			}
			d := w.decide(context.Background(), now)
			took := time.Since(now)
			if d.hold != tt.wantHold || d.refuse != tt.wantRefuse || !strings.Contains(d.reason, tt.wantInCause) {
				t.Fatalf("hold %v refuse %v (%s); want hold %v refuse %v, reason with %q", d.hold, d.refuse, d.reason, tt.wantHold, tt.wantRefuse, tt.wantInCause)
			}
			if waited := took >= tt.probe.delay; waited != tt.wantWaited {
				t.Fatalf("decided after %v with Patroni answering after %v: waited %v, want %v", took, tt.probe.delay, waited, tt.wantWaited)
			}
			if !tt.wantWaited && took > 100*time.Millisecond {
				t.Fatalf("decided after %v, want at the DCS's answer", took)
			}
		})
	}
}

// watchedLeader is a fakeLeader that is also an etcd watch (never fires).
type watchedLeader struct{ *fakeLeader }

func (w *watchedLeader) WatchLeader(ctx context.Context, changed func()) error {
	changed()
	<-ctx.Done()
	return nil
}

// The hand-over bound runs from the first step that kept the VIP with
// PostgreSQL stopped, and restarts once PostgreSQL runs again.
func TestWatcherHandoverBound(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	probe := &fakeProbe{primary: true, state: "restarting", role: "master"}
	w := &Watcher{Patroni: probe, DCS: &watchedLeader{&fakeLeader{name: "me"}}, Me: "me",
		HandoverMax: 10 * time.Second, Log: zerolog.Nop(), holding: ptr(true)}
	ctx := context.Background()
	for _, st := range []struct {
		at    time.Duration
		state string
		want  bool
	}{
		{0, "restarting", true},
		{9 * time.Second, "restarting", true},
		{11 * time.Second, "restarting", false}, // past the bound
		{12 * time.Second, "running", true},     // running again: a new bound
		{13 * time.Second, "stopping", true},
		{22 * time.Second, "stopping", true},
		{24 * time.Second, "stopping", false},
	} {
		probe.state = st.state
		if got, reason := w.Desired(ctx, t0.Add(st.at)); got != st.want {
			t.Fatalf("at %v (%s): hold = %v (%s), want %v", st.at, st.state, got, reason, st.want)
		}
	}
}

func ptr(b bool) *bool { return &b }

// movingLeader is a LeaderView whose key the test moves; it notifies its
// watchers like an etcd watch.
type movingLeader struct {
	mu      sync.Mutex
	name    string
	changed func()
	ready   chan struct{}
}

func (m *movingLeader) Leader(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.name, nil
}
func (m *movingLeader) Source() string { return "moving" }
func (m *movingLeader) WatchLeader(ctx context.Context, changed func()) error {
	m.mu.Lock()
	m.changed = changed
	m.mu.Unlock()
	close(m.ready)
	changed()
	<-ctx.Done()
	return nil
}
func (m *movingLeader) move(to string) {
	m.mu.Lock()
	m.name = to
	f := m.changed
	m.mu.Unlock()
	f()
}

// syncVIP is stateVIP for use from another goroutine.
type syncVIP struct {
	mu   sync.Mutex
	held bool
}

func (s *syncVIP) Name() string { return "sync" }
func (s *syncVIP) Hold(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = true
	return nil
}
func (s *syncVIP) Release(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = false
	return nil
}
func (s *syncVIP) Status(context.Context) (netvip.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return netvip.Status{Held: s.held}, nil
}

// A change of the leader key is acted on at once, not at the next poll:
// Patroni was killed (no answer) and its lock expired.
func TestWatcherActsOnLeaderChange(t *testing.T) {
	dcs := &movingLeader{name: "me", ready: make(chan struct{})}
	vip := &syncVIP{}
	w := &Watcher{VIP: vip, Patroni: &fakeProbe{err: errDown}, DCS: dcs, Me: "me", Interval: time.Hour, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-dcs.ready
	waitHeld := func(want bool) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < 2*time.Second {
			if st, _ := vip.Status(ctx); st.Held == want {
				return time.Since(start)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("held never became %v", want)
		return 0
	}
	waitHeld(true)
	dcs.move("")
	if took := waitHeld(false); took > 500*time.Millisecond {
		t.Errorf("released %v after the lock expired; want well before the next poll", took)
	}
	dcs.move("me")
	waitHeld(true)
	dcs.move("n2")
	waitHeld(false)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWatcherStepConverges(t *testing.T) {
	probe := &fakeProbe{primary: true}
	vip := &stateVIP{}
	w := &Watcher{VIP: vip, Patroni: probe, Me: "me", Log: zerolog.Nop()}
	ctx := context.Background()
	w.Step(ctx)
	w.Step(ctx) // already held: no second hold
	vip.held = false
	w.Step(ctx) // someone removed it: re-added
	probe.primary = false
	w.Step(ctx)
	w.Step(ctx)
	if got := strings.Join(vip.ops, ","); got != "hold,hold,release" {
		t.Fatalf("ops %s", got)
	}
}

func TestGuardedVIP(t *testing.T) {
	tests := []struct {
		name    string
		view    LeaderView
		wantErr bool
		held    bool
	}{
		{"leader is me", &fakeLeader{name: "me"}, false, true},
		{"no leader yet", &fakeLeader{name: ""}, false, true},
		{"dcs unreachable does not block", &fakeLeader{err: errDown}, false, true},
		{"another leader refuses", &fakeLeader{name: "n2"}, true, false},
		{"no view", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vip := &stateVIP{}
			g := GuardedVIP{Backend: vip, Me: "me", View: tt.view, Log: zerolog.Nop()}
			err := g.Hold(context.Background())
			if (err != nil) != tt.wantErr || vip.held != tt.held {
				t.Fatalf("err %v held %v", err, vip.held)
			}
			if tt.wantErr && !errors.Is(err, ErrOtherLeader) {
				t.Fatalf("err %v not ErrOtherLeader", err)
			}
			if err := g.Release(context.Background()); err != nil || vip.held {
				t.Fatal("release guarded")
			}
		})
	}
}

// switchingProbe says primary from `after` past `from` on, as a Patroni that
// has just taken the lock.
type switchingProbe struct {
	mu    sync.Mutex
	calls int
	from  time.Time
	after time.Duration
}

func (p *switchingProbe) Primary(context.Context) (patroni.PrimaryStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return patroni.PrimaryStatus{Leader: time.Since(p.from) >= p.after, State: "running"}, nil
}

// When the key names this node before Patroni calls it primary, the watcher
// asks again within tens of milliseconds, not one interval later.
func TestWatcherPollsWhilePromoting(t *testing.T) {
	dcs := &movingLeader{name: "n1", ready: make(chan struct{})}
	probe := &switchingProbe{from: time.Now().Add(time.Hour)}
	vip := &blockingVIP{}
	w := &Watcher{VIP: vip, Patroni: probe, DCS: dcs, Me: "me", Interval: time.Hour, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-dcs.ready
	probe.mu.Lock()
	probe.from, probe.after = time.Now(), 150*time.Millisecond
	probe.mu.Unlock()
	start := time.Now()
	dcs.move("me")
	for {
		st, _ := vip.Status(ctx)
		if st.Held {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("not held 2s after Patroni said primary (the watcher waited for its interval)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("held %v after the key moved, want about 150ms", took)
	}
	cancel()
	<-done
}

// A key event while a step waits for a slow Patroni outdates that step:
// it returns at once and converges nothing (Run steps again).
func TestWatcherStepOutdatedByKeyEvent(t *testing.T) {
	vip := &blockingVIP{held: true}
	w := &Watcher{VIP: vip, Patroni: &fakeProbe{state: "running", role: "replica", delay: 2 * time.Second},
		DCS: &watchedLeader{&fakeLeader{name: "n2"}}, Me: "me", Interval: 5 * time.Second, Log: zerolog.Nop(), holding: ptr(true)}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- w.Step(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	w.bumpKey()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the step waited %v for Patroni after the key changed", took)
	}
	if got := vip.record(); got != "" {
		t.Errorf("an outdated step acted: %q", got)
	}
}

// Desired decides whether to hold the VIP now; reason is for the log.
func (w *Watcher) Desired(ctx context.Context, now time.Time) (hold bool, reason string) {
	d := w.decide(ctx, now)
	return d.hold, d.reason
}

// promptVIP is a stateVIP that can also release promptly
// (netvip.PromptReleaser, as a DNS-named VIP).
type promptVIP struct{ stateVIP }

func (p *promptVIP) AddressHeld(context.Context) (bool, error) { return p.held, nil }
func (p *promptVIP) Status(context.Context) (netvip.Status, error) {
	p.ops = append(p.ops, "status")
	return netvip.Status{Held: p.held}, nil
}
func (p *promptVIP) ReleasePromptly(context.Context) error {
	p.ops = append(p.ops, "release promptly")
	p.held = false
	return nil
}

// A release decided while the DCS cannot be read (an isolated primary
// whose Patroni demoted, or a callback's request after such a step) lets
// the address go before anything that needs the network; a release the
// DCS decided, or without a DCS view, keeps the backend's order.
func TestWatcherReleasesPromptlyWhenCutOff(t *testing.T) {
	tests := []struct {
		name    string
		dcs     LeaderView
		request bool
		want    string
	}{
		// No status read first: a held record's would ask the DNS server.
		{"DCS unreadable, patroni demoted", &fakeLeader{err: errDown}, false, "release promptly"},
		{"DCS unreadable, callback's release", &fakeLeader{err: errDown}, true, "release promptly"},
		{"key names another member", &fakeLeader{name: "other"}, false, "status,release"},
		{"key empty, callback's release", &fakeLeader{}, true, "release"},
		{"no DCS view", nil, false, "status,release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := &fakeProbe{primary: true, state: "running", role: "primary"}
			vip := &promptVIP{}
			w := &Watcher{VIP: vip, Patroni: probe, Me: "me", Log: zerolog.Nop()}
			ctx := context.Background()
			if err := w.Step(ctx); err != nil { // primary, DCS readable or not yet configured
				t.Fatal(err)
			}
			if !vip.held {
				t.Fatal("not held after the first step")
			}
			vip.ops = nil
			if tt.dcs != nil {
				w.DCS = tt.dcs
			}
			probe.primary, probe.role = false, "replica"
			if tt.request {
				w.Step(ctx) // records whether the DCS answered
				vip.held, vip.ops = true, nil
				if err := w.Request(ctx, false); err != nil {
					t.Fatal(err)
				}
			} else if err := w.Step(ctx); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(vip.ops, ","); got != tt.want {
				t.Fatalf("ops %s, want %s", got, tt.want)
			}
		})
	}
}
