package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
