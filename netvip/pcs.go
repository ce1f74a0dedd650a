package netvip

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Pcs is the Pacemaker backend: the VIP is a cluster resource, normally an
// ocf:heartbeat:IPaddr2 primitive (Settings.Resource), and Pacemaker adds,
// monitors and announces the address. pghook only tells the cluster where
// the resource should run.
//
//   - Hold: if `crm_resource --locate` shows the resource on this node (and
//     nowhere else), nothing moves. Otherwise `pcs resource move RES NODE
//     --wait=N`, bounded by the move timeout and the context, then polls
//     `crm_resource --locate` until the resource runs here. In every case
//     Hold ends by removing any cli-prefer-RES / cli-ban-RES-on-* location
//     constraint (`crm_resource --clear`), also when the move failed or timed
//     out (with a fresh, short context), so nothing pins or bans the VIP
//     after Hold returns. A Hold killed mid-move can leave one; the next
//     Hold on any node removes it. pghook thus owns the cli-* constraints
//     of this resource: an admin's `pcs resource ban` on it is dropped by
//     the next Hold; keep the VIP off a node with a regular location
//     constraint (`pcs constraint location RES avoids NODE`) instead, which
//     Hold leaves alone (the move then fails).
//   - Release: changes nothing and returns nil. Pacemaker already keeps a
//     primitive on at most one node, so the VIP cannot end up on two hosts;
//     the next primary's Hold pulls it over. Moving it away here would need
//     a cli-ban (a constraint to clean up later, and on a one-node cluster
//     it would just stop the VIP), and touching constraints here would race
//     with the new primary's move, which in a switchover runs at the same
//     time (Patroni calls on_stop on the old primary ~0.1 s after
//     on_role_change on the new one). To take the VIP down for good, use
//     `pcs resource disable RES`.
//   - Status: Held when the resource runs on this node; Detail names where
//     it runs and any leftover cli-* constraint.
//
// The caller needs write access to the CIB: root, hacluster, or a member
// of the haclient group.
type Pcs struct {
	res  string
	run  PcsRunner
	log  zerolog.Logger
	node string

	mu       sync.Mutex // guards nodeName
	nodeName string

	moveTimeout    time.Duration
	cleanupTimeout time.Duration
	pollEvery      time.Duration
}

// PcsRunner runs one external command and returns what it wrote to
// standard output and standard error. A failed command returns a
// *CommandError. It must stop the command when ctx ends.
type PcsRunner interface {
	Run(ctx context.Context, name string, args ...string) (stdout, stderr string, err error)
}

// PcsOption configures the pcs backend.
type PcsOption func(*Pcs)

// NewPcs returns the pcs backend for s. It checks the names but does not
// ask the cluster yet: Hold and Status report an unknown resource.
func NewPcs(s Settings, log zerolog.Logger, opts ...PcsOption) (*Pcs, error) {
	if s.Resource == "" {
		return nil, errors.New("netvip: backend pcs needs resource (the Pacemaker resource that carries the VIP)")
	}
	if err := checkPcmkID(s.Resource); err != nil {
		return nil, fmt.Errorf("netvip: resource %q: %w", s.Resource, err)
	}
	if s.Node != "" {
		if err := checkPcmkID(s.Node); err != nil {
			return nil, fmt.Errorf("netvip: node %q: %w", s.Node, err)
		}
	}
	p := &Pcs{
		res: s.Resource, node: s.Node, run: ExecRunner{},
		log:         log.With().Str("resource", s.Resource).Logger(),
		moveTimeout: 30 * time.Second, cleanupTimeout: 10 * time.Second, pollEvery: 200 * time.Millisecond,
	}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// checkPcmkID rejects names that could not be a Pacemaker resource or node
// name, or that a command would read as an option.
func checkPcmkID(s string) error {
	if strings.HasPrefix(s, "-") {
		return errors.New("must not start with '-'")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(`"'<>&`, r) }) {
		return errors.New("contains a space, control or XML special character")
	}
	return nil
}

// Name implements Backend.
func (p *Pcs) Name() string { return "pcs" }

