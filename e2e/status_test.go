//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statusDoc is the part of `pghook status --json` the test reads.
type statusDoc struct {
	Scopes []struct {
		Scope   string `json:"scope"`
		Source  string `json:"source"`
		Leader  string `json:"leader"`
		Members []struct {
			Name     string `json:"name"`
			Role     string `json:"role"`
			State    string `json:"state"`
			LagBytes *int64 `json:"lag_bytes"`
			VIP      bool   `json:"vip"`
			Local    bool   `json:"local"`
		} `json:"members"`
		VIP *struct {
			HeldLocally bool   `json:"held_locally"`
			Answer      string `json:"answer"`
		} `json:"vip"`
		Problems []string `json:"problems"`
		ExitCode int      `json:"exit_code"`
	} `json:"scopes"`
	ExitCode int `json:"exit_code"`
}

// pghookStatus runs `pghook status ARGS` as postgres in NODE's namespace,
// with the environment Patroni gets there (lab_exec_pg), and returns
// stdout and the exit code.
func pghookStatus(t *testing.T, node string, args ...string) (string, int) {
	t.Helper()
	pgh, err := lib(t, "lab_pghook")
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("source %q; lab_exec_pg \"$@\"", filepath.Join(repo, "e2e/lab/lib.sh"))
	cmd := exec.Command("bash", append([]string{"-c", script, "lib", node, pgh, "status", "--scope", scope}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("pghook status on %s: %v: %s", node, err, errb.String())
	}
	if errb.Len() > 0 {
		t.Logf("pghook status on %s, stderr: %s", node, errb.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// checkStatus runs `pghook status --json` on node and checks that it
// names leader, shows every other member streaming, and the VIP answering
// on the leader only, with exit code 0.
func checkStatus(t *testing.T, node, leader string) error {
	out, code := pghookStatus(t, node, "--json")
	var d statusDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return fmt.Errorf("status on %s (exit %d) is not JSON: %v: %q", node, code, err, out)
	}
	if len(d.Scopes) != 1 {
		return fmt.Errorf("status on %s: %d scopes: %s", node, len(d.Scopes), out)
	}
	s := d.Scopes[0]
	var errs []error
	if code != 0 || d.ExitCode != 0 || s.ExitCode != 0 {
		errs = append(errs, fmt.Errorf("exit %d (JSON %d), problems %q", code, d.ExitCode, s.Problems))
	}
	if s.Leader != leader {
		errs = append(errs, fmt.Errorf("leader %q, want %s", s.Leader, leader))
	}
	if len(s.Members) != len(nodes) {
		errs = append(errs, fmt.Errorf("%d members, want %d", len(s.Members), len(nodes)))
	}
	for _, m := range s.Members {
		if m.Local != (m.Name == node) {
			errs = append(errs, fmt.Errorf("member %s local=%v on %s", m.Name, m.Local, node))
		}
		if m.Name == leader {
			if m.Role != "leader" || !m.VIP {
				errs = append(errs, fmt.Errorf("leader %s: role %q, vip %v", m.Name, m.Role, m.VIP))
			}
			continue
		}
		if m.Role != "replica" && m.Role != "sync_standby" || m.State != "streaming" || m.LagBytes == nil || m.VIP {
			errs = append(errs, fmt.Errorf("replica %s: role %q state %q lag %v vip %v", m.Name, m.Role, m.State, m.LagBytes, m.VIP))
		}
	}
	if s.VIP == nil || s.VIP.Answer != leader || s.VIP.HeldLocally != (node == leader) {
		errs = append(errs, fmt.Errorf("VIP %+v, want answered by %s (held locally: %v)", s.VIP, leader, node == leader))
	}
	if len(errs) > 0 {
		return fmt.Errorf("status on %s: %w\n%s", node, errors.Join(errs...), out)
	}
	return nil
}

// TestStatus: `pghook status`, run by postgres (no capabilities: the VIP
// helper probes the link) on a replica, names the leader, both replicas
// streaming and the VIP on the leader; after a switchover it names the new
// leader, on every node.
func TestStatus(t *testing.T) {
	requireVIP(t)
	old := vipOnLeader(t, 90*time.Second)
	replica := otherNode(old)
	eventually(t, 30*time.Second, "pghook status on "+replica+" naming "+old, func() error { return checkStatus(t, replica, old) })

	// The table, as a DBA reads it (and how long a monitoring check takes).
	start := time.Now()
	tab, code := pghookStatus(t, replica)
	t.Logf("pghook status as postgres on %s took %v (the link is probed for 200ms)", replica, time.Since(start).Round(time.Millisecond))
	for _, want := range []string{
		"+ Cluster: " + scope + " ", "| Member | Host", "| Role ", "| Lag in MB | VIP |",
		fmt.Sprintf("VIP %s/24 on eth0 (netlink): %s", vipAddr, old),
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	if code != 0 || !strings.Contains(tab, "| "+old+" ") || !strings.Contains(tab, "| Leader ") || strings.Count(tab, "| streaming ") != 2 {
		t.Errorf("table (exit %d) does not show %s leading and two streaming replicas:\n%s", code, old, tab)
	}
	t.Logf("pghook status on %s (postgres):\n%s", replica, tab)

	// The local Patroni hangs (SIGSTOP): status asks another member's
	// REST API, found in the DCS, and still sees the whole cluster.
	if _, err := lib(t, "lab_signal_patroni", replica, "STOP"); err != nil {
		t.Fatal(err)
	}
	out, code := pghookStatus(t, replica, "--json")
	lib(t, "lab_signal_patroni", replica, "CONT")
	var d statusDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Scopes) != 1 {
		t.Fatalf("status with %s's Patroni stopped (exit %d): %v\n%s", replica, code, err, out)
	}
	if s := d.Scopes[0]; code != 0 || s.Leader != old || len(s.Members) != len(nodes) || strings.Contains(s.Source, "10.251.77.1"+replica[1:]+":") {
		t.Errorf("with %s's Patroni stopped: exit %d, answered by %q:\n%s", replica, code, s.Source, out)
	} else {
		t.Logf("with %s's Patroni stopped, /cluster came from %s", replica, s.Source)
	}

	// Switch over to the third node: status follows it everywhere.
	cand := otherNode(old, replica)
	if out, err := lib(t, "lab_switchover", old, cand); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if l := vipOnLeader(t, 60*time.Second); l != cand {
		t.Fatalf("after the switchover the leader is %s, want %s", l, cand)
	}
	for _, n := range nodes {
		eventually(t, 30*time.Second, "pghook status on "+n+" naming "+cand, func() error { return checkStatus(t, n, cand) })
	}
	tab, _ = pghookStatus(t, cand)
	if !strings.Contains(tab, fmt.Sprintf("(netlink): %s (this host)", cand)) {
		t.Errorf("on the new leader the table does not say it holds the VIP:\n%s", tab)
	}
	t.Logf("after the switchover, on %s:\n%s", cand, tab)
}
