//go:build e2e

package e2e

// One host, two scopes: the first scope of the lab, and a Debian cluster
// (pg_createcluster 15 standalondb --port 5433) that `pghook install
// --debian-cluster --create-roles` adopts on n1, whose replicas n2 and n3
// are built by create_replica from a `pghook backup` (config_dir included).
// Each scope has its own watchers and VIP; events in one must not move
// the other's VIP. Brought up and down by the test (lab.sh standalone-up
// and standalone-down), so the other tests run on the lab alone.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	saScope = "standalondb"
	saVIP   = "10.251.77.101"
)

// twoVIPs samples both VIPs' holders every sampleEvery.
type twoVIPs struct {
	once    sync.Once
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples int
	doubles map[string]int      // VIP → samples with 2+ holders
	seen    map[string][]string // VIP → distinct holder sets, in order
	errs    int
}

func sampleVIPs(t *testing.T) *twoVIPs {
	r := newHolderReader(t)
	w := &twoVIPs{stop: make(chan struct{}), doubles: map[string]int{}, seen: map[string][]string{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer r.Close()
		tk := time.NewTicker(sampleEvery)
		defer tk.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tk.C:
			}
			for _, v := range []string{vipAddr, saVIP} {
				h, err := r.holding(v)
				w.mu.Lock()
				if err != nil {
					w.errs++
				} else {
					if len(h) > 1 {
						w.doubles[v]++
					}
					k := strings.Join(h, "+")
					if s := w.seen[v]; len(s) == 0 || s[len(s)-1] != k {
						w.seen[v] = append(s, k)
					}
				}
				w.mu.Unlock()
			}
			w.mu.Lock()
			w.samples++
			w.mu.Unlock()
		}
	}()
	return w
}

// reset forgets the holder history (not the doubles).
func (w *twoVIPs) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = map[string][]string{}
}

func (w *twoVIPs) history(vip string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen[vip]...)
}

func (w *twoVIPs) Stop() { w.once.Do(func() { close(w.stop) }); w.wg.Wait() }

// vipAlone waits until vip is held by node alone.
func vipAlone(t *testing.T, vip, node string, timeout time.Duration) {
	t.Helper()
	r := newHolderReader(t)
	defer r.Close()
	eventually(t, timeout, vip+" on "+node+" alone", func() error {
		h, err := r.holding(vip)
		if err == nil && (len(h) != 1 || h[0] != node) {
			err = fmt.Errorf("held by %v", h)
		}
		return err
	})
}

func saLeader(t *testing.T) string {
	t.Helper()
	var l string
	eventually(t, 90*time.Second, "a single "+saScope+" leader", func() (err error) {
		l, err = lib(t, "lab_sa_leader")
		return err
	})
	return l
}

func saHealthy(t *testing.T) {
	t.Helper()
	eventually(t, 180*time.Second, saScope+" healthy (two replicas streaming)", func() error {
		_, err := lib(t, "lab_sa_healthy")
		return err
	})
}

// rostersRight: on every node both rows of the node are there, with the
// role each scope's Patroni reports.
func rostersRight(t *testing.T, l1, l2 string) {
	t.Helper()
	eventually(t, 60*time.Second, "both roster rows right on every node", func() error {
		for _, n := range nodes {
			rs, err := roster(t, n)
			if err != nil {
				return err
			}
			for s, l := range map[string]string{scope: l1, saScope: l2} {
				want := "replica"
				if n == l {
					want = "primary"
				}
				r, ok := rs[s+"/"+n]
				if !ok || r["role"] != want {
					return fmt.Errorf("%s: row %s/%s %v, want role %s", n, s, n, r, want)
				}
			}
			if r := rs[saScope+"/"+n]; !strings.HasSuffix(r["listen"], ":5433") || r["data_dir"] != filepath.Join(labDir, n, "sa", "data") {
				return fmt.Errorf("%s: row %s/%s lacks the second scope's facts: %v", n, saScope, n, r)
			}
		}
		return nil
	})
}