// Hold implements Backend.
func (p *Pcs) Hold(ctx context.Context) error {
	node, err := p.localNode(ctx)
	if err != nil {
		return fmt.Errorf("holding vip resource %s: %w", p.res, err)
	}
	on, err := p.locate(ctx)
	if err != nil {
		return fmt.Errorf("holding vip resource %s: %w", p.res, err)
	}
	if onlyOn(on, node) {
		if err := p.clearLeftovers(ctx); err != nil {
			return fmt.Errorf("vip resource %s runs on %s, but: %w", p.res, node, err)
		}
		p.log.Debug().Str("node", node).Msg("vip resource already runs here")
		return nil
	}
	start := time.Now()
	moveErr := p.move(ctx, node)
	// Whatever happened, leave no cli-prefer/cli-ban behind, even when ctx
	// has ended: a leftover one pins or bans the VIP for good.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cleanupTimeout)
	defer cancel()
	clearErr := p.clearLeftovers(cctx)
	if moveErr != nil {
		where := "unknown"
		if on, err := p.locate(cctx); err == nil {
			where = describeOn(on)
		}
		err := fmt.Errorf("moving vip resource %s to %s (now %s): %w", p.res, node, where, moveErr)
		if clearErr != nil {
			err = errors.Join(err, clearErr)
		}
		return err
	}
	if clearErr != nil {
		return fmt.Errorf("vip resource %s moved to %s, but: %w", p.res, node, clearErr)
	}
	p.log.Info().Str("node", node).Strs("from", on).Dur("took", time.Since(start)).Msg("moved vip resource here")
	return nil
}

// move runs `pcs resource move` and waits until the resource runs only on
// node, within the move timeout.
func (p *Pcs) move(ctx context.Context, node string) error {
	budget := p.moveTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < budget {
		budget = time.Until(dl)
	}
	mctx, cancel := context.WithTimeout(ctx, p.moveTimeout)
	defer cancel()
	// pcs waits twice (after adding the constraint, and after removing it
	// again), each time up to --wait seconds; keep ~2s for its start-up.
	wait := max(1, int((budget-2*time.Second)/time.Second)/2)
	if _, _, err := p.run.Run(mctx, "pcs", "resource", "move", p.res, node, "--wait="+strconv.Itoa(wait)); err != nil {
		return err
	}
	// pcs returns once the cluster is idle; confirm, and poll in case this
	// pcs returned earlier.
	var last error
	for {
		on, err := p.locate(mctx)
		if err == nil && onlyOn(on, node) {
			return nil
		}
		if mctx.Err() == nil {
			last = err
			if err == nil {
				last = fmt.Errorf("it is %s", describeOn(on))
			}
		}
		select {
		case <-mctx.Done():
			if last == nil {
				last = mctx.Err()
			}
			return fmt.Errorf("pcs resource move returned, but the resource did not arrive within %s: %w", p.moveTimeout, last)
		case <-time.After(p.pollEvery):
		}
	}
}

// Release implements Backend: it changes nothing (see Pcs).
func (p *Pcs) Release(ctx context.Context) error {
	node, err := p.localNode(ctx)
	if err == nil {
		var on []string
		if on, err = p.locate(ctx); err == nil {
			if slices.Contains(on, node) {
				p.log.Info().Str("node", node).Msg("vip resource still runs here: Pacemaker keeps it until the next primary moves it (release with the pcs backend changes nothing)")
			}
			return nil
		}
	}
	p.log.Warn().Err(err).Msg("release: cannot tell where the vip resource runs (release with the pcs backend changes nothing)")
	return nil
}

// Status implements Backend.
func (p *Pcs) Status(ctx context.Context) (Status, error) {
	node, err := p.localNode(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("vip resource %s: %w", p.res, err)
	}
	on, err := p.locate(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("vip resource %s: %w", p.res, err)
	}
	st := Status{Held: slices.Contains(on, node)}
	switch {
	case st.Held:
		st.Detail = fmt.Sprintf("pacemaker resource %s runs on this node (%s)", p.res, strings.Join(on, ", "))
	case len(on) == 0:
		st.Detail = fmt.Sprintf("pacemaker resource %s is not running on any node", p.res)
	default:
		st.Detail = fmt.Sprintf("pacemaker resource %s runs on %s, not on this node (%s)", p.res, strings.Join(on, ", "), node)
	}
	if ids, err := p.constraints(ctx); err != nil {
		st.Detail += "; constraints unknown: " + err.Error()
	} else if len(ids) > 0 {
		st.Detail += "; leftover constraints pin it: " + strings.Join(ids, ", ") + " (pcs resource clear " + p.res + ")"
	}
	return st, nil
}

