//go:build integration

package execvip

// The exec backend driving a fake "cloud API" over HTTP on loopback: one
// address, assigned to one node at a time; assigning it to a second node
// while the first holds it is refused (409), as an API without
// reassignment does. The commands are curl, run by the backend without a
// shell of its own; the check is a small sh script the user would write.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/rs/zerolog"
)

type fakeCloud struct {
	mu     sync.Mutex
	holder string
	hang   bool
	calls  []string
}

func (c *fakeCloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	hang := c.hang
	c.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	node := r.URL.Query().Get("node")
	c.calls = append(c.calls, r.Method+" "+r.URL.Path+" "+node)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/assign":
		if c.holder != "" && c.holder != node {
			http.Error(w, "address assigned to "+c.holder, http.StatusConflict)
			return
		}
		c.holder = node
	case r.Method == http.MethodPost && r.URL.Path == "/unassign":
		if c.holder == node {
			c.holder = ""
		}
	case r.Method == http.MethodGet && r.URL.Path == "/holder":
		if c.holder != node {
			http.Error(w, "held by "+c.holder, http.StatusNotFound)
		}
	default:
		http.Error(w, "no such call", http.StatusBadRequest)
	}
}

func (c *fakeCloud) get() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holder
}

type primary struct{ yes bool }

func (p *primary) Primary(context.Context) (patroni.PrimaryStatus, error) {
	if p.yes {
		return patroni.PrimaryStatus{Leader: true, State: "running", Role: "master"}, nil
	}
	return patroni.PrimaryStatus{State: "running", Role: "replica"}, nil
}

type leader struct{ name string }

func (l *leader) Leader(context.Context) (string, error) { return l.name, nil }
func (l *leader) Source() string                         { return "test" }

func TestFakeCloudAPI(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (make deps)")
	}
	cloud := &fakeCloud{}
	srv := httptest.NewServer(cloud)
	defer srv.Close()
	node := func(name string) *Backend {
		b, err := New(Settings{
			Hold:    []string{"/usr/bin/curl", "-fsS", "-X", "POST", srv.URL + "/assign?node=" + name},
			Release: []string{"/usr/bin/curl", "-fsS", "-X", "POST", srv.URL + "/unassign?node=" + name},
			Check: []string{"/bin/sh", "-c", `c=$(/usr/bin/curl -s -o /dev/null -w '%{http_code}' "$0/holder?node=$PGHOOK_NODE") || exit 2
case $c in 200) echo "assigned to $PGHOOK_NODE";; 404) exit 1;; *) exit 2;; esac`, srv.URL},
			Timeout: time.Second, Scope: "main", Node: name, Address: "192.0.2.10",
		}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := context.Background()
	n1, n2 := node("n1"), node("n2")

	if err := n1.Hold(ctx); err != nil || cloud.get() != "n1" {
		t.Fatalf("n1 hold: %v, holder %q", err, cloud.get())
	}
	if st, err := n1.Status(ctx); err != nil || !st.Held || st.Detail != "assigned to n1" {
		t.Fatalf("n1 status %+v %v", st, err)
	}
	// A second holder is refused, and that is an error, not "done".
	if err := n2.Hold(ctx); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("n2 hold while n1 holds: %v", err)
	}
	if st, err := n2.Status(ctx); err != nil || st.Held {
		t.Fatalf("n2 status %+v %v", st, err)
	}

	// The reconciler on n2 (the new primary; the DCS names it) retries
	// until n1's release lets the API assign the address.
	w := &hooks.Watcher{VIP: hooks.GuardedVIP{Backend: n2, Me: "n2", View: &leader{"n2"}}, Patroni: &primary{true},
		DCS: &leader{"n2"}, Me: "n2", Interval: 50 * time.Millisecond}
	if err := w.Step(ctx); err == nil {
		t.Fatal("step while n1 holds succeeded")
	}
	if err := n1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Step(ctx); err != nil || cloud.get() != "n2" {
		t.Fatalf("step after n1's release: %v, holder %q", err, cloud.get())
	}
	// n1's late release cannot take it from n2.
	if err := n1.Release(ctx); err != nil || cloud.get() != "n2" {
		t.Fatalf("n1's late release: %v, holder %q", err, cloud.get())
	}

	// A hanging API: the command is killed at the timeout and the step
	// fails; once the API answers again a step succeeds.
	w2 := &hooks.Watcher{VIP: n1, Patroni: &primary{true}, DCS: &leader{"n1"}, Me: "n1", Interval: 50 * time.Millisecond}
	if err := n2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	cloud.mu.Lock()
	cloud.hang = true
	cloud.mu.Unlock()
	start := time.Now()
	if err := w2.Step(ctx); err == nil {
		t.Fatal("step against a hanging API succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("step took %v: the timeout did not bound it", took)
	}
	cloud.mu.Lock()
	cloud.hang = false
	cloud.mu.Unlock()
	if err := w2.Step(ctx); err != nil || cloud.get() != "n1" {
		t.Fatalf("step once the API answers: %v, holder %q", err, cloud.get())
	}
	// The guard refuses a hold when the leader key names another member.
	g := hooks.GuardedVIP{Backend: n2, Me: "n2", View: &leader{"n1"}}
	if err := g.Hold(ctx); err == nil || cloud.get() != "n1" {
		t.Fatalf("guarded hold against the leader key: %v, holder %q", err, cloud.get())
	}
}
