package hooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/pgtab"
	"github.com/rs/zerolog"
)

// Roster is where the node's row is recorded (pgtab.File in production).
type Roster interface {
	Upsert(ctx context.Context, row pgtab.Row) error
}

// EventRoster is a Roster that orders events: UpsertEvent returns an error
// wrapping pgtab.ErrStale, and changes nothing, when an event that started
// after at has already been recorded.
type EventRoster interface {
	UpsertEvent(ctx context.Context, row pgtab.Row, at time.Time) error
}

// Runner applies a Plan to the backends.
type Runner struct {
	VIP    netvip.Backend
	Roster Roster
	Policy Policy
	Log    zerolog.Logger
	Now    func() time.Time
}

// Handle converges this node to the desired state for ev. row carries the
// facts of this node (data dir, listen, …); its Role is set from the plan.
// Both intents are applied even if one fails, VIP first: a release must
// not wait on a slow disk, and a primary must not wait for the roster.
// The returned error joins the failures.
func (r Runner) Handle(ctx context.Context, ev Event, row pgtab.Row) (Plan, error) {
	start := time.Now()
	plan := Decide(ev, r.Policy)
	log := r.Log.With().Str("scope", ev.Scope).Str("node", row.Node).
		Str("action", string(ev.Action)).Str("role", ev.RawRole).Logger()
	if plan.VIP == VIPLeave && plan.RosterRole == "" {
		log.Warn().Str("reason", plan.Reason).Dur("took_ms", time.Since(start)).
			Msg("callback ignored: state left alone")
		return plan, nil
	}
	var errs []error
	vipStart := time.Now()
	switch plan.VIP {
	case VIPHold:
		if err := r.VIP.Hold(ctx); err != nil {
			errs = append(errs, fmt.Errorf("holding VIP (%s): %w", r.VIP.Name(), err))
		}
	case VIPRelease:
		if err := r.VIP.Release(ctx); err != nil {
			errs = append(errs, fmt.Errorf("releasing VIP (%s): %w", r.VIP.Name(), err))
		}
	}
	vipTook := time.Since(vipStart)
	if plan.RosterRole != "" && r.Roster != nil {
		row.Role = string(plan.RosterRole)
		if r.Now != nil {
			row.UpdatedAt = r.Now()
		}
		var err error
		if er, ok := r.Roster.(EventRoster); ok {
			err = er.UpsertEvent(ctx, row, start)
		} else {
			err = r.Roster.Upsert(ctx, row)
		}
		switch {
		case errors.Is(err, pgtab.ErrStale):
			// A later callback finished first; its row stands.
			log.Info().Err(err).Msg("roster left as a later callback recorded it")
		case err != nil:
			errs = append(errs, fmt.Errorf("updating roster: %w", err))
		}
	}
	err := errors.Join(errs...)
	ev2 := log.Info()
	if err != nil {
		ev2 = log.Error().Err(err)
	}
	ev2.Str("vip", plan.VIP.String()).Str("vip_backend", r.VIP.Name()).Dur("vip_ms", vipTook).
		Str("roster_role", string(plan.RosterRole)).Dur("took_ms", time.Since(start)).Msg("callback applied")
	return plan, err
}
