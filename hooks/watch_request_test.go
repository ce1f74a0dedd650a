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

// gatedProbe answers IsPrimary only once released.
type gatedProbe struct {
	entered chan struct{}
	release chan struct{}
	primary bool
}

func (g *gatedProbe) Primary(ctx context.Context) (patroni.PrimaryStatus, error) {
	g.entered <- struct{}{}
	<-g.release
	return patroni.PrimaryStatus{Leader: g.primary, State: "running"}, nil
}

// blockingVIP records operations; a Hold blocks until its context ends
// when block is set (a takeover waiting for the previous holder).
type blockingVIP struct {
	mu      sync.Mutex
	held    bool
	block   bool
	ops     []string
	started chan struct{}
}

func (b *blockingVIP) Name() string { return "blocking" }
func (b *blockingVIP) Hold(ctx context.Context) error {
	b.mu.Lock()
	b.ops = append(b.ops, "hold")
	block := b.block
	b.mu.Unlock()
	if block {
		b.started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	b.mu.Lock()
	b.held = true
	b.mu.Unlock()
	return nil
}
func (b *blockingVIP) Release(context.Context) error {
	b.note("release", &b.held, false)
	return nil
}

// note records op and its effect, state set to v.
func (b *blockingVIP) note(op string, state *bool, v bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ops = append(b.ops, op)
	*state = v
}
func (b *blockingVIP) Status(context.Context) (netvip.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return netvip.Status{Held: b.held}, nil
}
func (b *blockingVIP) record() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.ops, ",")
}

// checkRequest makes w's request (hold or release) and checks what vip
// went through and whether it is held afterwards.
func checkRequest(t *testing.T, w *Watcher, vip *blockingVIP, hold bool, wantOps string, wantHeld bool) {
	t.Helper()
	if err := w.Request(context.Background(), hold); err != nil {
		t.Fatal(err)
	}
	if got := vip.record(); got != wantOps {
		t.Errorf("ops %q, want %q", got, wantOps)
	}
	if st, _ := vip.Status(context.Background()); st.Held != wantHeld {
		t.Errorf("held %v after the request, want %v", st.Held, wantHeld)
	}
}

func TestWatcherRequest(t *testing.T) {
	tests := []struct {
		name    string
		held    bool
		hold    bool
		wantOps string
	}{
		// A request always acts: a hold re-announces an address already there.
		{"hold when absent", false, true, "hold"},
		{"hold when held", true, true, "hold"},
		{"release when held", true, false, "release"},
		{"release when absent", false, false, "release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vip := &blockingVIP{held: tt.held}
			w := &Watcher{VIP: vip, Patroni: &fakeProbe{primary: !tt.hold}, Me: "me", Log: zerolog.Nop()}
			checkRequest(t, w, vip, tt.hold, tt.wantOps, tt.hold)
		})
	}
}

// A step that began deciding before a callback's request must not undo it:
// Patroni's REST API still said "not primary" when the step asked, the
// callback (on_role_change master) came in while it waited for the answer.
func TestWatcherStepDoesNotUndoNewerRequest(t *testing.T) {
	probe := &gatedProbe{entered: make(chan struct{}), release: make(chan struct{}), primary: false}
	vip := &blockingVIP{}
	w := &Watcher{VIP: vip, Patroni: probe, Me: "me", Log: zerolog.Nop()}
	ctx := context.Background()
	stepDone := make(chan error, 1)
	go func() { stepDone <- w.Step(ctx) }()
	<-probe.entered // the step is deciding
	if err := w.Request(ctx, true); err != nil {
		t.Fatal(err)
	}
	probe.release <- struct{}{} // the step's (outdated) answer: not primary
	if err := <-stepDone; err != nil {
		t.Fatal(err)
	}
	if got := vip.record(); got != "hold" {
		t.Fatalf("ops %q: the outdated step acted", got)
	}
	// The next step decides afresh.
	go func() { stepDone <- w.Step(ctx) }()
	<-probe.entered
	probe.release <- struct{}{}
	<-stepDone
	if got := vip.record(); got != "hold,release" {
		t.Fatalf("ops %q: a fresh step must converge to Patroni's answer", got)
	}
}

// A newer request cancels the operation in progress: a release must not
// wait out a takeover that is still waiting for the previous holder.
func TestWatcherRequestPreempts(t *testing.T) {
	vip := &blockingVIP{block: true, started: make(chan struct{})}
	w := &Watcher{VIP: vip, Patroni: &fakeProbe{primary: true}, Me: "me", Log: zerolog.Nop()}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { first <- w.Request(ctx, true) }()
	<-vip.started
	start := time.Now()
	if err := w.Request(ctx, false); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("release waited %v behind the hold", took)
	}
	if err := <-first; !errors.Is(err, ErrSuperseded) {
		t.Errorf("the preempted hold returned %v, want ErrSuperseded", err)
	}
	if got := vip.record(); got != "hold,release" {
		t.Errorf("ops %q", got)
	}
}

