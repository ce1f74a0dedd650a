//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pghook/pghook/replica"
)

// backupUnit is what the scheduled backup's service (pghook install
// --backup-schedule, which the lab's install.yaml sets) runs: its user, its
// environment and its command line.
type backupUnit struct {
	user string
	env  []string
	argv []string
}

// readBackupUnit parses node's pghook-backup@<scope>.service as install
// wrote it into the node's (unused) systemd directory.
func readBackupUnit(t *testing.T, node string) backupUnit {
	t.Helper()
	path := filepath.Join(labDir, node, "systemd", "pghook-backup@"+scope+".service")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the scheduled backup's unit (install --backup-schedule): %v", err)
	}
	var u backupUnit
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		switch k {
		case "User":
			u.user = v
		case "Environment":
			u.env = append(u.env, v)
		case "ExecStart":
			u.argv = strings.Fields(v) // install writes no quoted arguments
		}
	}
	if u.user == "" || len(u.argv) == 0 || !strings.Contains(string(b), "--scheduled") {
		t.Fatalf("%s: no User= or ExecStart= with --scheduled:\n%s", path, b)
	}
	timer := filepath.Join(labDir, node, "systemd", "pghook-backup@"+scope+".timer")
	if tb, err := os.ReadFile(timer); err != nil || !strings.Contains(string(tb), "OnCalendar=") {
		t.Fatalf("the scheduled backup's timer %s: %v\n%s", timer, err, tb)
	}
	return u
}

