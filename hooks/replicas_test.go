package hooks

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

type fakeRecord struct {
	mu           sync.Mutex
	in           bool
	joins, leave int
	readErr      error
}

func (f *fakeRecord) Join(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joins++
	f.in = true
	return nil
}

func (f *fakeRecord) Leave(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leave++
	f.in = false
	return nil
}

func (f *fakeRecord) Member(context.Context) (bool, []netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.in, nil, f.readErr
}

func (f *fakeRecord) joined() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.joins
}

type fakeReads struct {
	serves bool
	err    error
}

func (f *fakeReads) ServesReads(context.Context) (bool, error) { return f.serves, f.err }

func TestReplicaSyncStep(t *testing.T) {
	silent := errors.New("no answer")
	t0 := time.Unix(1000, 0)
	type step struct {
		at         time.Duration
		serves     bool
		perr       error
		wantIn     bool
		joins, lvs int
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"a replica joins once", []step{{0, true, nil, true, 1, 0}, {time.Second, true, nil, true, 1, 0}}},
		{"promoted or stopped: leaves", []step{{0, true, nil, true, 1, 0}, {time.Second, false, nil, false, 1, 1}}},
		{"patroni silent within grace keeps it", []step{{0, true, nil, true, 1, 0}, {2 * time.Second, false, silent, true, 1, 0}}},
		{"patroni silent past grace: leaves", []step{{0, true, nil, true, 1, 0}, {4 * time.Second, false, silent, false, 1, 1}}},
		{"never answered: not joined", []step{{0, false, silent, false, 0, 0}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, reads := &fakeRecord{}, &fakeReads{}
			s := &ReplicaSync{Record: rec, Patroni: reads, Log: zerolog.Nop()}
			for i, st := range tt.steps {
				reads.serves, reads.err = st.serves, st.perr
				if _, err := s.Step(context.Background(), t0.Add(st.at)); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if rec.in != st.wantIn || rec.joins != st.joins || rec.leave != st.lvs {
					t.Fatalf("step %d: in %v joins %d leaves %d, want %v %d %d", i, rec.in, rec.joins, rec.leave, st.wantIn, st.joins, st.lvs)
				}
			}
		})
	}
}

// A record that cannot be read back is not written blind.
func TestReplicaSyncUnreadableRecord(t *testing.T) {
	rec := &fakeRecord{readErr: errors.New("server down")}
	s := &ReplicaSync{Record: rec, Patroni: &fakeReads{serves: true}, Log: zerolog.Nop()}
	if _, err := s.Step(context.Background(), time.Now()); err == nil || rec.joins != 0 {
		t.Fatalf("err %v joins %d", err, rec.joins)
	}
}

func TestReplicaSyncLeavesOnStop(t *testing.T) {
	rec := &fakeRecord{}
	s := &ReplicaSync{Record: rec, Patroni: &fakeReads{serves: true}, Interval: 10 * time.Millisecond, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Second)
	for rec.joined() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil || rec.joins != 1 || rec.in || rec.leave != 1 {
		t.Fatalf("Run: %v; joins %d leaves %d in %v", err, rec.joins, rec.leave, rec.in)
	}
}
