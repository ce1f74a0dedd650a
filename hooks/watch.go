package hooks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pghook/pghook/internal/ctxtime"
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// PrimaryProbe asks the local Patroni about this member (REST GET
// /primary: whether it holds the leader lock, PostgreSQL's state and role).
// An error means Patroni did not answer.
type PrimaryProbe interface {
	Primary(ctx context.Context) (patroni.PrimaryStatus, error)
}

// LeaderChanges is a LeaderView that can also wait for the leader key to
// change (an etcd watch). WatchLeader calls changed once established and
// after every change, until ctx ends (nil) or the watch breaks (error).
// Such a view reads the DCS itself, not Patroni's cached copy.
type LeaderChanges interface {
	WatchLeader(ctx context.Context, changed func()) error
}

// Watcher is the level-triggered safety net behind the callbacks (`pghook
// vip watch`): callbacks do not run when Patroni is killed, an isolated
// primary's on_stop comes late, and once a promotion ran no on_role_change
// at all (seen in the lab). Every Interval, and at once
// whenever the leader key changes (when DCS is a LeaderChanges), it decides
// whether this node should hold the VIP and makes it so. Patroni and the
// DCS are asked at the same time:
//
//	DCS leader key          local Patroni (GET /primary)          VIP
//	names another member    (any)                                 release (the lock is someone else's)
//	this node / none / ?    200, PostgreSQL running               hold
//	this node / none        PostgreSQL not running, role master   hand-over: keep holding (the kernel
//	  (read from the DCS      or demoted, VIP held here           refuses connections at once) until the
//	  itself, watched)                                            key moves or HandoverMax has passed
//	this node / none / ?    503 or not running (otherwise)        release (an isolated primary's
//	                                                              shutdown waits for its replicas)
//	this node               no answer                             hold (Patroni busy; lock still ours)
//	none                    no answer                             release
//	unreachable             no answer                             hold until Grace has passed
//	                                                              since Patroni last answered, then release
//
// A healthy primary never loses the VIP because etcd is briefly
// unreachable (vip-manager #411/#431), a node whose Patroni is gone gives
// it up as soon as the lock expires or moves, and a primary that Patroni
// has not demoted yet gives it up when the DCS names another leader — the
// VIP follows the leader key even when Patroni itself is split.
//
// The hand-over row serves a switchover: Patroni stops the old primary's
// PostgreSQL, releases the leader key, and the new primary takes the key
// and promotes ~1 s later. Were the VIP released when PostgreSQL began to
// stop, a client's SYN in that second would go to a MAC that no longer
// owns the address and be dropped: the client hangs until its
// connect_timeout or the kernel's SYN retransmit. Kept, the address
// answers with a refusal, and the client retries at once. The DCS tells a
// switchover (the key is this node's or empty, and readable) from an
// isolation (the DCS cannot be read: the early release stands).
type Watcher struct {
	VIP      netvip.Backend
	Patroni  PrimaryProbe
	DCS      LeaderView // may be nil
	Me       string
	Interval time.Duration // 0 means 300ms
	Grace    time.Duration // 0 means 3s
	// HandoverMax bounds the hand-over hold: how long after PostgreSQL
	// stopped here the VIP is kept while the key stays this node's or
	// empty. 0 means 30s (Patroni's default ttl; set it to the DCS ttl).
	HandoverMax time.Duration
	// RefuseFor bounds the refusal after a hand-over (Refuser): the new
	// holder announces at once and every second, so clients have moved
	// well within it; it also ends once PostgreSQL runs here again.
	// 0 means 3s.
	RefuseFor time.Duration
	// Standby: the cluster is a standby cluster (the DCS config's
	// standby_cluster, read when the watcher starts): its key names a
	// standby_leader, never a primary, so a step whose key names this node
	// waits PromoteAnswer for Patroni to say which before the key decides.
	Standby bool
	// PromoteAnswer is how long a step waits for Patroni once the watched
	// key names this node and Patroni last called it a replica, in a
	// standby cluster (where only Patroni's answer tells a standby_leader
	// from a promotion); past it Patroni counts as silent and the key
	// decides. Elsewhere the step does not wait: Patroni took the lock to
	// promote, and its REST API answers late meanwhile (~30–100 ms). 0
	// means 30ms.
	PromoteAnswer time.Duration
	Log           zerolog.Logger
	// Metrics receives what the watcher sees and does (nil: off).
	Metrics *metrics.VIP

	lastAnswer time.Time
	holding    *bool
	// handoverSince is when the current hand-over hold began (zero: none).
	handoverSince time.Time
	// lastRole is Patroni's role in its last answer.
	lastRole string
	// keyBump is closed (and replaced) at every leader key event.
	keyBump chan struct{}
	// refuseSince: when the refusal after a hand-over began (zero: none).
	refuseSince time.Time
	// promoting: the last decision saw the key name this node while
	// Patroni answered but did not call it primary (yet).
	promoting bool
	// cutOff: the last decision's (decision.cutOff), for a request that
	// decides nothing itself.
	cutOff bool

	// Requests (callbacks through the control socket) and steps converge
	// one at a time (opMu). A request cancels the operation in progress
	// and outdates every decision made before it (gen): a step whose
	// Desired began before a request does not undo it.
	opMu     sync.Mutex
	mu       sync.Mutex
	gen      uint64
	cancelOp context.CancelCauseFunc
	// takeInFlight is the Hold in progress (nil: none), which a hold
	// request joins instead of cancelling it.
	takeInFlight *take
}

