//go:build integration

package dnsvip

// Two reconcilers (hooks.Watcher, as `pghook vip watch` runs them) moving
// the record on BIND through a switchover, a kill -9 of the primary and
// the return of a stale former primary; Patroni and the leader key are
// stand-ins the test flips. A client samples the name every 10 ms.

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/dnslab"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/rs/zerolog"
)

type flag struct{ v atomic.Bool }

// Primary answers as Patroni's GET /primary does for a running primary
// (200) or a running replica (503).
func (f *flag) Primary(context.Context) (patroni.PrimaryStatus, error) {
	if f.v.Load() {
		return patroni.PrimaryStatus{Leader: true, State: "running", Role: "master"}, nil
	}
	return patroni.PrimaryStatus{State: "running", Role: "replica"}, nil
}

type leaderKey struct {
	mu   sync.Mutex
	name string
}

func (l *leaderKey) Leader(context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.name, nil
}
func (l *leaderKey) Source() string { return "test" }
func (l *leaderKey) set(n string) {
	l.mu.Lock()
	l.name = n
	l.mu.Unlock()
}

func TestBINDWatchersSwitchoverAndKill(t *testing.T) {
	lab := startLab(t)
	const n1, n2 = dnslab.HostAddr, "10.251.78.12"
	key := &leaderKey{name: "n1"}
	var p1, p2 flag
	p1.v.Store(true)
	mk := func(addr string) *Backend {
		b, err := New(Settings{Name: dnslab.Name, Zone: dnslab.Zone, Server: dnslab.ServerAddr, KeyFile: lab.KeyFile,
			Address: netip.MustParseAddr(addr), Timeout: 500 * time.Millisecond}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b1, b2 := mk(n1), mk(n2)
	start := func(me string, b *Backend, p *flag) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		w := &hooks.Watcher{VIP: hooks.GuardedVIP{Backend: b, Me: me, View: key}, Patroni: p, DCS: key, Me: me,
			Interval: 100 * time.Millisecond, Log: zerolog.Nop()}
		done := make(chan struct{})
		go func() { _ = w.Run(ctx); close(done) }()
		return func() { cancel(); <-done }
	}
	// The client: what the server answers, every 10 ms.
	type sample struct {
		at  time.Time
		ans string
	}
	var mu sync.Mutex
	var samples []sample
	cctx, stopClient := context.WithCancel(context.Background())
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		for cctx.Err() == nil {
			got, err := lab.Lookup(cctx, dnslab.Name)
			ans := strings.Join(got, ",")
			if err != nil {
				ans = "error"
			}
			mu.Lock()
			samples = append(samples, sample{time.Now(), ans})
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { stopClient(); <-clientDone }()
	waitFor := func(want string, within time.Duration) time.Duration {
		t.Helper()
		t0 := time.Now()
		for time.Since(t0) < within {
			if got, _ := lab.Lookup(context.Background(), dnslab.Name); strings.Join(got, ",") == want {
				return time.Since(t0)
			}
			time.Sleep(5 * time.Millisecond)
		}
		got, _ := lab.Lookup(context.Background(), dnslab.Name)
		t.Fatalf("the name answers %v, want %s after %v", got, want, within)
		return 0
	}
	stop1, stop2 := start("n1", b1, &p1), start("n2", b2, &p2)
	defer func() { stop2() }()
	waitFor(n1, 2*time.Second)

	// Switchover: Patroni moves the lock and the roles at once.
	t0 := time.Now()
	key.set("n2")
	p1.v.Store(false)
	p2.v.Store(true)
	took := waitFor(n2, 2*time.Second)
	t.Logf("switchover: the name answers the new primary %v after the leader key moved", took)

	// Back to n1, then kill -9 of n1: its watcher dies with it, the lock
	// expires, n2 takes the lock.
	key.set("n1")
	p1.v.Store(true)
	p2.v.Store(false)
	waitFor(n1, 2*time.Second)
	stop1()
	key.set("")
	p1.v.Store(false)
	time.Sleep(300 * time.Millisecond)
	if got, _ := lab.Lookup(context.Background(), dnslab.Name); !slices.Equal(got, []string{n1}) {
		t.Fatalf("with n1 dead and no leader the name answers %v: only the next primary replaces it", got)
	}
	key.set("n2")
	p2.v.Store(true)
	took = waitFor(n2, 2*time.Second)
	t.Logf("kill -9: the name answers the new primary %v after it took the leader key", took)

	// n1 comes back still believing it is the primary (Patroni not yet
	// demoted): its reconciler and a late callback must not touch n2's record.
	p1.v.Store(true)
	stop1 = start("n1", b1, &p1)
	defer stop1()
	late := hooks.GuardedVIP{Backend: b1, Me: "n1", View: key}
	if err := late.Hold(context.Background()); err == nil {
		t.Fatal("a stale callback's hold passed the guard")
	}
	time.Sleep(500 * time.Millisecond)
	if got, _ := lab.Lookup(context.Background(), dnslab.Name); !slices.Equal(got, []string{n2}) {
		t.Fatalf("after the stale primary's return the name answers %v", got)
	}

	mu.Lock()
	defer mu.Unlock()
	var after []sample
	for _, s := range samples {
		if s.at.After(t0) {
			after = append(after, s)
		}
	}
	for _, s := range after {
		if strings.Contains(s.ans, ",") || s.ans == "error" {
			t.Errorf("at %v the client got %q: never two addresses, never an error", s.at.Sub(t0), s.ans)
		}
	}
	t.Logf("%d client samples", len(after))
}
