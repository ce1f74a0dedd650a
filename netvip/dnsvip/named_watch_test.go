package dnsvip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/rs/zerolog"
)

// demotedProbe is Patroni after it demoted a primary it could no longer
// keep the leader key for.
type demotedProbe struct{}

func (demotedProbe) Primary(context.Context) (patroni.PrimaryStatus, error) {
	return patroni.PrimaryStatus{State: "running", Role: "replica"}, nil
}

// unreachableDCS is a DCS view that cannot be read.
type unreachableDCS struct{}

func (unreachableDCS) Leader(context.Context) (string, error) {
	return "", errors.New("reading /service/pglab/leader from etcd: context deadline exceeded")
}
func (unreachableDCS) Source() string { return "unreachable" }

// A watcher cut off from the DCS and from the DNS server, whose Patroni
// demoted: its step lets the address go at once — no status read of the
// record, no record update first — while the record's exchange goes on
// waiting behind it.
func TestWatcherStepCutOffReleasesNamedVIPAtOnce(t *testing.T) {
	z, rec := silentRecord(t)
	server := rec.server
	rec.server = z.addr // the record was pointed while the server answered
	released := make(chan time.Time, 1)
	a := &timedAddr{addrVIP: addrVIP{z: z}, released: released}
	n := NameVIP(a, rec, nil, zerolog.Nop())
	if err := n.Hold(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec.server = server // cut off
	w := &hooks.Watcher{VIP: n, Patroni: demotedProbe{}, DCS: unreachableDCS{}, Me: "n1", Log: zerolog.Nop()}
	start := time.Now()
	err := w.Step(context.Background())
	if err == nil {
		t.Error("step: no error, want the record's")
	}
	if a.held {
		t.Fatal("address still held")
	}
	if took := (<-released).Sub(start); took > 100*time.Millisecond {
		t.Errorf("the address went %s after the step began, want at once", took)
	}
}