// take is one Hold in progress: done is closed when it ended, with err.
type take struct {
	done chan struct{}
	err  error
}

// ErrSuperseded is returned to a request that a newer one replaced before
// it ran: the newer request's outcome stands.
var ErrSuperseded = errors.New("superseded by a newer request")

// errNotWaited: Patroni had not answered when the leader key decided (a
// promotion, whose REST API answers late); not counted as Patroni's error.
var errNotWaited = fmt.Errorf("%w: not waited for", patroni.ErrNoAnswer)

type leaderAnswer struct {
	leader string
	err    error
}

// decision is one verdict of the watcher: hold or not, why, and whether it
// is the hand-over hold (which a callback's release does not override).
type decision struct {
	hold   bool
	reason string
	// cause is what decided, for metrics: Patroni's REST API, the leader
	// key, or the grace period.
	cause    metrics.Cause
	handover bool
	// refuse: the release leaves a node whose PostgreSQL Patroni reports
	// stopped (the end of a hand-over, an isolated node), so the address goes on
	// refusing connections (Refuser) while clients move to the new holder.
	refuse bool
	// pgDown: Patroni answered that PostgreSQL does not run here. A
	// silent Patroni says nothing: PostgreSQL may run on without it.
	pgDown bool
	// stale: the leader key changed while deciding; converge nothing.
	stale bool
	// cutOff: the DCS view could not be read, so this node may be cut
	// off: a release must not wait on the network (netvip.PromptReleaser).
	cutOff bool
}

// Refuser is a VIP backend that, after releasing the VIP, can go on
// refusing connections to it without answering ARP for it (netvip.Netlink:
// a local route, with arp_ignore >= 1). ok false: not possible here.
type Refuser interface {
	Refuse(ctx context.Context) (ok bool, err error)
	Unrefuse(ctx context.Context) error
}

func (w *Watcher) refuseFor() time.Duration {
	if w.RefuseFor <= 0 {
		return 3 * time.Second
	}
	return w.RefuseFor
}

