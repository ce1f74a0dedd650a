//go:build e2e

// Package e2e drives the three-node Patroni lab (e2e/lab) and checks
// pghook's behaviour from outside, as an operator would: Patroni itself
// calls pghook; the tests only cause events (switchover, crash) and read
// the results (each node's .pgtab, Patroni's REST API, the logs).
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pghook/pghook/e2e/labkit"
)

var (
	repo   string
	labDir = envOr("LAB_DIR", "/var/tmp/pghook-lab")
	scope  = envOr("LAB_SCOPE", "pglab")
	nodes  = []string{"n1", "n2", "n3"}
)

func envOr(k, def string) string { return labkit.EnvOr(k, def) }

func TestMain(m *testing.M) {
	labkit.Main(m, "e2e", nil, func(l *labkit.Lab) error {
		lab, repo = l, l.Repo
		lab.Dump = dumpLogs
		return nil
	})
}

var lab *labkit.Lab

func labCmd(args ...string) (string, error) { return lab.Cmd(args...) }

// lib runs a function of e2e/lab/lib.sh and returns its trimmed stdout.
func lib(t *testing.T, fn string, args ...string) (string, error) {
	t.Helper()
	return lab.Lib(fn, args...)
}

// roster reads NODE's .pgtab through `pghook pgtab --json`, as postgres in
// the node's namespace.
func roster(t *testing.T, node string) (map[string]map[string]string, error) {
	t.Helper()
	out, err := lib(t, "lab_pgtab", node)
	if err != nil {
		return nil, err
	}
	var rows []map[string]string
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("roster of %s is not valid JSON: %v: %q", node, err, out)
	}
	byScope := map[string]map[string]string{}
	for _, r := range rows {
		byScope[r["scope"]+"/"+r["node"]] = r
	}
	return byScope, nil
}

// roleOf returns the role recorded in NODE's own roster for its own row.
func roleOf(t *testing.T, node string) (string, error) {
	rs, err := roster(t, node)
	if err != nil {
		return "", err
	}
	r, ok := rs[scope+"/"+node]
	if !ok {
		return "", fmt.Errorf("no row %s/%s in %s's roster (%d rows)", scope, node, node, len(rs))
	}
	return r["role"], nil
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	lab.Eventually(t, timeout, what, f)
}

// newLeader waits until Patroni names a leader other than old, and its
// PostgreSQL is out of recovery.
func newLeader(t *testing.T, old string, timeout time.Duration) string {
	t.Helper()
	var nl string
	// Patroni's /primary can answer 200 while the promotion still runs:
	// the new leader counts once its PostgreSQL takes writes.
	eventually(t, timeout, "a new writable leader after "+old, func() (err error) {
		nl, err = lib(t, "lab_leader")
		if err == nil && nl == old {
			return fmt.Errorf("still %s", old)
		}
		if err != nil {
			return err
		}
		rec, err := lib(t, "lab_psql", nl, "-d", "postgres", "-c", "select pg_is_in_recovery()")
		if err == nil && rec != "f" {
			err = fmt.Errorf("%s leads, still in recovery (%q)", nl, rec)
		}
		return err
	})
	return nl
}

func dumpLogs(t *testing.T) {
	for _, n := range nodes {
		b, _ := os.ReadFile(filepath.Join(labDir, n, "patroni.log"))
		lines := strings.Split(string(b), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		t.Logf("---- %s patroni.log (tail) ----\n%s", n, strings.Join(lines, "\n"))
	}
}

func leader(t *testing.T) string {
	t.Helper()
	var l string
	eventually(t, 60*time.Second, "a single leader", func() (err error) {
		l, err = lib(t, "lab_leader")
		return err
	})
	return l
}

// rolesFollow waits until every node's own row holds the role Patroni
// reports for it: primary on the leader, replica elsewhere.
func rolesFollow(t *testing.T, timeout time.Duration) string {
	t.Helper()
	var l string
	eventually(t, timeout, "roster roles matching Patroni", func() error {
		var err error
		if l, err = lib(t, "lab_leader"); err != nil {
			return err
		}
		for _, n := range nodes {
			want := "replica"
			if n == l {
				want = "primary"
			}
			got, err := roleOf(t, n)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s: roster role %q, Patroni says %q", n, got, want)
			}
		}
		return nil
	})
	return l
}

