package netvip

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// pcsStep is one expected command and what the fake answers.
type pcsStep struct {
	cmd            string
	stdout, stderr string
	fail           string // non-empty: the command fails with this error
	block          bool   // the command runs until its context ends
	repeat         bool   // answers until another command comes; recorded once
}

// fakePcs answers the scripted commands in order and records every
// command line it is asked to run.
type fakePcs struct {
	mu    sync.Mutex
	steps []pcsStep
	ran   []string
}

func (f *fakePcs) Run(ctx context.Context, name string, args ...string) (string, string, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.mu.Lock()
	f.ran = append(f.ran, line)
	if len(f.steps) == 0 {
		f.mu.Unlock()
		return "", "unexpected command", &CommandError{Cmd: line, Err: errors.New("not scripted")}
	}
	s := f.steps[0]
	if s.repeat && s.cmd == line {
		f.ran = f.ran[:len(f.ran)-1]
		if f.ran[len(f.ran)-1] != line {
			f.ran = append(f.ran, line)
		}
		f.mu.Unlock()
		return s.stdout, s.stderr, nil
	}
	if s.repeat && len(f.steps) > 1 {
		f.steps = f.steps[1:]
		s = f.steps[0]
	}
	f.steps = f.steps[1:]
	f.mu.Unlock()
	if s.cmd != line {
		return "", "", &CommandError{Cmd: line, Err: errors.New("script expected " + s.cmd)}
	}
	if s.block {
		<-ctx.Done()
		return "", "", &CommandError{Cmd: line, Err: ctx.Err()}
	}
	if s.fail != "" {
		return s.stdout, s.stderr, &CommandError{Cmd: line, Err: errors.New(s.fail), Stderr: s.stderr}
	}
	if err := ctx.Err(); err != nil {
		return "", "", &CommandError{Cmd: line, Err: err}
	}
	return s.stdout, s.stderr, nil
}

const (
	locate       = "crm_resource --locate --resource vip"
	query        = "cibadmin --query --scope constraints"
	clear        = "crm_resource --clear --resource vip"
	onNode1      = "resource vip is running on: node1\n"
	onNode2      = "resource vip is running on: node2\n"
	noCons       = "<constraints/>\n"
	preferNode1  = `<constraints><rsc_location id="cli-prefer-vip" rsc="vip" role="Started" node="node1" score="INFINITY"/></constraints>`
	banNode2     = `<constraints><rsc_location id="cli-ban-vip-on-node2" rsc="vip" role="Started" node="node2" score="-INFINITY"/><rsc_location id="cli-prefer-other" rsc="other" node="node2" score="INFINITY"/></constraints>`
	moveToNode1  = "pcs resource move vip node1 --wait=1"
	notRunningEr = "resource vip is NOT running\n"
)

