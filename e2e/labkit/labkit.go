//go:build e2e

// Package labkit runs one lab of e2e/lab (lab.sh) for a package of
// end-to-end tests: down and up before its tests, down after, and the
// helpers every such package uses to drive it.
package labkit

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Lab is a running lab: the repository it comes from and its settings
// (`lab.sh env`: LAB_N1_IP, LAB_DIR, …).
type Lab struct {
	Repo string
	Env  map[string]string
	// Dump, when set, is called by Eventually before it fails the test
	// (the nodes' logs, say).
	Dump func(t *testing.T)
}

// Main is a test package's TestMain: as root, with PGHOOK_BIN (or
// LAB_DEB) set, it brings the lab up with settings (LAB_* variables),
// calls ready with it (an error stops the run), runs the tests and takes
// the lab down (LAB_KEEP=1 leaves it up and does not clean up before).
// name prefixes its messages. It exits the process.
func Main(m *testing.M, name string, settings map[string]string, ready func(*Lab) error) {
	l := &Lab{Repo: repoRoot()}
	if os.Geteuid() != 0 {
		fmt.Printf("%s: needs root (network namespaces); skipped\n", name)
		os.Exit(0)
	}
	if os.Getenv("PGHOOK_BIN") == "" && os.Getenv("LAB_DEB") == "" {
		fmt.Printf("%s: PGHOOK_BIN must name the built binary (make e2e)\n", name)
		os.Exit(1)
	}
	for k, v := range settings {
		os.Setenv(k, v)
	}
	keep := os.Getenv("LAB_KEEP") != ""
	if !keep {
		if out, err := l.Cmd("down"); err != nil {
			fmt.Printf("%s: lab down (cleanup before) failed: %v\n%s\n", name, err, out)
			os.Exit(1)
		}
	}
	if out, err := l.Cmd("up"); err != nil {
		fmt.Printf("%s: lab up failed: %v\n%s\n", name, err, out)
		l.Cmd("down")
		os.Exit(1)
	}
	code := func() int {
		out, err := l.Cmd("env")
		if err != nil {
			fmt.Printf("%s: lab env: %v\n%s\n", name, err, out)
			return 1
		}
		l.Env = map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				l.Env[k] = v
			}
		}
		if err := ready(l); err != nil {
			fmt.Printf("%s: %v\n", name, err)
			return 1
		}
		return m.Run()
	}()
	if !keep {
		if out, err := l.Cmd("down"); err != nil {
			fmt.Printf("%s: lab down failed: %v\n%s\n", name, err, out)
			code = 1
		}
	}
	os.Exit(code)
}

// repoRoot is the nearest directory above the test's working directory
// (its package's) that holds go.mod.
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// Cmd runs `lab.sh ARGS…` and returns its combined output.
func (l *Lab) Cmd(args ...string) (string, error) {
	cmd := exec.Command("bash", append([]string{filepath.Join(l.Repo, "e2e/lab/lab.sh")}, args...)...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// Lib runs a function of e2e/lab/lib.sh and returns its trimmed stdout.
func (l *Lab) Lib(fn string, args ...string) (string, error) {
	script := fmt.Sprintf("source %q; %s \"$@\"", filepath.Join(l.Repo, "e2e/lab/lib.sh"), fn)
	cmd := exec.Command("bash", append([]string{"-c", script, "lib"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return strings.TrimSpace(out.String()), fmt.Errorf("%s %v: %w: %s", fn, args, err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// PghookAs runs pghook as postgres in node's namespace with its
// pghook.yaml, as a DBA would; it returns the combined output and the exit
// code.
func (l *Lab) PghookAs(t *testing.T, node string, args ...string) (string, int) {
	t.Helper()
	script := fmt.Sprintf("source %q; lab_exec_pg \"$1\" \"$(lab_pghook)\" --config \"$(lab_pghook_yaml \"$1\")\" \"${@:2}\"", filepath.Join(l.Repo, "e2e/lab/lib.sh"))
	cmd := exec.Command("bash", append([]string{"-c", script, "lib", node}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("pghook on %s: %v", node, err)
	}
	return string(out), 0
}

// Eventually calls f every 200 ms until it succeeds; after timeout the
// test fails with f's last error and the lab's status (after Dump).
func (l *Lab) Eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	if l.Dump != nil {
		l.Dump(t)
	}
	out, _ := l.Cmd("status")
	t.Fatalf("after %s still not %s: %v\n%s", timeout, what, err, out)
}

// EnvOr is the environment variable k, or def when it is empty.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Must runs a function of e2e/lab/lib.sh and fails the test when it fails.
func (l *Lab) Must(t *testing.T, fn string, args ...string) string {
	t.Helper()
	out, err := l.Lib(fn, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// NodeIP is node n's address in the lab (LAB_N1_IP, …).
func (l *Lab) NodeIP(n string) string { return l.Env["LAB_"+strings.ToUpper(n)+"_IP"] }

var restClient = &http.Client{Timeout: 300 * time.Millisecond}

// Primaries asks every node's Patroni for /primary at once and returns the
// nodes that answer 200, sorted.
func (l *Lab) Primaries(nodes []string) []string {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var got []string
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := restClient.Get("http://" + l.NodeIP(n) + ":8008/primary")
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(got)
	return got
}

// Lookup asks the lab's BIND (LAB_DNS_SERVER; not recursive, UDP) for
// name's A records, sorted; no record is an empty answer.
func (l *Lab) Lookup(ctx context.Context, name string) ([]string, error) {
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	m := new(dns.Msg).SetQuestion(name, dns.TypeA)
	m.RecursionDesired = false
	r, _, err := c.ExchangeContext(ctx, m, l.Env["LAB_DNS_SERVER"]+":53")
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("%s: rcode %s", name, dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out, nil
}

// Fault is one way the primary goes: Cause does it to the old primary and
// returns the member Patroni is asked to promote ("": whichever it
// elects); Restore, when set, brings the old primary back.
type Fault struct {
	Name    string
	Cause   func(old string) string
	Restore func(old string)
}

// Switchover asks Patroni to hand over from the old primary to to(old).
func (l *Lab) Switchover(t *testing.T, to func(old string) string) Fault {
	return Fault{Name: "switchover", Cause: func(old string) string {
		cand := to(old)
		l.Must(t, "lab_switchover", old, cand)
		return cand
	}}
}

// KillNine kills the old primary's Patroni and postmaster (kill -9) and
// starts Patroni again after the event.
func (l *Lab) KillNine(t *testing.T) Fault {
	return Fault{Name: "kill -9",
		Cause:   func(old string) string { l.Must(t, "lab_kill_node", old); return "" },
		Restore: func(old string) { l.Must(t, "lab_start_patroni", old) }}
}

// LinkCut takes the old primary's link down and up again after the event.
func (l *Lab) LinkCut(t *testing.T) Fault {
	return Fault{Name: "link cut",
		Cause:   func(old string) string { l.Must(t, "lab_link_down", old); return "" },
		Restore: func(old string) { l.Must(t, "lab_link_up", old) }}
}