func (w *Watcher) decide(ctx context.Context, now time.Time) decision {
	timeout := w.interval()
	if timeout < 500*time.Millisecond {
		timeout = 500 * time.Millisecond
	}
	bump := w.keyBumpCh()
	var dcs chan leaderAnswer
	if w.DCS != nil {
		dcs = make(chan leaderAnswer, 1)
		go func() {
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			l, err := w.DCS.Leader(dctx)
			dcs <- leaderAnswer{l, err}
		}()
	}
	type patroniAnswer struct {
		st  patroni.PrimaryStatus
		err error
	}
	pch := make(chan patroniAnswer, 1)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		st, err := w.Patroni.Primary(pctx)
		pch <- patroniAnswer{st, err}
	}()
	var pa patroniAnswer
	known, leader, answered := false, "", false
	if dcs != nil {
		select {
		case pa = <-pch:
			answered = true
		case a := <-dcs:
			known, leader = a.err == nil, a.leader
			dcs = nil
		}
	}
	if dcs != nil {
		a := <-dcs
		known, leader = a.err == nil, a.leader
	}
	if w.DCS != nil && !known {
		w.Metrics.DCSError()
	}
	// The two ends of a switchover's hand-over are decided by the key
	// alone, without waiting for Patroni: both watchers see the key's write
	// at the same moment, and the address is on no host from the old
	// holder's release to the new holder's add.
	handedOver := !answered && known && leader != "" && leader != w.Me && w.direct() && w.inHandover()
	// The key names this node, which Patroni last called a replica: a
	// promotion under way.
	keyPromotes := known && leader == w.Me && w.direct() && w.lastRoleIs("replica")
	switch {
	case answered:
	case handedOver:
		// The old holder in its hand-over hold (PostgreSQL stopped at the
		// last step): the key naming the new leader releases whatever
		// Patroni says, and the release refuses, as PostgreSQL is down.
		pa.err = fmt.Errorf("%w: the leader key names %s at the hand-over's end", errNotWaited, leader)
	case keyPromotes && !w.Standby:
		// The key names this node (a watched DCS): Patroni has just taken
		// the lock and is busy promoting — its REST API answers late
		// (~30–100 ms measured). Waiting for it would leave the address on
		// no host; a silent Patroni whose key is ours holds. An answer
		// already in is used.
		select {
		case pa = <-pch:
		default:
			pa.err = fmt.Errorf("%w while the leader key names this node", errNotWaited)
		}
	default:
		// A standby cluster waits promoteAnswer, for its standby_leader to
		// say so; anything else waits for Patroni's answer.
		wait, late := timeout, patroni.ErrNoAnswer
		if keyPromotes {
			wait, late = w.promoteAnswer(), errNotWaited
		}
		select {
		case pa = <-pch:
		case <-time.After(wait):
			pa.err = fmt.Errorf("%w: no answer within %s", late, wait)
		case <-bump:
			// The key changed after it was read: this decision is outdated
			// (a new leader must not wait out a slow Patroni answer to a
			// question asked before it took the lock). Run steps again.
			return decision{stale: true, cutOff: w.DCS != nil && !known, cause: metrics.CauseDCS, reason: "leader key changed while deciding"}
		}
	}
	st, perr := pa.st, pa.err
	if perr != nil && !errors.Is(perr, errNotWaited) {
		w.Metrics.PatroniError()
	}
	d := w.rule(now, st, perr, known, leader)
	d.pgDown = handedOver || perr == nil && !st.Running()
	// Letting go while Patroni says PostgreSQL does not run here (a
	// hand-over's end, an isolated node): go on refusing, so clients still
	// sent here are reset, not left waiting. Never on Patroni's silence: a
	// PostgreSQL that outlived its Patroni (kill -9 of Patroni alone) runs
	// on as a primary nobody manages, and the local route would hand it
	// the clients' writes after the VIP was released — writes the new
	// leader never receives.
	d.refuse = !d.hold && d.pgDown && w.isHeld()
	w.mu.Lock()
	if perr == nil {
		w.lastRole = st.Role
	}
	w.promoting = known && leader == w.Me && perr == nil && !d.hold
	d.cutOff = w.DCS != nil && !known
	w.cutOff = d.cutOff
	if perr == nil {
		w.lastAnswer = now
	}
	if !d.handover {
		w.handoverSince = time.Time{}
	} else if w.handoverSince.IsZero() {
		w.handoverSince = now
	}
	w.mu.Unlock()
	return d
}