// pghookAs runs pghook ARGS as postgres in NODE's namespace: stdout,
// stderr and exit code.
func pghookAs(t *testing.T, node string, args ...string) (string, string, int) {
	t.Helper()
	pgh, err := lib(t, "lab_pghook")
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("source %q; lab_exec_pg \"$@\"", filepath.Join(repo, "e2e/lab/lib.sh"))
	cmd := exec.Command("bash", append([]string{"-c", script, "lib", node, pgh}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("pghook %v on %s: %v", args, node, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// statusAll runs `pghook status --json` (every scope) on node.
func statusAll(t *testing.T, node string) (statusDoc, int, string) {
	t.Helper()
	out, errOut, code := pghookAs(t, node, "status", "--json")
	var d statusDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("status on %s (exit %d) is not JSON: %v: %q\nstderr: %s", node, code, err, out, errOut)
	}
	return d, code, out
}

func TestSecondScope(t *testing.T) {
	requireVIP(t)
	if _, err := lib(t, "lab_wait_healthy", "120"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if out, err := labCmd("standalone-up"); err != nil {
		t.Fatalf("lab.sh standalone-up: %v\n%s", err, out)
	}
	t.Logf("second scope adopted and replicated in %v", time.Since(t0).Round(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			// standalone-down removes them: what each watcher of the second scope saw.
			for _, n := range nodes {
				for _, f := range []string{"vipwatch.log", "patroni.log"} {
					b, _ := os.ReadFile(filepath.Join(labDir, n, "sa", f))
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					if len(lines) > 40 {
						lines = lines[len(lines)-40:]
					}
					t.Logf("---- %s sa/%s (tail) ----\n%s", n, f, strings.Join(lines, "\n"))
				}
			}
		}
		if os.Getenv("LAB_KEEP") != "" {
			return
		}
		if out, err := labCmd("standalone-down"); err != nil {
			t.Errorf("lab.sh standalone-down: %v\n%s", err, out)
		}
	})
	saHealthy(t)

	// The adoption: install created the roles, said what was left, no password.
	log, _ := os.ReadFile(filepath.Join(labDir, "n1", "sa", "install.log"))
	for _, want := range []string{"role       create role replicator", "role       create role rewind_user", "the one step left is yours", "pg_ctlcluster 15 " + saScope + " stop"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("n1's adoption output lacks %q:\n%s", want, log)
		}
	}
	for _, k := range []string{"superuser", "replication", "rewind"} {
		b, _ := os.ReadFile(filepath.Join(labDir, "secrets", saScope, k))
		if pw := strings.TrimSpace(string(b)); pw == "" || bytes.Contains(log, []byte(pw)) {
			t.Errorf("the %s secret is missing or in install's output", k)
		}
	}
	// Patroni kept the standalone cluster's rows; the replicas have them, and
	// their config_dir restored from the backup.
	l2 := saLeader(t)
	for _, n := range nodes {
		eventually(t, 60*time.Second, n+" having the standalone rows", func() error {
			out, err := lib(t, "lab_sa_psql", n, "-c", "select count(*) from public.sa_rows")
			if err == nil && out != "1000" {
				err = fmt.Errorf("%q rows", out)
			}
			return err
		})
		base := filepath.Join("/etc/netns/pgh-"+n, "postgresql/15", saScope, "postgresql.base.conf")
		if _, err := os.Stat(base); err != nil {
			t.Errorf("%s: no config_dir (%v)", n, err)
		}
		out, err := lib(t, "lab_sa_psql", n, "-c", "show config_file")
		if err != nil || out != "/etc/postgresql/15/"+saScope+"/postgresql.conf" {
			t.Errorf("%s: config_file %q (%v)", n, out, err)
		}
		out, err = lib(t, "lab_sa_psql", n, "-c", "show data_directory")
		if err != nil || out != filepath.Join(labDir, n, "sa", "data") {
			t.Errorf("%s: data_directory %q (%v), want its own", n, out, err)
		}
	}

	w := sampleVIPs(t)
	defer w.Stop()
	l1 := leader(t)
	vipAlone(t, vipAddr, l1, 60*time.Second)
	vipAlone(t, saVIP, l2, 60*time.Second)
	rostersRight(t, l1, l2)

	// pghook status: every scope of pghook.yaml, both healthy.
	eventually(t, 60*time.Second, "pghook status exit 0 for both scopes", func() error {
		d, code, out := statusAll(t, otherNode(l1))
		if code != 0 || len(d.Scopes) != 2 {
			return fmt.Errorf("exit %d, %d scopes:\n%s", code, len(d.Scopes), out)
		}
		for _, s := range d.Scopes {
			if s.ExitCode != 0 || s.VIP == nil || s.VIP.Answer == "" {
				return fmt.Errorf("scope %s: exit %d, VIP %+v, problems %q", s.Scope, s.ExitCode, s.VIP, s.Problems)
			}
		}
		return nil
	})
	// pghook env for the second scope.
	envOut, _, code := pghookAs(t, l2, "env", "-q", saScope)
	if code != 0 || !strings.Contains(envOut, "export PGPORT='5433'") || !strings.Contains(envOut, filepath.Join(labDir, l2, "sa", "data")) {
		t.Errorf("pghook env %s on %s (exit %d):\n%s", saScope, l2, code, envOut)
	}

	// Each scope's events move its own VIP only.
	moved := func(what, vip, to, other, otherHolder string) {
		t.Helper()
		vipAlone(t, vip, to, 60*time.Second)
		time.Sleep(time.Second)
		if h := w.history(other); len(h) != 1 || h[0] != otherHolder {
			t.Errorf("%s: the other scope's VIP %s moved: holders %v, want %s throughout", what, other, h, otherHolder)
		}
		t.Logf("%s: %s now on %s; %s stayed on %s", what, vip, to, other, otherHolder)
	}

	w.reset()
	cand := otherNode(l2)
	if out, err := lib(t, "lab_sa_switchover", l2, cand); err != nil {
		t.Fatalf("switchover of %s: %v\n%s", saScope, err, out)
	}
	eventually(t, 60*time.Second, cand+" leading "+saScope, func() error {
		l, err := lib(t, "lab_sa_leader")
		if err == nil && l != cand {
			err = fmt.Errorf("leader %s", l)
		}
		return err
	})
	moved(saScope+" switchover "+l2+"→"+cand, saVIP, cand, vipAddr, l1)
	l2 = cand
	saHealthy(t)

	w.reset()
	cand = otherNode(l1)
	if out, err := lib(t, "lab_switchover", l1, cand); err != nil {
		t.Fatalf("switchover of %s: %v\n%s", scope, err, out)
	}
	if l := vipOnLeader(t, 60*time.Second); l != cand {
		t.Fatalf("after the switchover of %s the leader is %s, want %s", scope, l, cand)
	}
	moved(scope+" switchover "+l1+"→"+cand, vipAddr, cand, saVIP, l2)
	l1 = cand
	rostersRight(t, l1, l2)

	// kill -9 of the second scope's leader (its Patroni and postmaster only).
	w.reset()
	dead := l2
	if _, err := lib(t, "lab_sa_kill_node", dead); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "a new "+saScope+" leader", func() (err error) {
		l2, err = lib(t, "lab_sa_leader")
		if err == nil && l2 == dead {
			err = fmt.Errorf("still %s", dead)
		}
		return err
	})
	moved(saScope+" kill -9 of "+dead, saVIP, l2, vipAddr, l1)
	// Status says the second scope is not healthy, the first is: with its
	// watcher stopped, the second VIP removed by hand stays gone (exit 3). A
	// dead replica alone is no status failure: a leader holds the VIP.
	if _, err := lib(t, "lab_sa_stop_vipwatch", l2); err != nil {
		t.Fatal(err)
	}
	if _, err := lib(t, "lab_sa_vip_del", l2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "pghook status 3 or 4 with "+saScope+"'s VIP gone", func() error {
		d, code, out := statusAll(t, l1)
		if code != 3 && code != 4 {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		for _, s := range d.Scopes {
			if (s.Scope == scope) != (s.ExitCode == 0) {
				return fmt.Errorf("scope %s exit %d:\n%s", s.Scope, s.ExitCode, out)
			}
		}
		return nil
	})
	if _, err := lib(t, "lab_sa_start_vipwatch", l2); err != nil {
		t.Fatal(err)
	}
	if _, err := lib(t, "lab_sa_start_patroni", dead); err != nil {
		t.Fatal(err)
	}
	saHealthy(t)

	// kill -9 of the first scope's leader.
	w.reset()
	dead = l1
	if _, err := lib(t, "lab_kill_node", dead); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "a new "+scope+" leader", func() (err error) {
		l1, err = lib(t, "lab_leader")
		if err == nil && l1 == dead {
			err = fmt.Errorf("still %s", dead)
		}
		return err
	})
	moved(scope+" kill -9 of "+dead, vipAddr, l1, saVIP, l2)
	if _, err := lib(t, "lab_start_patroni", dead); err != nil {
		t.Fatal(err)
	}
	if _, err := lib(t, "lab_wait_healthy", "120"); err != nil {
		t.Fatal(err)
	}
	saHealthy(t)
	rostersRight(t, l1, l2)
	eventually(t, 60*time.Second, "pghook status exit 0 again on every node", func() error {
		for _, n := range nodes {
			if _, code, out := statusAll(t, n); code != 0 {
				return fmt.Errorf("%s: exit %d:\n%s", n, code, out)
			}
		}
		return nil
	})

	w.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%d samples of both VIPs every %v: %d with %s on two hosts, %d with %s on two hosts, %d read errors",
		w.samples, sampleEvery, w.doubles[vipAddr], vipAddr, w.doubles[saVIP], saVIP, w.errs)
	if w.doubles[vipAddr] != 0 || w.doubles[saVIP] != 0 {
		t.Errorf("a VIP was on two hosts: %v", w.doubles)
	}
}
