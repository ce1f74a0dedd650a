package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/pgtab"
	"github.com/rs/zerolog"
)

// recVIP records the VIP operations as text, like a fake OS.
type recVIP struct {
	ops  []string
	fail error
}

func (r *recVIP) Name() string { return "rec" }
func (r *recVIP) Hold(context.Context) error {
	r.ops = append(r.ops, "hold")
	return r.fail
}
func (r *recVIP) Release(context.Context) error {
	r.ops = append(r.ops, "release")
	return r.fail
}
func (r *recVIP) Status(context.Context) (netvip.Status, error) { return netvip.Status{}, nil }

type recRoster struct{ rows []pgtab.Row }

func (r *recRoster) Upsert(_ context.Context, row pgtab.Row) error {
	r.rows = append(r.rows, row)
	return nil
}

func TestRunnerHandle(t *testing.T) {
	tests := []struct {
		args    []string
		wantOps string
		role    string
	}{
		{[]string{"on_role_change", "master", "s"}, "hold", "primary"},
		{[]string{"on_stop", "master", "s"}, "release", "stopped"},
		{[]string{"on_start", "replica", "s"}, "release", "replica"},
		{[]string{"on_start", "sideways", "s"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			ev, _ := ParseArgs(tt.args)
			vip, roster := &recVIP{}, &recRoster{}
			var logbuf bytes.Buffer
			r := Runner{VIP: vip, Roster: roster, Log: zerolog.New(&logbuf)}
			if _, err := r.Handle(context.Background(), ev, pgtab.Row{Scope: "s", Node: "n1"}); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(vip.ops, ","); got != tt.wantOps {
				t.Fatalf("vip ops %q want %q", got, tt.wantOps)
			}
			if tt.role == "" {
				if len(roster.rows) != 0 {
					t.Fatal("roster touched for unknown input")
				}
			} else if len(roster.rows) != 1 || roster.rows[0].Role != tt.role {
				t.Fatalf("roster %+v", roster.rows)
			}
			var m map[string]any
			if err := json.Unmarshal(logbuf.Bytes(), &m); err != nil {
				t.Fatalf("log not one JSON line: %q", logbuf.String())
			}
			for _, k := range []string{"scope", "node", "action", "role", "took_ms"} {
				if _, ok := m[k]; !ok {
					t.Errorf("log line lacks %q: %s", k, logbuf.String())
				}
			}
		})
	}
}

func TestRunnerHandleKeepsGoingOnVIPError(t *testing.T) {
	ev, _ := ParseArgs([]string{"on_role_change", "master", "s"})
	vip, roster := &recVIP{fail: errors.New("no such device")}, &recRoster{}
	_, err := Runner{VIP: vip, Roster: roster, Log: zerolog.Nop()}.Handle(context.Background(), ev, pgtab.Row{Scope: "s", Node: "n1"})
	if err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Fatalf("err %v", err)
	}
	if len(roster.rows) != 1 {
		t.Fatal("roster not updated after a VIP failure")
	}
}

// A callback that finishes after a later one leaves the roster to it: the
// real pgtab.File, two events started out of order.
func TestRunnerStaleEventLeavesRoster(t *testing.T) {
	f := pgtab.File{Path: t.TempDir() + "/.pgtab"}
	var logs bytes.Buffer
	r := Runner{VIP: &recVIP{}, Roster: f, Log: zerolog.New(&logs)}
	row := pgtab.Row{Scope: "pglab", Node: "n2"}
	// The later event (on_role_change replica) is recorded first...
	if _, err := r.Handle(context.Background(), Event{Action: OnRoleChange, Role: Replica, RawRole: "replica", Scope: "pglab"}, row); err != nil {
		t.Fatal(err)
	}
	// ...then a callback that started before it finishes.
	if err := f.UpsertEvent(context.Background(), pgtab.Row{Scope: "pglab", Node: "n2", Role: "primary"}, time.Now().Add(-time.Second)); !errors.Is(err, pgtab.ErrStale) {
		t.Fatalf("older event: %v, want ErrStale", err)
	}
	rows, _ := f.Read()
	if len(rows) != 1 || rows[0].Role != "replica" {
		t.Fatalf("rows %+v", rows)
	}
	// And through Handle: an event stamped before the recorded one is not an error.
	old := Runner{VIP: &recVIP{}, Roster: staleAt{f, time.Now().Add(-time.Hour)}, Log: zerolog.New(&logs)}
	if _, err := old.Handle(context.Background(), Event{Action: OnReload, Role: Primary, RawRole: "master", Scope: "pglab"}, row); err != nil {
		t.Fatalf("stale event reported as a failure: %v", err)
	}
	if rows, _ := f.Read(); rows[0].Role != "replica" {
		t.Fatalf("stale event overwrote the roster: %+v", rows)
	}
	if !strings.Contains(logs.String(), "roster left as a later callback recorded it") {
		t.Errorf("no log line for the stale event:\n%s", logs.String())
	}
}

// staleAt is a pgtab.File whose events all claim to have started at at.
type staleAt struct {
	pgtab.File
	at time.Time
}

func (s staleAt) UpsertEvent(ctx context.Context, row pgtab.Row, _ time.Time) error {
	return s.File.UpsertEvent(ctx, row, s.at)
}