// rule is the table of the Watcher's comment, first match wins.
func (w *Watcher) rule(now time.Time, st patroni.PrimaryStatus, perr error, known bool, leader string) decision {
	primary := perr == nil && st.Leader && st.Running()
	switch {
	case known && leader != "" && leader != w.Me:
		if primary {
			return decision{cause: metrics.CauseDCS, reason: "leader key is " + leader + " although patroni still says primary"}
		}
		if w.inHandover() {
			return decision{cause: metrics.CauseDCS, reason: "leader key is " + leader + ": hand-over done"}
		}
		return decision{cause: metrics.CauseDCS, reason: "leader key is " + leader}
	case primary:
		return decision{hold: true, cause: metrics.CausePatroni, reason: "patroni: primary"}
	case perr == nil && known && leader == w.Me && w.direct() && st.Running() && st.Role == "replica":
		// Patroni took the lock and promotes (its /primary turns 200 a
		// moment later); the VIP follows the key. A standby cluster's
		// leader says standby_leader and is not matched.
		return decision{hold: true, cause: metrics.CauseDCS, reason: "leader key is this node: patroni is promoting"}
	case perr == nil && !st.Running() && known && w.direct() && handoverRole(st.Role) && w.isHeld():
		since := w.handoverStart(now)
		if now.Sub(since) > w.handoverMax() {
			return decision{cause: metrics.CausePatroni, reason: fmt.Sprintf("postgresql %s for %s with the leader key %s: hand-over hold ended",
				st.State, now.Sub(since).Round(time.Millisecond), quoteEmpty(leader))}
		}
		return decision{hold: true, handover: true, cause: metrics.CauseDCS, reason: fmt.Sprintf("hand-over: postgresql %s (role %s), leader key %s: keeping the address so connections are refused, not lost",
			st.State, st.Role, quoteEmpty(leader))}
	case perr == nil && st.Leader:
		return decision{cause: metrics.CausePatroni, reason: "patroni: leader, but postgresql " + st.State}
	case perr == nil:
		return decision{cause: metrics.CausePatroni, reason: "patroni: not primary"}
	case known && leader == w.Me && errors.Is(perr, errNotWaited):
		return decision{hold: true, cause: metrics.CauseDCS, reason: "leader key is this node: patroni is promoting (no answer yet)"}
	case known && leader == w.Me:
		return decision{hold: true, cause: metrics.CauseDCS, reason: "patroni silent; leader key is this node"}
	case known:
		return decision{cause: metrics.CauseDCS, reason: "patroni silent; leader key is empty"}
	}
	last := w.lastAnswered()
	if last.IsZero() || now.Sub(last) > w.grace() {
		return decision{cause: metrics.CauseGrace, reason: "patroni silent and leader unknown past the grace period"}
	}
	if h := w.held(); h != nil {
		return decision{hold: *h, cause: metrics.CauseGrace, reason: "patroni silent and leader unknown: keeping the current state within the grace period"}
	}
	return decision{cause: metrics.CauseDCS, reason: "patroni silent and leader unknown"}
}

// handoverRole: Patroni's role for a primary whose PostgreSQL stopped —
// still master/primary while it stops, demoted once it released the key.
// A replica (Patroni restarting it to follow the new leader) ends the hold.
func handoverRole(role string) bool {
	switch role {
	case "master", "primary", "demoted":
		return true
	}
	return false
}

// direct: the DCS view reads the key itself and is told of every change
// (an etcd watch), so "this node's or empty" is the DCS's word, not
// Patroni's cached view, and the release when the key moves is immediate.
func (w *Watcher) direct() bool {
	_, ok := w.DCS.(LeaderChanges)
	return ok
}

func (w *Watcher) inHandover() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.handoverSince.IsZero()
}

func (w *Watcher) isHeld() bool {
	h := w.held()
	return h != nil && *h
}

func (w *Watcher) handoverStart(now time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.handoverSince.IsZero() {
		return now
	}
	return w.handoverSince
}

func (w *Watcher) lastAnswered() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastAnswer
}

func (w *Watcher) handoverMax() time.Duration {
	if w.HandoverMax <= 0 {
		return 30 * time.Second
	}
	return w.HandoverMax
}

func quoteEmpty(s string) string {
	if s == "" {
		return "empty"
	}
	return s
}

func (w *Watcher) interval() time.Duration {
	if w.Interval <= 0 {
		return 300 * time.Millisecond
	}
	return w.Interval
}