// runUnit runs the unit's command in node's namespace as its User with
// only its Environment= (and a PATH), as systemd would when the timer
// fires; it returns stdout, stderr and the exit code.
func runUnit(node string, u backupUnit) (string, string, int) {
	args := []string{"netns", "exec", "pgh-" + node, "setpriv", "--reuid=" + u.user, "--regid=" + u.user, "--init-groups",
		"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + filepath.Join(labDir, node, "home"), "LANG=C.UTF-8"}
	args = append(args, u.env...)
	args = append(args, u.argv...)
	cmd := exec.Command("ip", args...)
	cmd.Dir = "/"
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	code := 0
	if err := cmd.Run(); err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// expectedBackupNode applies pghook's own rule (replica.ChooseBackupNode)
// to what Patroni's /cluster says now.
func expectedBackupNode(t *testing.T, l string) (string, string, string) {
	t.Helper()
	resp, err := http.Get("http://" + nodeIP[l] + ":8008/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	var cl struct {
		Members []struct {
			Name  string          `json:"name"`
			Role  string          `json:"role"`
			State string          `json:"state"`
			Lag   json.RawMessage `json:"lag"`
		} `json:"members"`
	}
	if err := json.Unmarshal(raw.Bytes(), &cl); err != nil {
		t.Fatalf("/cluster: %v: %s", err, raw.String())
	}
	var ms []replica.Member
	for _, m := range cl.Members {
		mm := replica.Member{Name: m.Name, Role: m.Role, State: m.State}
		var lag int64
		if json.Unmarshal(m.Lag, &lag) == nil {
			mm.Lag = &lag
		}
		ms = append(ms, mm)
	}
	chosen, why := replica.ChooseBackupNode(ms)
	return chosen, why, raw.String()
}

// TestScheduledBackup: the timer fires on every node at once (here: the
// service's command line run on the three nodes together); exactly one
// node — the one pghook's rule picks from Patroni's view — takes the
// backup, it is published, and a replica whose data directory is removed
// is rebuilt by Patroni through create_replica from it (pghook's exit 0,
// not the basebackup fallback).
func TestScheduledBackup(t *testing.T) {
	if _, err := lib(t, "lab_wait_healthy", "90"); err != nil {
		t.Fatal(err)
	}
	l := leader(t)
	// A recent backup would make every node's run do nothing (--skip-within):
	// set the scope's backups aside for this test and put them back after.
	bdir := filepath.Join(labDir, "backups", scope)
	aside := filepath.Join(labDir, "backups", scope+".aside-e2e")
	if _, err := os.Stat(bdir); err == nil {
		if err := os.Rename(bdir, aside); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ents, _ := os.ReadDir(aside)
			for _, e := range ents {
				os.Rename(filepath.Join(aside, e.Name()), filepath.Join(bdir, e.Name()))
			}
			os.Remove(aside)
		})
	}

	chosen, why, cluster := expectedBackupNode(t, l)
	if chosen == "" {
		t.Fatalf("pghook's rule picks no node from /cluster: %s\n%s", why, cluster)
	}
	t.Logf("leader %s; pghook's rule picks %s: %s", l, chosen, why)
	if chosen == l {
		// Two replicas stream in a healthy lab: the leader must not pay for it.
		t.Fatalf("pghook's rule picks the leader %s although replicas stream: %s\n%s", l, why, cluster)
	}

	type result struct {
		out, err string
		code     int
	}
	res := map[string]result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, n := range nodes {
		u := readBackupUnit(t, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, e, c := runUnit(n, u)
			mu.Lock()
			res[n] = result{o, e, c}
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	var takers []string
	var published string
	for _, n := range nodes {
		r := res[n]
		if r.code != 0 {
			t.Errorf("%s: the scheduled backup exited %d:\n%s%s", n, r.code, r.out, r.err)
			continue
		}
		if d := strings.TrimSpace(r.out); d != "" {
			takers = append(takers, n)
			published = d[strings.LastIndexByte(d, '\n')+1:]
		} else if !strings.Contains(r.err, "another node takes it") {
			t.Errorf("%s: took no backup and did not say another node takes it:\n%s", n, r.err)
		}
	}
	if len(takers) != 1 || takers[0] != chosen {
		for _, n := range nodes {
			t.Logf("%s: exit %d stdout %q\n%s", n, res[n].code, res[n].out, res[n].err)
		}
		t.Fatalf("backup taken by %v, want exactly %s (Patroni's view: %s)", takers, chosen, cluster)
	}
	if filepath.Dir(published) != bdir {
		t.Fatalf("published %q, want a directory in %s", published, bdir)
	}
	if _, err := os.Stat(filepath.Join(published, "pghook.json")); err != nil {
		t.Fatalf("published backup without pghook.json: %v", err)
	}
	noPartial(t)
	t.Logf("scheduled run on 3 nodes: %s took backup %s in %s", chosen, filepath.Base(published), sec(took))

	// A second firing right after does nothing anywhere: the backup is recent.
	for _, n := range nodes {
		o, e, c := runUnit(n, readBackupUnit(t, n))
		if c != 0 || strings.TrimSpace(o) != "" {
			t.Errorf("%s: second run: exit %d, printed %q (want nothing taken):\n%s", n, c, o, e)
		}
	}

	// Rebuild a replica from it: its data directory removed while Patroni is
	// stopped, Patroni started again runs create_replica (pghook first).
	if _, err := lib(t, "lab_psql", l, "-c", "create table if not exists pghook_e2e_replica (v text)"); err != nil {
		t.Fatal(err)
	}
	marker := insertMarker(t, l, "after-scheduled-backup")
	r := otherNode(l)
	if _, err := lib(t, "lab_stop_patroni", r); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(labDir, r, "data")
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "postgres:postgres", data).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v %s", data, err, out)
	}
	off := logSize(r)
	t1 := time.Now()
	if _, err := lib(t, "lab_start_patroni", r); err != nil {
		t.Fatal(err)
	}
	eventually(t, 120*time.Second, r+" rebuilt by Patroni", func() error {
		if !strings.Contains(logFrom(r, off), "replica has been created using") {
			return fmt.Errorf("Patroni has not created the replica yet")
		}
		return nil
	})
	log := logFrom(r, off)
	restored := false
	for _, m := range createReplicaLines(log) {
		if _, failed := m["exit_code"]; failed {
			t.Fatalf("%s: create_replica failed: %v", r, m)
		}
		if m["message"] == "replica restored and verified; PostgreSQL left stopped" && m["backup"] == published {
			restored = true
		}
	}
	if !restored || !strings.Contains(log, "replica has been created using pghook") || strings.Contains(log, "using basebackup") {
		t.Fatalf("%s: not restored by pghook from the scheduled backup %s:\n%s", r, published, log)
	}
	afterRebuild(t, l, r, marker)
	t.Logf("%s: data directory removed -> rebuilt from the scheduled backup and streaming in %s", r, sec(time.Since(t1)))
}