// localNode is Settings.Node, or what `crm_node -n` prints, remembered.
func (p *Pcs) localNode(ctx context.Context) (string, error) {
	if p.node != "" {
		return p.node, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nodeName != "" {
		return p.nodeName, nil
	}
	out, _, err := p.run.Run(ctx, "crm_node", "-n")
	if err != nil {
		return "", fmt.Errorf("this node's pacemaker name (set node to skip asking): %w", err)
	}
	n := strings.TrimSpace(out)
	if n == "" || strings.ContainsAny(n, " \n") {
		return "", fmt.Errorf("this node's pacemaker name: crm_node -n printed %q (set node)", out)
	}
	p.nodeName = n
	return n, nil
}

// locate returns the nodes the resource runs on.
func (p *Pcs) locate(ctx context.Context) ([]string, error) {
	out, errOut, err := p.run.Run(ctx, "crm_resource", "--locate", "--resource", p.res)
	if err != nil {
		if strings.Contains(errOut, "not found") {
			return nil, fmt.Errorf("resource %q (setting resource) is not in the cluster configuration: %w", p.res, err)
		}
		return nil, err
	}
	return parseLocate(out + "\n" + errOut)
}

// parseLocate reads `crm_resource --locate` output: "resource X is running
// on: NODE" (Pacemaker 1.1 to 2.1, with " Promoted" or " Master" after
// promoted clone instances) once per node, or "resource X is NOT running".
func parseLocate(text string) ([]string, error) {
	var on []string
	notRunning := false
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, " is running on:"); i >= 0 {
			if f := strings.Fields(line[i+len(" is running on:"):]); len(f) > 0 && !slices.Contains(on, f[0]) {
				on = append(on, f[0])
			}
		} else if strings.Contains(line, " is NOT running") {
			notRunning = true
		}
	}
	if len(on) == 0 && !notRunning {
		return nil, fmt.Errorf("crm_resource --locate: unrecognised output %q", strings.TrimSpace(text))
	}
	return on, nil
}

// constraints returns the ids of the cli-prefer/cli-ban constraints on the
// resource (crm_resource --move/--ban, pcs resource move/ban).
func (p *Pcs) constraints(ctx context.Context) ([]string, error) {
	out, _, err := p.run.Run(ctx, "cibadmin", "--query", "--scope", "constraints")
	if err != nil {
		return nil, err
	}
	return parseCliConstraints(out, p.res)
}

func parseCliConstraints(cib, res string) ([]string, error) {
	var ids []string
	d := xml.NewDecoder(strings.NewReader(cib))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return ids, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cibadmin --query --scope constraints: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "rsc_location" {
			continue
		}
		var id, rsc string
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "id":
				id = a.Value
			case "rsc":
				rsc = a.Value
			}
		}
		if rsc == res && (strings.HasPrefix(id, "cli-prefer-") || strings.HasPrefix(id, "cli-ban-")) {
			ids = append(ids, id)
		}
	}
}

// clearLeftovers removes cli-* constraints on the resource, if there are
// any, and checks that they are gone.
func (p *Pcs) clearLeftovers(ctx context.Context) error {
	ids, err := p.constraints(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	p.log.Info().Strs("constraints", ids).Msg("removing move/ban constraints")
	if _, _, err := p.run.Run(ctx, "crm_resource", "--clear", "--resource", p.res); err != nil {
		return fmt.Errorf("removing constraints %s: %w", strings.Join(ids, ", "), err)
	}
	if ids, err = p.constraints(ctx); err != nil {
		return err
	}
	if len(ids) > 0 {
		return fmt.Errorf("constraints %s still there after crm_resource --clear (remove them: pcs resource clear %s)", strings.Join(ids, ", "), p.res)
	}
	return nil
}

func onlyOn(on []string, node string) bool { return len(on) == 1 && on[0] == node }

func describeOn(on []string) string {
	if len(on) == 0 {
		return "not running"
	}
	return "on " + strings.Join(on, ", ")
}

// CommandError is a failed external command, with what it wrote to
// standard error.
type CommandError struct {
	Cmd    string // the command line
	Err    error
	Stderr string
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if s := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(e.Stderr), "\n", " ; ")), " "); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExecRunner runs commands with os/exec. A command not on PATH is looked
// for in /usr/sbin, where Debian puts the Pacemaker tools (a callback's
// PATH may lack it). When ctx ends, the whole process group is killed.
type ExecRunner struct{}

// Run implements PcsRunner.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) (string, string, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	path, err := exec.LookPath(name)
	if err != nil {
		if alt, err2 := exec.LookPath("/usr/sbin/" + name); err2 == nil {
			path = alt
		} else {
			return "", "", &CommandError{Cmd: line, Err: err}
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(cmd.Environ(), "LC_ALL=C")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	err = cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return out.String(), errOut.String(), &CommandError{Cmd: line, Err: err, Stderr: errOut.String()}
	}
	return out.String(), errOut.String(), nil
}