func (w *Watcher) grace() time.Duration {
	if w.Grace <= 0 {
		return 3 * time.Second
	}
	return w.Grace
}

// Step runs one reconciliation: decide, then converge. Hold and Release are
// idempotent, so re-adding a VIP the primary lost (someone ran ip addr del)
// happens on the next step. A step whose decision a request (Request)
// outdated converges nothing.
func (w *Watcher) Step(ctx context.Context) error {
	start := time.Now()
	seen := w.generation()
	d := w.decide(ctx, start)
	if d.stale {
		return nil
	}
	octx, done, ok := w.begin(ctx, seen, false)
	if !ok {
		return nil
	}
	defer done()
	if d.refuse && !d.hold {
		w.refuse(octx)
	}
	err := w.converge(octx, start, d, false)
	if w.refusing() && (d.hold || !d.pgDown || time.Since(w.refuseStart()) > w.refuseFor()) {
		w.unrefuse(octx, d.reason)
	}
	return err
}

// refuse starts refusing connections to the VIP (before it is released).
func (w *Watcher) refuse(ctx context.Context) {
	r, ok := w.VIP.(Refuser)
	if !ok {
		return
	}
	done, err := r.Refuse(ctx)
	ev := w.Log.Info()
	switch {
	case err != nil:
		ev = w.Log.Warn().Err(err)
	case !done:
		w.Log.Warn().Str("action", "vip watch").Msg("no refusal after the hand-over: net.ipv4.conf.*.arp_ignore is 0 (set it to 1; pghook install does) or the VIP is IPv6; a client's SYN between this release and the new holder's announcement is lost")
		return
	}
	if done {
		w.mu.Lock()
		w.refuseSince = time.Now()
		w.mu.Unlock()
	}
	ev.Str("action", "vip watch").Msg("the VIP goes on refusing connections here while clients move to the new holder")
}

func (w *Watcher) unrefuse(ctx context.Context, reason string) {
	r, ok := w.VIP.(Refuser)
	if !ok {
		return
	}
	if err := r.Unrefuse(ctx); err != nil {
		w.Log.Warn().Err(err).Str("action", "vip watch").Msg("ending the refusal")
		return
	}
	w.mu.Lock()
	took := time.Since(w.refuseSince)
	w.refuseSince = time.Time{}
	w.mu.Unlock()
	w.Log.Info().Str("action", "vip watch").Str("reason", reason).Dur("refused_ms", took).Msg("refusal ended")
}

func (w *Watcher) refusing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.refuseSince.IsZero()
}

func (w *Watcher) refuseStart() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refuseSince
}

// Request makes this node hold (hold true) or release the VIP now, as a
// callback asks through the control socket: Patroni has just decided, and
// the hold is guarded like the callback's own (DCS leader key, address
// probe). It cancels the operation in progress; the next Step decides
// from Patroni and the DCS again, so a request cannot keep the VIP on a
// node that is not the primary for longer than a step.
//
// A release is first checked against the hand-over row: the old primary's
// on_stop comes while PostgreSQL is down and the key is still this node's
// or empty — releasing then would drop clients' SYNs until the new primary
// holds the address. Such a release is deferred (nil is returned: the
// watcher owns the outcome) and the key's move releases the VIP.
func (w *Watcher) Request(ctx context.Context, hold bool) error {
	if hold {
		if joined, err := w.joinTake(ctx); joined {
			return err
		}
	}
	d := decision{cutOff: w.lastCutOff()} // unless decided below: the last step's view of the DCS
	if !hold && w.direct() {
		start := time.Now()
		for i := 0; i < 3; i++ { // a key event while deciding: decide again
			if d = w.decide(ctx, start); !d.stale {
				break
			}
		}
		if d.handover {
			w.Log.Info().Str("action", "vip watch").Str("vip", VIPHold.String()).Str("reason", d.reason).
				Dur("took_ms", time.Since(start)).Msg("callback's release deferred until the leader key moves")
			return nil
		}
	}
	octx, done, ok := w.begin(ctx, 0, true)
	if !ok {
		return ErrSuperseded
	}
	defer done()
	if d.refuse {
		w.refuse(octx)
	}
	d.hold, d.reason, d.cause = hold, "callback request", metrics.CauseCallback
	err := w.converge(octx, time.Now(), d, true)
	if hold && w.refusing() {
		w.unrefuse(octx, "callback request: hold")
	}
	return err
}