// A callback's release (the old primary's on_stop during a switchover)
// does not override the hand-over hold; it does everywhere else.
func TestWatcherRequestReleaseDuringHandover(t *testing.T) {
	stopped := fakeProbe{state: "stopped", role: "demoted"}
	tests := []struct {
		name    string
		probe   fakeProbe
		dcs     LeaderView
		wantOps string
		held    bool
	}{
		{"switchover: key empty, postgresql stopped: deferred", stopped, &watchedLeader{&fakeLeader{name: ""}}, "", true},
		{"switchover: key still ours, stopping: deferred", fakeProbe{primary: true, state: "stopping", role: "master"}, &watchedLeader{&fakeLeader{name: "me"}}, "", true},
		{"key names the new leader: released", stopped, &watchedLeader{&fakeLeader{name: "n2"}}, "release", false},
		{"isolated (DCS unreadable): released", fakeProbe{primary: true, state: "stopping", role: "master"}, &watchedLeader{&fakeLeader{err: errDown}}, "release", false},
		{"running as a replica: released", fakeProbe{state: "running", role: "replica"}, &watchedLeader{&fakeLeader{name: ""}}, "release", false},
		{"patroni silent: released", fakeProbe{err: errDown}, &watchedLeader{&fakeLeader{name: "me"}}, "release", false},
		{"no watched DCS view: released", stopped, &fakeLeader{name: ""}, "release", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vip := &blockingVIP{held: true}
			w := &Watcher{VIP: vip, Patroni: &tt.probe, DCS: tt.dcs, Me: "me", Log: zerolog.Nop(), holding: ptr(true)}
			checkRequest(t, w, vip, false, tt.wantOps, tt.held)
		})
	}
}

