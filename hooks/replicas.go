package hooks

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/rs/zerolog"
)

// ReplicaMembership is a record that read-serving replicas join
// (dnsvip.ReplicaRecord): each node adds and removes its own value only.
type ReplicaMembership interface {
	Join(ctx context.Context) error
	Leave(ctx context.Context) error
	// Member reads back what is served now: whether this node is in the
	// set, and the whole set.
	Member(ctx context.Context) (bool, []netip.Addr, error)
}

// ReadsProbe asks the local Patroni whether this member serves reads
// (GET /replica: a running replica not tagged noloadbalance).
type ReadsProbe interface {
	ServesReads(ctx context.Context) (bool, error)
}

// ReplicaSync keeps this node in the replica record exactly while Patroni
// calls it a read-serving replica: level-triggered like Watcher, it reads
// back what the server serves every Interval and converges. A Patroni
// that does not answer keeps the current state for Grace (a restart of
// Patroni alone leaves PostgreSQL streaming), then counts as "not a
// replica". When Run ends (the watcher stops), the node leaves.
type ReplicaSync struct {
	Record   ReplicaMembership
	Patroni  ReadsProbe
	Interval time.Duration // 0 means 1s
	Grace    time.Duration // 0 means 3s
	Log      zerolog.Logger

	lastAnswer time.Time
	lastWant   bool
}

// Step decides once and converges; it returns what it wants and any error
// of the read-back or the update (the next step retries).
func (s *ReplicaSync) Step(ctx context.Context, now time.Time) (want bool, err error) {
	timeout := s.interval()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	serves, perr := s.Patroni.ServesReads(pctx)
	cancel()
	switch {
	case perr == nil:
		want, s.lastAnswer, s.lastWant = serves, now, serves
	case !s.lastAnswer.IsZero() && now.Sub(s.lastAnswer) <= s.grace():
		want = s.lastWant
	default:
		want = false
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in, _, err := s.Record.Member(rctx)
	if err != nil {
		return want, fmt.Errorf("reading the replica record: %w", err)
	}
	switch {
	case want && !in:
		err = s.Record.Join(rctx)
	case !want && in:
		err = s.Record.Leave(rctx)
	}
	return want, err
}

// Run steps every Interval until ctx ends, then leaves the record (within
// a short deadline of its own).
func (s *ReplicaSync) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval())
	defer t.Stop()
	for {
		if _, err := s.Step(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.Log.Warn().Str("action", "replica record").Err(err).Msg("replica record not converged; retrying")
		}
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if in, _, err := s.Record.Member(lctx); err == nil && in {
				if err := s.Record.Leave(lctx); err != nil {
					s.Log.Warn().Str("action", "replica record").Err(err).Msg("leaving the replica record on stop failed")
				}
			}
			return nil
		case <-t.C:
		}
	}
}

func (s *ReplicaSync) interval() time.Duration {
	if s.Interval <= 0 {
		return time.Second
	}
	return s.Interval
}

func (s *ReplicaSync) grace() time.Duration {
	if s.Grace <= 0 {
		return 3 * time.Second
	}
	return s.Grace
}