// joinTake waits for the Hold in progress, if any, instead of cancelling
// it: a promoted node's watcher starts its take when Patroni answers 200,
// and the on_role_change callback's request comes while that take is
// running; starting it again would cost a whole run of the VIP helper.
// joined false: there is no take in progress, or it failed while no newer
// request came in — the caller runs its own. A take that failed because a
// newer request replaced it returns ErrSuperseded: that request decides.
func (w *Watcher) joinTake(ctx context.Context) (joined bool, err error) {
	w.mu.Lock()
	tk := w.takeInFlight
	if tk != nil {
		w.gen++ // outdates decisions made before this request, as begin does
	}
	gen := w.gen
	w.mu.Unlock()
	if tk == nil {
		return false, nil
	}
	start := time.Now()
	select {
	case <-tk.done:
	case <-ctx.Done():
		return true, fmt.Errorf("waiting for the vip take in progress: %w", context.Cause(ctx))
	}
	if tk.err == nil {
		w.Log.Info().Str("action", "vip watch").Str("vip", VIPHold.String()).Str("reason", "callback request").
			Dur("took_ms", time.Since(start)).Msg("callback's hold joined the take in progress")
		return true, nil
	}
	if w.generation() != gen {
		return true, fmt.Errorf("%w: the take this request joined failed: %w", ErrSuperseded, tk.err)
	}
	return false, nil
}

// held is the state the last successful operation left (nil: none yet).
func (w *Watcher) held() *bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.holding
}

func (w *Watcher) lastCutOff() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cutOff
}

func (w *Watcher) generation() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

// begin waits for its turn to converge. A request (preempt) outdates
// earlier decisions and cancels the operation in progress; a step (seen =
// the generation when it began deciding) gives way when a request came in
// since. ok false: nothing to do. done must be called when ok.
func (w *Watcher) begin(ctx context.Context, seen uint64, preempt bool) (octx context.Context, done func(), ok bool) {
	w.mu.Lock()
	if preempt {
		w.gen++
		seen = w.gen
		if w.cancelOp != nil {
			w.cancelOp(ErrSuperseded)
		}
	}
	w.mu.Unlock()
	w.opMu.Lock()
	w.mu.Lock()
	if w.gen != seen {
		w.mu.Unlock()
		w.opMu.Unlock()
		return nil, nil, false
	}
	octx, cancel := context.WithCancelCause(ctx)
	w.cancelOp = cancel
	w.mu.Unlock()
	return octx, func() {
		w.mu.Lock()
		w.cancelOp = nil
		w.mu.Unlock()
		cancel(nil)
		w.opMu.Unlock()
	}, true
}

// converge makes the VIP state d.hold; force skips the status read (a
// request always acts: Hold re-announces an address already there). A
// release while cut off (d.cutOff) with a netvip.PromptReleaser reads
// only whether the address is here, and lets it go before anything that
// needs the network.
func (w *Watcher) converge(ctx context.Context, start time.Time, d decision, force bool) error {
	hold, reason, cause := d.hold, d.reason, d.cause
	prompt, _ := w.VIP.(netvip.PromptReleaser)
	if hold || !d.cutOff {
		prompt = nil
	}
	prev := w.held()
	changed := prev == nil || *prev != hold || force
	act := force
	if !force {
		var st netvip.Status
		var serr error
		if prompt != nil {
			st.Held, serr = prompt.AddressHeld(ctx)
		} else {
			st, serr = w.VIP.Status(ctx)
		}
		act = serr != nil || st.Held != hold
		if serr == nil {
			w.Metrics.Held(st.Held)
		}
	}
	var err error
	if act {
		changed = true
		opStart := time.Now()
		direction := metrics.Release
		if hold {
			direction = metrics.Hold
			tk := &take{done: make(chan struct{})}
			w.mu.Lock()
			w.takeInFlight = tk
			w.mu.Unlock()
			err = w.VIP.Hold(ctx)
			w.mu.Lock()
			w.takeInFlight = nil
			w.mu.Unlock()
			tk.err = err
			close(tk.done)
		} else if prompt != nil {
			err = prompt.ReleasePromptly(ctx)
		} else {
			err = w.VIP.Release(ctx)
		}
		w.Metrics.Transition(direction, cause, time.Since(opStart), err)
	}
	switch {
	case err == nil:
		w.mu.Lock()
		w.holding = &hold
		w.mu.Unlock()
	case errors.Is(context.Cause(ctx), ErrSuperseded) && !errors.Is(err, ErrSuperseded):
		err = fmt.Errorf("%w: %w", ErrSuperseded, err)
	}
	if changed || err != nil {
		ev := w.Log.Info()
		if err != nil {
			ev = w.Log.Error().Err(err)
		}
		intent := VIPRelease
		if hold {
			intent = VIPHold
		}
		ev.Str("action", "vip watch").Str("vip", intent.String()).Str("reason", reason).
			Dur("took_ms", time.Since(start)).Msg("vip reconciled")
	}
	return err
}