// After a deferred release, the key's move (an etcd watch event) releases
// the VIP at once, without waiting for the periodic step.
func TestWatcherHandoverEndsOnKeyMove(t *testing.T) {
	probe := &fakeProbe{state: "stopped", role: "demoted"}
	dcs := &movingLeader{name: "", ready: make(chan struct{})}
	vip := &blockingVIP{held: true}
	w := &Watcher{VIP: vip, Patroni: probe, DCS: dcs, Me: "me", Interval: time.Hour, Log: zerolog.Nop(), holding: ptr(true)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-dcs.ready
	if err := w.Request(ctx, false); err != nil {
		t.Fatal(err)
	}
	if st, _ := vip.Status(ctx); !st.Held {
		t.Fatal("the release was not deferred")
	}
	start := time.Now()
	dcs.move("n2")
	for {
		if st, _ := vip.Status(ctx); !st.Held {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("still held 2s after the key moved (ops %s)", vip.record())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// refuserVIP is a blockingVIP that can refuse after releasing.
type refuserVIP struct {
	blockingVIP
	refusing bool
	canRef   bool
}

func (r *refuserVIP) Refuse(context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.canRef {
		return false, nil
	}
	r.ops = append(r.ops, "refuse")
	r.refusing = true
	return true, nil
}
func (r *refuserVIP) Unrefuse(context.Context) error {
	r.note("unrefuse", &r.refusing, false)
	return nil
}

// The release that ends a hand-over goes on refusing connections until
// PostgreSQL runs here again, the bound passes, or this node holds again;
// any other release does not refuse.
func TestWatcherRefusesAfterHandover(t *testing.T) {
	stopped := fakeProbe{state: "stopped", role: "demoted"}
	type step struct {
		probe  fakeProbe
		leader string
		wait   time.Duration
	}
	tests := []struct {
		name    string
		canRef  bool
		steps   []step
		wantOps string
	}{
		{"hand-over, key moves: refuse, release; postgresql runs as a replica: unrefuse", true,
			[]step{{stopped, "", 0}, {stopped, "n2", 0}, {fakeProbe{state: "starting", role: "replica"}, "n2", 0}, {fakeProbe{state: "running", role: "replica"}, "n2", 0}},
			"refuse,release,unrefuse"},
		{"refusal ends after its bound", true,
			[]step{{stopped, "me", 0}, {stopped, "n2", 0}, {stopped, "n2", 80 * time.Millisecond}},
			"refuse,release,unrefuse"},
		{"no refusal possible here (arp_ignore 0): plain release", false,
			[]step{{stopped, "", 0}, {stopped, "n2", 0}},
			"release"},
		{"key moves away from a running primary (no hand-over): plain release", true,
			[]step{{fakeProbe{primary: true}, "me", 0}, {fakeProbe{primary: true}, "n2", 0}},
			"release"},
		{"demoted to a running replica: plain release", true,
			[]step{{fakeProbe{state: "running", role: "replica"}, "n2", 0}},
			"release"},
		// Patroni's silence says nothing about PostgreSQL, which may run
		// on as an unmanaged primary (kill -9 of Patroni alone): a local
		// route would hand it the writes of clients still sent here.
		{"patroni killed, key expired: plain release", true,
			[]step{{fakeProbe{err: errDown}, "me", 0}, {fakeProbe{err: errDown}, "", 0}},
			"release"},
		{"refusing, then patroni falls silent: refusal ends", true,
			[]step{{stopped, "", 0}, {stopped, "n2", 0}, {fakeProbe{err: errDown}, "n2", 0}},
			"refuse,release,unrefuse"},
		{"isolated, postgresql stopping: refuse, release", true,
			[]step{{fakeProbe{primary: true, state: "stopping", role: "master"}, "", 0}},
			"refuse,release"},
		{"node takes the VIP again: refusal ends", true,
			[]step{{stopped, "", 0}, {stopped, "n2", 0}, {fakeProbe{primary: true}, "me", 0}},
			"refuse,release,hold,unrefuse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vip := &refuserVIP{blockingVIP: blockingVIP{held: true}, canRef: tt.canRef}
			probe := &lockedProbe{}
			dcs := &watchedLeader{&fakeLeader{}}
			w := &Watcher{VIP: vip, Patroni: probe, DCS: dcs, Me: "me", RefuseFor: 50 * time.Millisecond, Log: zerolog.Nop(), holding: ptr(true)}
			for _, s := range tt.steps {
				time.Sleep(s.wait)
				probe.set(s.probe)
				dcs.name, dcs.err = s.leader, nil
				if strings.HasPrefix(tt.name, "isolated") {
					dcs.err = errDown
				}
				if err := w.Step(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := vip.record(); got != tt.wantOps {
				t.Errorf("ops %q, want %q", got, tt.wantOps)
			}
		})
	}
}

// A callback's release that comes after the key moved, before the
// watcher's own step, ends the hand-over the same way.
func TestWatcherRequestAfterKeyMoveRefuses(t *testing.T) {
	vip := &refuserVIP{blockingVIP: blockingVIP{held: true}, canRef: true}
	probe := &fakeProbe{state: "stopped", role: "demoted"}
	dcs := &watchedLeader{&fakeLeader{name: ""}}
	w := &Watcher{VIP: vip, Patroni: probe, DCS: dcs, Me: "me", Log: zerolog.Nop(), holding: ptr(true)}
	if err := w.Step(context.Background()); err != nil { // hand-over hold
		t.Fatal(err)
	}
	dcs.name = "n2"
	if err := w.Request(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if got := vip.record(); got != "refuse,release" {
		t.Errorf("ops %q, want refuse,release", got)
	}
}

// slowTakeVIP is a VIP whose Hold takes until proceed is closed (a run of
// the VIP helper); its first Hold fails with failFirst when set.
type slowTakeVIP struct {
	blockingVIP
	proceed   chan struct{}
	failFirst error
}

func (s *slowTakeVIP) Hold(ctx context.Context) error {
	s.mu.Lock()
	s.ops = append(s.ops, "hold")
	fail := s.failFirst
	s.failFirst = nil
	s.mu.Unlock()
	s.started <- struct{}{}
	select {
	case <-s.proceed:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if fail != nil {
		return fail
	}
	s.mu.Lock()
	s.held = true
	s.mu.Unlock()
	return nil
}

// A hold request (on_role_change) that comes while the watcher's own take
// runs joins it instead of cancelling it and starting over; if that take
// fails, the request runs its own.
func TestWatcherHoldRequestJoinsTakeInProgress(t *testing.T) {
	tests := []struct {
		name     string
		failWith error
		wantOps  string
	}{
		{"take succeeds: one hold", nil, "hold"},
		{"take fails: the request holds again", errors.New("helper failed"), "hold,hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vip := &slowTakeVIP{blockingVIP: blockingVIP{started: make(chan struct{}, 2)}, proceed: make(chan struct{}), failFirst: tt.failWith}
			w := &Watcher{VIP: vip, Patroni: &fakeProbe{primary: true}, Me: "me", Log: zerolog.Nop()}
			ctx := context.Background()
			stepDone := make(chan error, 1)
			go func() { stepDone <- w.Step(ctx) }()
			<-vip.started // the watcher's take is running
			reqDone := make(chan error, 1)
			go func() { reqDone <- w.Request(ctx, true) }()
			for i := 0; i < 1000; i++ { // the request waits: it has joined or is queued
				w.mu.Lock()
				g := w.gen
				w.mu.Unlock()
				if g > 0 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			close(vip.proceed) // the take ends
			if err := <-stepDone; (err != nil) != (tt.failWith != nil) {
				t.Fatalf("step: %v", err)
			}
			if err := <-reqDone; err != nil {
				t.Fatalf("request: %v", err)
			}
			if got := vip.record(); got != tt.wantOps {
				t.Errorf("ops %q, want %q", got, tt.wantOps)
			}
			if st, _ := vip.Status(ctx); !st.Held {
				t.Error("not held after the request")
			}
		})
	}
}

// lockedProbe is a fakeProbe that a test may change between steps while a
// step's question to Patroni, which the leader key made moot, is still
// being answered in the background.
type lockedProbe struct {
	mu sync.Mutex
	p  fakeProbe
}

func (l *lockedProbe) set(p fakeProbe) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.p = p
}

func (l *lockedProbe) Primary(ctx context.Context) (patroni.PrimaryStatus, error) {
	l.mu.Lock()
	p := l.p
	l.mu.Unlock()
	return p.Primary(ctx)
}