func TestRosterAfterBootstrap(t *testing.T) {
	l := rolesFollow(t, 60*time.Second)
	for _, n := range nodes {
		rs, err := roster(t, n)
		if err != nil {
			t.Fatal(err)
		}
		r := rs[scope+"/"+n]
		if r["data_dir"] != filepath.Join(labDir, n, "data") || r["listen"] == "" || r["bin_dir"] != "/usr/lib/postgresql/15/bin" ||
			r["patroni_config"] != filepath.Join(labDir, n, "patroni.yml") || r["updated_at"] == "" {
			t.Errorf("%s: row lacks Patroni's facts: %v", n, r)
		}
		fi, err := os.Stat(filepath.Join(labDir, n, "home", ".pgtab"))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || st.Uid == 0 {
			t.Errorf("%s: .pgtab mode %v uid %d, want 0640 owned by postgres", n, fi.Mode().Perm(), st.Uid)
		}
	}
	t.Logf("leader %s; every roster row matches", l)
}

func TestRosterFollowsSwitchover(t *testing.T) {
	old := rolesFollow(t, 60*time.Second)
	cand := "n1"
	if old == "n1" {
		cand = "n2"
	}
	if _, err := lib(t, "lab_switchover", old, cand); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the candidate leading", func() error {
		l, err := lib(t, "lab_leader")
		if err != nil {
			return err
		}
		if l != cand {
			return fmt.Errorf("leader %s, want %s", l, cand)
		}
		return nil
	})
	rolesFollow(t, 60*time.Second)
}

func TestRosterFollowsLeaderCrash(t *testing.T) {
	if _, err := lib(t, "lab_wait_healthy", "90"); err != nil {
		t.Fatal(err)
	}
	old := leader(t)
	if _, err := lib(t, "lab_kill_node", old); err != nil {
		t.Fatal(err)
	}
	// A new leader takes over after the leader key's ttl; its roster row
	// follows through on_role_change. The crashed node runs nothing.
	nl := newLeader(t, old, 60*time.Second)
	eventually(t, 30*time.Second, "the new leader's row primary", func() error {
		r, err := roleOf(t, nl)
		if err == nil && r != "primary" {
			err = fmt.Errorf("%s role %q", nl, r)
		}
		return err
	})
	// The crashed node returns as a replica, and its row follows.
	if _, err := lib(t, "lab_start_patroni", old); err != nil {
		t.Fatal(err)
	}
	rolesFollow(t, 120*time.Second)
	if _, err := lib(t, "lab_wait_healthy", "120"); err != nil {
		t.Fatal(err)
	}
}

