package hooks

import (
	"context"
	"errors"
	"time"

	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// PrimaryProbe asks the local Patroni whether this member is the primary
// (REST GET /primary). An error means Patroni did not answer.
type PrimaryProbe interface {
	IsPrimary(ctx context.Context) (bool, error)
}

// Watcher is the level-triggered safety net behind the callbacks (`pghook
// vip watch`): callbacks do not run when Patroni is killed, an isolated
// primary's on_stop comes late, and once a promotion ran no on_role_change
// at all (lab-notes.md). Every Interval it decides whether this node should
// hold the VIP and makes it so:
//
//	local Patroni /primary    DCS leader key          VIP
//	200                       (not asked)             hold
//	503                       (not asked)             release
//	no answer                 names this node         hold (Patroni busy; lock still ours)
//	no answer                 names another / none    release
//	no answer                 unreachable             hold until Grace has passed
//	                                                  since Patroni last answered, then release
//
// A healthy primary never loses the VIP because etcd is briefly
// unreachable (vip-manager #411/#431), and a node whose Patroni is gone
// gives it up once the lock is someone else's or Grace passes.
type Watcher struct {
	VIP      netvip.Backend
	Patroni  PrimaryProbe
	DCS      LeaderView // may be nil
	Me       string
	Interval time.Duration // 0 means 300ms
	Grace    time.Duration // 0 means 3s
	Log      zerolog.Logger

	lastAnswer time.Time
	holding    *bool
}

// Desired decides whether to hold the VIP now; reason is for the log.
func (w *Watcher) Desired(ctx context.Context, now time.Time) (hold bool, reason string) {
	timeout := w.interval()
	if timeout < 500*time.Millisecond {
		timeout = 500 * time.Millisecond
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	primary, err := w.Patroni.IsPrimary(pctx)
	cancel()
	if err == nil {
		w.lastAnswer = now
		if primary {
			return true, "patroni: primary"
		}
		return false, "patroni: not primary"
	}
	if w.DCS != nil {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		leader, derr := w.DCS.Leader(dctx)
		cancel()
		if derr == nil {
			if leader == w.Me {
				return true, "patroni silent; leader key is this node"
			}
			return false, "patroni silent; leader key is " + quoteEmpty(leader)
		}
	}
	if w.lastAnswer.IsZero() || now.Sub(w.lastAnswer) > w.grace() {
		return false, "patroni silent and leader unknown past the grace period"
	}
	if w.holding != nil {
		return *w.holding, "patroni silent and leader unknown: keeping the current state within the grace period"
	}
	return false, "patroni silent and leader unknown"
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
// happens on the next step.
func (w *Watcher) Step(ctx context.Context) error {
	start := time.Now()
	hold, reason := w.Desired(ctx, start)
	changed := w.holding == nil || *w.holding != hold
	var err error
	if hold {
		st, serr := w.VIP.Status(ctx)
		if serr != nil || !st.Held {
			err = w.VIP.Hold(ctx)
			changed = true
		}
	} else {
		st, serr := w.VIP.Status(ctx)
		if serr != nil || st.Held {
			err = w.VIP.Release(ctx)
			changed = true
		}
	}
	if err == nil {
		w.holding = &hold
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

// Run steps every Interval until ctx ends, then returns nil. It does not
// release the VIP on exit: stopping the watcher must not take the VIP from
// a healthy primary (the callbacks and ExecStopPost do that).
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval())
	defer t.Stop()
	for {
		if err := w.Step(ctx); err != nil && errors.Is(err, context.Canceled) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