// Run steps every Interval, and at once after each change of the leader
// key, until ctx ends, then returns nil. It does not release the VIP on
// exit: stopping the watcher must not take the VIP from a healthy primary
// (the callbacks and ExecStopPost do that).
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval())
	defer t.Stop()
	changed := make(chan struct{}, 1)
	if lc, ok := w.DCS.(LeaderChanges); ok {
		go w.follow(ctx, lc, changed)
	}
	var promoting time.Time // when the key began naming this node before Patroni said primary
	for {
		_ = w.Step(ctx) // logged; the next step tries again
		if ctx.Err() != nil {
			return nil
		}
		// The key names this node but Patroni is not primary yet: it is
		// between taking the lock and saying so (~ms). Ask again soon, so
		// the VIP is taken at Patroni's first 200 — the old holder let go
		// at the key's write — not one interval later.
		var soon <-chan time.Time
		if w.awaitingPrimary() {
			if promoting.IsZero() {
				promoting = time.Now()
			}
			if time.Since(promoting) < promoteWatch {
				soon = time.After(promotePoll)
			}
		} else {
			promoting = time.Time{}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-soon:
		case <-changed:
		}
	}
}

func (w *Watcher) promoteAnswer() time.Duration {
	if w.PromoteAnswer <= 0 {
		return 30 * time.Millisecond
	}
	return w.PromoteAnswer
}

func (w *Watcher) lastRoleIs(role string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastRole == role
}

const (
	// promotePoll is the pause between steps while the key names this
	// node and Patroni does not call it primary yet, for up to promoteWatch.
	promotePoll  = 20 * time.Millisecond
	promoteWatch = 3 * time.Second
)

// keyBumpCh is closed at the next leader key event.
func (w *Watcher) keyBumpCh() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.keyBump == nil {
		w.keyBump = make(chan struct{})
	}
	return w.keyBump
}

// bumpKey tells decisions in progress that the leader key changed.
func (w *Watcher) bumpKey() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.keyBump != nil {
		close(w.keyBump)
	}
	w.keyBump = make(chan struct{})
}

func (w *Watcher) awaitingPrimary() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.promoting
}

// follow keeps a watch on the leader key open and signals changed
// (coalesced) on every event; when the watch breaks it is reopened after a
// pause, and the periodic poll covers the gap.
func (w *Watcher) follow(ctx context.Context, lc LeaderChanges, changed chan<- struct{}) {
	poke := func() {
		w.bumpKey()
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	failing := false
	for ctx.Err() == nil {
		err := lc.WatchLeader(ctx, func() {
			if failing {
				failing = false
				w.Log.Info().Str("action", "vip watch").Msg("watching the leader key again")
			}
			poke()
		})
		if ctx.Err() != nil {
			return
		}
		if !failing {
			failing = true
			w.Log.Warn().Err(err).Str("action", "vip watch").Msg("leader key watch broken; polling every interval until it is back")
		}
		if ctxtime.Sleep(ctx, time.Second) != nil {
			return
		}
	}
}