// TestCallbackKilledMidWrite kills real callbacks the way Patroni does
// (SIGSTOP, then SIGKILL) at random points while they rewrite a node's
// real roster, then checks the roster is valid, kept every row, and is
// completed by the next callback.
func TestCallbackKilledMidWrite(t *testing.T) {
	node := "n3"
	before, err := roster(t, node)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(labDir, "bin", "pghook")
	conf := filepath.Join(labDir, node, "pghook.yaml")
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	killed, completed := 0, 0
	home := filepath.Join(labDir, node, "home")
	for i := 0; i < 60; i++ {
		role := []string{"master", "replica"}[i%2]
		// As Patroni runs it: as postgres, in the node, the seed's legacy
		// argument form (with a password that must be dropped).
		cmd := exec.Command("ip", "netns", "exec", "pgh-"+node, "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
			"env", "-i", "HOME="+home, "PATH=/usr/bin:/bin", bin, "callback", "--config", conf,
			"killtest", node, "/d", "0.0.0.0:5432", "/b", "killtest-pw", "on_role_change", role, "killtest")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rnd.Intn(12000)) * time.Microsecond)
		pg := -cmd.Process.Pid
		syscall.Kill(pg, syscall.SIGSTOP)
		if syscall.Kill(pg, syscall.SIGKILL) == nil {
			killed++
		}
		cmd.Wait()
		rs, err := roster(t, node)
		if err != nil {
			t.Fatalf("after kill %d: %v", i, err)
		}
		for k := range before {
			if _, ok := rs[k]; !ok {
				t.Fatalf("after kill %d: row %s lost", i, k)
			}
		}
		want := map[string]string{"master": "primary", "replica": "replica"}[role]
		if r := rs["killtest/"+node]; r != nil && r["role"] == want {
			completed++
		}
	}
	// The next callback completes the roster.
	out, err := lib(t, "lab_exec_pg", node, bin, "callback", "--config", conf, "killtest", node, "/d", "0.0.0.0:5432", "/b", "killtest-pw", "on_role_change", "demoted", "killtest")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	rs, err := roster(t, node)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["killtest/"+node]; r == nil || r["role"] != "demoted" {
		t.Fatalf("next callback did not complete the roster: %v", r)
	}
	ents, _ := os.ReadDir(filepath.Join(labDir, node, "home"))
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("a killed writer's temp file outlived the next callback: %s", e.Name())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".pgtab")); strings.Contains(string(b), "killtest-pw") {
		t.Fatal("the legacy password reached the roster")
	}
	t.Logf("SIGKILLed %d callbacks at random points (%d had already written their row); roster valid after every kill", killed, completed)
}

// TestNoPasswordInLogs: pghook never logs a password; the lab's passwords
// must not appear in pghook's lines of Patroni's log.
func TestNoPasswordInLogs(t *testing.T) {
	secrets, _ := filepath.Glob(filepath.Join(labDir, "secrets", "*"))
	var pw []string
	for _, s := range secrets {
		if strings.HasSuffix(s, ".pgpass") {
			continue
		}
		if b, err := os.ReadFile(s); err == nil && len(bytes.TrimSpace(b)) >= 6 {
			pw = append(pw, string(bytes.TrimSpace(b)))
		}
	}
	if len(pw) == 0 {
		t.Skip("no lab secrets found to look for")
	}
	lines := 0
	for _, n := range nodes {
		b, _ := os.ReadFile(filepath.Join(labDir, n, "patroni.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, `"message":"callback`) {
				continue
			}
			lines++
			for _, p := range pw {
				if strings.Contains(line, p) {
					t.Fatalf("%s: password in a pghook log line: %s", n, line)
				}
			}
		}
	}
	if lines == 0 {
		t.Fatal("no pghook callback lines in Patroni's logs: callbacks did not run")
	}
}

// TestEnvInLab: a DBA on a node runs eval "$(pghook env SCOPE)" and psql
// reaches this node's server, whose recovery state matches the export.
func TestEnvInLab(t *testing.T) {
	l := rolesFollow(t, 60*time.Second)
	bin := filepath.Join(labDir, "bin", "pghook")
	for _, n := range nodes {
		conf := filepath.Join(labDir, n, "pghook.yaml")
		script := fmt.Sprintf(`eval "$(%s env --config %s %s 2>/dev/null)" && printf '%%s|%%s|' "$PG_IN_RECOVERY" "$PGDATA" && psql -XAtc 'select pg_is_in_recovery()'`, bin, conf, scope)
		out, err := lib(t, "lab_exec_pg", n, "/bin/sh", "-c", script)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		wantRec := "true"
		if n == l {
			wantRec = "false"
		}
		want := wantRec + "|" + filepath.Join(labDir, n, "data") + "|" + map[string]string{"true": "t", "false": "f"}[wantRec]
		if out != want {
			t.Fatalf("%s: got %q, want %q", n, out, want)
		}
	}
}