func newTestPcs(t *testing.T, s Settings, steps []pcsStep) (*Pcs, *fakePcs) {
	t.Helper()
	f := &fakePcs{steps: steps}
	if s.Resource == "" {
		s.Resource = "vip"
	}
	p, err := NewPcs(s, zerolog.Nop(), WithPcsRunner(f), WithPcsMoveTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	p.pollEvery = 10 * time.Millisecond
	p.cleanupTimeout = time.Second
	return p, f
}

// failedMove scripts a move to node1 of the resource on node2 that does
// not get there: the move's own steps, then Hold clearing the constraint
// cons the move left and locating the resource for its error.
func failedMove(cons string, move ...pcsStep) []pcsStep {
	steps := append([]pcsStep{{cmd: locate, stdout: onNode2}}, move...)
	return append(steps,
		pcsStep{cmd: query, stdout: cons},
		pcsStep{cmd: clear},
		pcsStep{cmd: query, stdout: noCons},
		pcsStep{cmd: locate, stdout: onNode2})
}

func checkRan(t *testing.T, f *fakePcs, want []pcsStep) {
	t.Helper()
	var w []string
	for _, s := range want {
		w = append(w, s.cmd)
	}
	if got, want := strings.Join(f.ran, "\n"), strings.Join(w, "\n"); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
}

func TestPcsHold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		node    string // Settings.Node
		steps   []pcsStep
		wantErr string // substring; empty means success
	}{
		{
			name: "already here",
			node: "node1",
			steps: []pcsStep{
				{cmd: locate, stdout: onNode1},
				{cmd: query, stdout: noCons},
			},
		},
		{
			name: "already here, node name from crm_node, leftover prefer removed",
			steps: []pcsStep{
				{cmd: "crm_node -n", stdout: "node1\n"},
				{cmd: locate, stdout: onNode1},
				{cmd: query, stdout: preferNode1},
				{cmd: clear, stdout: "Removing constraint: cli-prefer-vip\n"},
				{cmd: query, stdout: noCons},
			},
		},
		{
			name: "move, confirm, pcs already removed its constraint",
			node: "node1",
			steps: []pcsStep{
				{cmd: locate, stdout: onNode2},
				{cmd: moveToNode1, stderr: "Location constraint to move resource 'vip' has been created\n"},
				{cmd: locate, stdout: onNode1},
				{cmd: query, stdout: noCons},
			},
		},
		{
			name: "move, poll until it arrives, clear the prefer constraint",
			node: "node1",
			steps: []pcsStep{
				{cmd: locate, stderr: notRunningEr},
				{cmd: moveToNode1},
				{cmd: locate, stdout: onNode2},
				{cmd: locate, stderr: notRunningEr},
				{cmd: locate, stdout: onNode1},
				{cmd: query, stdout: preferNode1},
				{cmd: clear},
				{cmd: query, stdout: noCons},
			},
		},
		{
			name: "running on two nodes is moved",
			node: "node1",
			steps: []pcsStep{
				{cmd: locate, stdout: onNode1 + onNode2},
				{cmd: moveToNode1},
				{cmd: locate, stdout: onNode1},
				{cmd: query, stdout: noCons},
			},
		},
		{
			name:    "move times out: error, constraint cleared",
			node:    "node1",
			steps:   failedMove(preferNode1, pcsStep{cmd: moveToNode1, block: true}),
			wantErr: "moving vip resource vip to node1 (now on node2): pcs resource move vip node1 --wait=1: context deadline exceeded",
		},
		{
			name: "pcs succeeds but the resource never arrives: error, ban cleared",
			node: "node1",
			steps: failedMove(banNode2,
				pcsStep{cmd: moveToNode1},
				pcsStep{cmd: locate, stdout: onNode2, repeat: true}),
			wantErr: "did not arrive within 100ms: it is on node2",
		},
		{
			name: "pcs refuses: its stderr in the error, constraint cleared",
			node: "node1",
			steps: failedMove(preferNode1,
				pcsStep{cmd: moveToNode1, fail: "exit status 1", stderr: "Error: Unable to move resource 'vip' ... would move back\nRun 'pcs resource clear vip'\n"}),
			wantErr: "pcs resource move vip node1 --wait=1: exit status 1: Error: Unable to move resource 'vip' ... would move back ; Run 'pcs resource clear vip'",
		},
		{
			name: "clear does not take: error",
			node: "node1",
			steps: []pcsStep{
				{cmd: locate, stdout: onNode1},
				{cmd: query, stdout: preferNode1},
				{cmd: clear},
				{cmd: query, stdout: preferNode1},
			},
			wantErr: "constraints cli-prefer-vip still there after crm_resource --clear",
		},
		{
			name: "unknown resource",
			node: "node1",
			steps: []pcsStep{
				{cmd: locate, fail: "exit status 105", stderr: "crm_resource: Resource 'vip' not found\nError performing operation: No such object\n"},
			},
			wantErr: `resource "vip" (setting resource) is not in the cluster configuration: crm_resource --locate --resource vip: exit status 105: crm_resource: Resource 'vip' not found ; Error performing operation: No such object`,
		},
		{
			name: "crm_node fails",
			steps: []pcsStep{
				{cmd: "crm_node -n", fail: "exit status 102", stderr: "error: Could not connect to controller: Transport endpoint is not connected\n"},
			},
			wantErr: "this node's pacemaker name (set node to skip asking): crm_node -n: exit status 102: error: Could not connect",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := newTestPcs(t, Settings{Node: tc.node}, tc.steps)
			err := p.Hold(context.Background())
			if tc.wantErr == "" && err != nil {
				t.Errorf("Hold: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Hold error = %v, want it to contain %q", err, tc.wantErr)
			}
			checkRan(t, f, tc.steps)
		})
	}
}

// The move is bounded by the caller's context too, and the cleanup still
// runs after that context has ended.
func TestPcsHoldContextEnds(t *testing.T) {
	steps := failedMove(preferNode1, pcsStep{cmd: "pcs resource move vip node1 --wait=1", block: true})
	p, f := newTestPcs(t, Settings{Node: "node1"}, steps)
	p.moveTimeout = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Hold(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Hold = %v, want deadline exceeded", err)
	}
	checkRan(t, f, steps)
}

func TestPcsMoveWait(t *testing.T) {
	// 30s default: pcs waits twice, so --wait is (30-2)/2.
	p, f := newTestPcs(t, Settings{Node: "node1"}, []pcsStep{
		{cmd: locate, stdout: onNode2},
		{cmd: "pcs resource move vip node1 --wait=14"},
		{cmd: locate, stdout: onNode1},
		{cmd: query, stdout: noCons},
	})
	p.moveTimeout = 30 * time.Second
	if err := p.Hold(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.steps) != 0 {
		t.Errorf("unused steps: %v", f.steps)
	}
}

func TestPcsRelease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []pcsStep
	}{
		{"held here: nothing changes", []pcsStep{{cmd: locate, stdout: onNode1}}},
		{"elsewhere: nothing changes", []pcsStep{{cmd: locate, stdout: onNode2}}},
		// A move by the next primary is under way: its cli-prefer must
		// stay until that Hold removes it.
		{"cluster unreachable: still success", []pcsStep{{cmd: locate, fail: "exit status 102", stderr: "Could not connect to the CIB\n"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := newTestPcs(t, Settings{Node: "node1"}, tc.steps)
			if err := p.Release(context.Background()); err != nil {
				t.Errorf("Release: %v", err)
			}
			checkRan(t, f, tc.steps)
		})
	}
}

func TestPcsStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		steps  []pcsStep
		want   Status
		errSub string
	}{
		{"held", []pcsStep{{cmd: locate, stdout: onNode1}, {cmd: query, stdout: noCons}},
			Status{Held: true, Detail: "pacemaker resource vip runs on this node (node1)"}, ""},
		{"elsewhere with leftover", []pcsStep{{cmd: locate, stdout: onNode2}, {cmd: query, stdout: banNode2}},
			Status{Held: false, Detail: "pacemaker resource vip runs on node2, not on this node (node1); leftover constraints pin it: cli-ban-vip-on-node2 (pcs resource clear vip)"}, ""},
		{"stopped", []pcsStep{{cmd: locate, stderr: notRunningEr}, {cmd: query, stdout: noCons}},
			Status{Held: false, Detail: "pacemaker resource vip is not running on any node"}, ""},
		{"garbage", []pcsStep{{cmd: locate, stdout: "something else\n"}}, Status{}, "unrecognised output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := newTestPcs(t, Settings{Node: "node1"}, tc.steps)
			st, err := p.Status(context.Background())
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Errorf("Status error = %v, want %q", err, tc.errSub)
				}
			} else if err != nil || st != tc.want {
				t.Errorf("Status = %+v, %v\nwant %+v", st, err, tc.want)
			}
			checkRan(t, f, tc.steps)
		})
	}
}

func TestParseLocate(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: nodes joined by ",", or "error"
	}{
		{"resource vip is running on: node1\n", "node1"},
		{"resource vip is running on: node1", "node1"},
		{"resource vip is running on: node-1.example.com \n", "node-1.example.com"},
		{"resource pg-clone is running on: node1 Promoted\nresource pg-clone is running on: node2\n", "node1,node2"},
		{"resource ms is running on: node2 Master\n", "node2"},                              // Pacemaker 1.1 and 2.0
		{"resource vip is running on: node1\nresource vip is running on: node1\n", "node1"}, // listed twice
		{"\nresource vip is NOT running\n", ""},
		{"", "error"},
		{"Error performing operation: Transport endpoint is not connected", "error"},
	} {
		on, err := parseLocate(tc.in)
		got := strings.Join(on, ",")
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("parseLocate(%q) = %q (%v), want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCliConstraints(t *testing.T) {
	cib := `<constraints>
  <rsc_location id="cli-prefer-vip" rsc="vip" role="Started" node="node1" score="INFINITY"/>
  <rsc_location id="cli-ban-vip-on-node2" rsc="vip" role="Started" node="node2" score="-INFINITY"/>
  <rsc_location id="cli-ban-vip2-on-node2" rsc="vip2" node="node2" score="-INFINITY"/>
  <rsc_location id="location-vip-node3" rsc="vip" node="node3" score="100"/>
  <rsc_colocation id="col" rsc="vip" with-rsc="pg" score="INFINITY"/>
</constraints>`
	ids, err := parseCliConstraints(cib, "vip")
	if got := strings.Join(ids, ","); err != nil || got != "cli-prefer-vip,cli-ban-vip-on-node2" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := parseCliConstraints("<constraints>", "vip"); err == nil {
		t.Error("truncated XML: no error")
	}
}

func TestNewPcs(t *testing.T) {
	for _, tc := range []struct {
		s   Settings
		err string
	}{
		{Settings{Backend: "pcs"}, "needs resource"},
		{Settings{Backend: "pcs", Resource: "--force"}, `resource "--force": must not start with '-'`},
		{Settings{Backend: "pcs", Resource: "vip", Node: "a b"}, `node "a b": contains a space`},
		{Settings{Backend: "pcs", Resource: "vip"}, ""},
	} {
		b, err := New(tc.s, zerolog.Nop())
		if tc.err == "" {
			if err != nil || b.Name() != "pcs" {
				t.Errorf("New(%+v) = %v, %v", tc.s, b, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("New(%+v) error = %v, want %q", tc.s, err, tc.err)
		}
	}
}

// ExecRunner names the command and keeps its stderr in the error, and
// kills it when the context ends.
func TestExecRunner(t *testing.T) {
	_, _, err := ExecRunner{}.Run(context.Background(), "sh", "-c", "echo oops >&2; exit 3")
	var ce *CommandError
	if !errors.As(err, &ce) || err.Error() != "sh -c echo oops >&2; exit 3: exit status 3: oops" {
		t.Errorf("err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = ExecRunner{}.Run(ctx, "sh", "-c", "sleep 10 & sleep 10; wait")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("err = %v after %s", err, time.Since(start))
	}
	if _, _, err := (ExecRunner{}).Run(context.Background(), "pghook-no-such-command"); err == nil || !strings.Contains(err.Error(), "pghook-no-such-command") {
		t.Errorf("missing command: %v", err)
	}
}
