package hooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// LeaderView tells who holds the cluster's leader lock. "" means nobody.
type LeaderView interface {
	Leader(ctx context.Context) (string, error)
	// Source names the view for logs ("etcd3 /service/pg/leader", "rest").
	Source() string
}

// ErrOtherLeader is returned by a guarded Hold when the DCS names another
// member as leader: taking the VIP then would put it on two hosts.
var ErrOtherLeader = errors.New("hooks: the leader key names another member")

// GuardedVIP checks the DCS before taking the VIP (ARCHITECTURE.md, "Taking
// the VIP safely"): Hold is refused only when the leader key names another
// member. An unreachable DCS does not block a takeover Patroni has just
// decided; it is logged. Release is never guarded.
type GuardedVIP struct {
	netvip.Backend
	Me      string
	View    LeaderView // nil: no guard
	Timeout time.Duration
	Log     zerolog.Logger
}

// Hold implements netvip.Backend. When the backend can run a gate
// alongside its own preparation (netlink: the address probe), the DCS is
// read at the same time, so the check costs no extra latency.
func (g GuardedVIP) Hold(ctx context.Context) error {
	if g.View == nil {
		return g.Backend.Hold(ctx)
	}
	if gh, ok := g.Backend.(netvip.GatedHolder); ok {
		return gh.HoldIf(ctx, g.check)
	}
	if err := g.check(ctx); err != nil {
		return err
	}
	return g.Backend.Hold(ctx)
}

// check refuses only when the leader key names another member.
func (g GuardedVIP) check(ctx context.Context) error {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	leader, err := g.View.Leader(cctx)
	cancel()
	switch {
	case err != nil:
		g.Log.Warn().Err(err).Str("leader_source", g.View.Source()).Msg("leader unknown (DCS unreachable): taking the VIP as Patroni decided")
	case leader != "" && leader != g.Me:
		return fmt.Errorf("%w: %s says %q, this node is %q", ErrOtherLeader, g.View.Source(), leader, g.Me)
	}
	return nil
}

// Refuse implements Refuser when the backend does.
func (g GuardedVIP) Refuse(ctx context.Context) (bool, error) {
	if r, ok := g.Backend.(Refuser); ok {
		return r.Refuse(ctx)
	}
	return false, nil
}

// Unrefuse implements Refuser when the backend does.
func (g GuardedVIP) Unrefuse(ctx context.Context) error {
	if r, ok := g.Backend.(Refuser); ok {
		return r.Unrefuse(ctx)
	}
	return nil
}
