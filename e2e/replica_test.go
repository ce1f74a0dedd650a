//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Patroni drives `pghook create-replica` itself: the lab's patroni.yml has
// create_replica_methods: [pghook, basebackup]. The test takes a backup
// into the lab's shared storage ($LAB_DIR/backups), reinitialises replicas
// with patronictl and reads what happened from Patroni's log.

// takeBackup runs `pghook backup` on node as postgres (password from the
// node's ~/.pgpass, replication user; the two newest backups kept) and
// returns the published directory.
func takeBackup(t *testing.T, node string) string {
	t.Helper()
	out, err := lib(t, "lab_exec_pg", node, filepath.Join(labDir, "bin", "pghook"),
		"--config", filepath.Join(labDir, node, "pghook.yaml"), "--log-format", "json",
		"backup", "--scope", scope, "--backup-dir", filepath.Join(labDir, "backups"),
		"--host", nodeIP[node], "--port", "5432", "--user", "replicator", "--keep", "2")
	if err != nil {
		t.Fatalf("pghook backup on %s: %v", node, err)
	}
	dir := strings.TrimSpace(out)
	if i := strings.LastIndexByte(dir, '\n'); i >= 0 {
		dir = dir[i+1:]
	}
	if filepath.Dir(dir) != filepath.Join(labDir, "backups", scope) {
		t.Fatalf("pghook backup printed %q, want a directory under %s/backups/%s", dir, labDir, scope)
	}
	var meta struct {
		ID       string `json:"id"`
		Scope    string `json:"scope"`
		SystemID string `json:"system_identifier"`
		EndLSN   string `json:"end_lsn"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "pghook.json"))
	if err != nil {
		t.Fatalf("published backup without metadata: %v", err)
	}
	if err := json.Unmarshal(b, &meta); err != nil || meta.Scope != scope || meta.ID != filepath.Base(dir) || meta.SystemID == "" {
		t.Fatalf("pghook.json of %s: %v %+v", dir, err, meta)
	}
	noPartial(t)
	return dir
}

// noPartial fails if an unpublished or half-deleted backup is left over.
func noPartial(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(labDir, "backups", scope))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".partial") || strings.HasSuffix(e.Name(), ".deleting") {
			t.Errorf("left in the shared storage: %s", e.Name())
		}
	}
}

// logFrom returns what Patroni wrote to node's log after offset.
func logFrom(node string, off int64) string {
	f, err := os.Open(filepath.Join(labDir, node, "patroni.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	f.Seek(off, 0)
	var buf bytes.Buffer
	buf.ReadFrom(f)
	return buf.String()
}

func logSize(node string) int64 {
	fi, err := os.Stat(filepath.Join(labDir, node, "patroni.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// createReplicaLines are pghook's create_replica JSON lines in log.
func createReplicaLines(log string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "{") || !strings.Contains(l, `"action":"create_replica"`) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// reinit runs `patronictl reinit` for node from its namespace and waits
// until Patroni says which method built the replica and the leader sees
// the node streaming again on a connection opened after the reinit.
// It returns the new log and the time from reinit to streaming.
func reinit(t *testing.T, leaderNode, node string) (string, time.Duration) {
	t.Helper()
	off := logSize(node)
	t0 := time.Now()
	if out, err := lib(t, "lab_patronictl_on", node, "reinit", scope, node, "--force"); err != nil {
		t.Fatalf("reinit %s: %v: %s", node, err, out)
	}
	var took time.Duration
	eventually(t, 90*time.Second, node+" rebuilt and streaming", func() error {
		if !strings.Contains(logFrom(node, off), "replica has been created using") {
			return fmt.Errorf("Patroni has not created the replica yet")
		}
		out, err := lib(t, "lab_psql", leaderNode, "-c",
			fmt.Sprintf("select extract(epoch from backend_start) from pg_stat_replication where application_name = '%s' and state = 'streaming'", node))
		if err != nil {
			return err
		}
		start, err := strconv.ParseFloat(out, 64)
		if err != nil {
			return fmt.Errorf("%s not streaming (%q)", node, out)
		}
		if st := time.Unix(0, int64(start*1e9)); st.Before(t0) {
			return fmt.Errorf("%s still on its old connection (from %s)", node, st)
		}
		took = time.Since(t0)
		return nil
	})
	return logFrom(node, off), took
}

// afterRebuild checks the common outcome of a reinit: Patroni healthy,
// node a replica in Patroni and in its roster, a row from the leader
// replicated to it.
func afterRebuild(t *testing.T, leaderNode, node, marker string) {
	t.Helper()
	if out, err := lib(t, "lab_wait_healthy", "60"); err != nil {
		t.Fatalf("cluster not healthy after reinit of %s: %v %s", node, err, out)
	}
	if r, err := lib(t, "lab_role", node); err != nil || r != "replica" {
		t.Fatalf("%s: Patroni role %q (%v), want replica", node, r, err)
	}
	eventually(t, 30*time.Second, node+"'s roster row replica", func() error {
		r, err := roleOf(t, node)
		if err == nil && r != "replica" {
			err = fmt.Errorf("%s: roster role %q", node, r)
		}
		return err
	})
	eventually(t, 30*time.Second, "the leader's row on "+node, func() error {
		out, err := lib(t, "lab_psql", node, "-c", fmt.Sprintf("select count(*) from pghook_e2e_replica where v = '%s'", marker))
		if err == nil && out != "1" {
			err = fmt.Errorf("row %q not on %s (count %q)", marker, node, out)
		}
		return err
	})
}

func TestReplicaFromBackup(t *testing.T) {
	if _, err := lib(t, "lab_wait_healthy", "90"); err != nil {
		t.Fatal(err)
	}
	l := leader(t)
	viaPghook := otherNode(l)
	viaFallback := otherNode(l, viaPghook)
	if _, err := lib(t, "lab_psql", l, "-c", "create table if not exists pghook_e2e_replica (v text)"); err != nil {
		t.Fatal(err)
	}

	// E2E_REPLICA_MB=N grows the database by about N MB first, for timings
	// that are not all Patroni's loop (default: the lab's ~23 MB).
	if mb, _ := strconv.Atoi(os.Getenv("E2E_REPLICA_MB")); mb > 0 {
		if _, err := lib(t, "lab_psql", l, "-c", fmt.Sprintf(
			"create table if not exists pghook_e2e_bulk (v text); insert into pghook_e2e_bulk select repeat(md5(i::text), 28) from generate_series(1, %d) i", mb*1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := lib(t, "lab_psql", l, "-c", "checkpoint"); err != nil {
			t.Fatal(err)
		}
	}

	bdir := takeBackup(t, l)
	t.Logf("backup %s taken on %s", filepath.Base(bdir), l)
	marker := fmt.Sprintf("after-backup-%d", time.Now().UnixNano())
	if _, err := lib(t, "lab_psql", l, "-c", fmt.Sprintf("insert into pghook_e2e_replica values ('%s')", marker)); err != nil {
		t.Fatal(err)
	}

	var tookPghook, tookFallback time.Duration

	t.Run("pghook", func(t *testing.T) {
		var log string
		log, tookPghook = reinit(t, l, viaPghook)
		lines := createReplicaLines(log)
		var restored bool
		for _, m := range lines {
			if _, failed := m["exit_code"]; failed {
				t.Fatalf("%s: create_replica failed: %v", viaPghook, m)
			}
			if m["message"] == "replica restored and verified; PostgreSQL left stopped" && m["backup"] == bdir {
				restored = true
			}
		}
		if !restored {
			t.Fatalf("%s: no 'replica restored' line from pghook for %s in Patroni's log:\n%s", viaPghook, bdir, log)
		}
		if !strings.Contains(log, "replica has been created using pghook") || strings.Contains(log, "using basebackup") ||
			strings.Contains(log, "Error creating replica using method pghook") {
			t.Fatalf("%s: Patroni did not take pghook's exit 0:\n%s", viaPghook, log)
		}
		afterRebuild(t, l, viaPghook, marker)
		noPartial(t)
		t.Logf("%s: reinit -> streaming in %s via pghook (backup %s)", viaPghook, sec(tookPghook), filepath.Base(bdir))
	})
	if t.Failed() {
		return
	}

	t.Run("fallback", func(t *testing.T) {
		// Corrupt the newest backup in the middle of its data archive: the
		// pre-flight checks (manifest checksum, identity, WAL) pass and
		// pghook fails during extraction, after touching the data directory.
		arch := filepath.Join(bdir, "base.tar.zst")
		fi, err := os.Stat(arch)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(arch, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		off := fi.Size() / 2
		orig := make([]byte, 16)
		if _, err := f.ReadAt(orig, off); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(bytes.Repeat([]byte{'X'}, len(orig)), off); err != nil {
			t.Fatal(err)
		}
		f.Close()
		defer func() { // the backup as it was, for whatever rebuilds a node later
			if f, err := os.OpenFile(arch, os.O_RDWR, 0); err == nil {
				f.WriteAt(orig, off)
				f.Close()
			}
		}()
		// Older backups would now be restored instead (create-replica tries
		// them after a 4): set them aside (a dot name is not a backup) so
		// that Patroni's fallback to basebackup is what is tested.
		ents, _ := os.ReadDir(filepath.Dir(bdir))
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() || strings.HasPrefix(n, ".") || n == filepath.Base(bdir) {
				continue
			}
			from, to := filepath.Join(filepath.Dir(bdir), n), filepath.Join(filepath.Dir(bdir), ".aside-"+n)
			if err := os.Rename(from, to); err != nil {
				t.Fatal(err)
			}
			defer os.Rename(to, from)
		}
		marker2 := fmt.Sprintf("fallback-%d", time.Now().UnixNano())
		if _, err := lib(t, "lab_psql", l, "-c", fmt.Sprintf("insert into pghook_e2e_replica values ('%s')", marker2)); err != nil {
			t.Fatal(err)
		}

		var log string
		log, tookFallback = reinit(t, l, viaFallback)
		code := refusedWith(t, log, viaFallback)
		if code != 4 {
			t.Fatalf("%s: want create_replica exit_code 4 (verification failed), got %v in:\n%s", viaFallback, code, log)
		}
		if !strings.Contains(log, "create-replica exited with code=4") || !strings.Contains(log, "replica has been created using basebackup") {
			t.Fatalf("%s: Patroni did not fall back to basebackup after pghook's exit 4:\n%s", viaFallback, log)
		}
		// pg_basebackup refuses a non-empty target: one attempt that worked means
		// pghook's partial extraction was gone.
		for _, bad := range []string{"Error when fetching backup", "Trying again", "pg_basebackup: error"} {
			for _, line := range strings.Split(log, "\n") {
				if strings.Contains(line, bad) && !strings.Contains(line, `"action":"create_replica"`) && !strings.Contains(line, "Error creating replica using method pghook") {
					t.Errorf("%s: basebackup after pghook did not succeed at once: %s", viaFallback, line)
				}
			}
		}
		// Nothing of pghook's in the rebuilt data directory.
		data := filepath.Join(labDir, viaFallback, "data")
		filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			n := d.Name()
			if strings.Contains(n, "pghook") || strings.HasSuffix(n, ".partial") || strings.HasSuffix(n, ".tmp") {
				t.Errorf("%s: left in the data directory: %s", viaFallback, p)
			}
			return nil
		})
		afterRebuild(t, l, viaFallback, marker2)
		afterRebuild(t, l, viaFallback, marker)
		noPartial(t)
		t.Logf("%s: reinit -> streaming in %s via basebackup after pghook's exit %d", viaFallback, sec(tookFallback), int(code))
	})
	if tookPghook > 0 && tookFallback > 0 {
		t.Logf("reinit to streaming: pghook %s, basebackup fallback %s (data %s)", sec(tookPghook), sec(tookFallback), dataSize(t, bdir))
	}
	if out, err := lib(t, "lab_wait_healthy", "60"); err != nil {
		t.Fatalf("cluster not healthy at the end: %v %s", err, out)
	}
}

func dataSize(t *testing.T, bdir string) string {
	b, err := os.ReadFile(filepath.Join(bdir, "pghook.json"))
	if err != nil {
		return "?"
	}
	var m struct {
		DataBytes int64 `json:"data_bytes"`
	}
	json.Unmarshal(b, &m)
	return fmt.Sprintf("%.1f MB", float64(m.DataBytes)/1e6)
}

// fellBack checks that Patroni logged pghook's exit code want (from
// pghook's own error line and from Patroni's "exited with code=") and then
// built node with basebackup, at once; and that node is a healthy replica
// with marker replicated.
// refusedWith returns the exit code pghook's create_replica logged in
// log (-1: none), logging each refusal; a restore it completed fails the
// test (node's rebuild had to be refused).
func refusedWith(t *testing.T, log, node string) float64 {
	t.Helper()
	var code float64 = -1
	for _, m := range createReplicaLines(log) {
		if c, ok := m["exit_code"].(float64); ok {
			code = c
			t.Logf("%s: pghook: %v (exit %v, %v)", node, m["err"], m["exit_code"], m["cause"])
		}
		if m["message"] == "replica restored and verified; PostgreSQL left stopped" {
			t.Fatalf("%s: pghook restored although it had to refuse: %v", node, m)
		}
	}
	return code
}

func fellBack(t *testing.T, log, leaderNode, node string, want int, marker string) {
	t.Helper()
	if want > 0 {
		code := refusedWith(t, log, node)
		if int(code) != want {
			t.Fatalf("%s: want pghook's create_replica exit_code %d, got %v in:\n%s", node, want, code, log)
		}
	}
	if !strings.Contains(log, fmt.Sprintf("exited with code=%d", want)) {
		t.Fatalf("%s: Patroni's log has no \"exited with code=%d\" for pghook:\n%s", node, want, log)
	}
	if !strings.Contains(log, "replica has been created using basebackup") || strings.Contains(log, "replica has been created using pghook") {
		t.Fatalf("%s: Patroni did not fall back to basebackup:\n%s", node, log)
	}
	afterRebuild(t, leaderNode, node, marker)
	noPartial(t)
}

// insertMarker writes a fresh row on the leader and returns its value.
func insertMarker(t *testing.T, leaderNode, what string) string {
	t.Helper()
	marker := fmt.Sprintf("%s-%d", what, time.Now().UnixNano())
	if _, err := lib(t, "lab_psql", leaderNode, "-c", fmt.Sprintf("insert into pghook_e2e_replica values ('%s')", marker)); err != nil {
		t.Fatal(err)
	}
	return marker
}

// foreignBackup publishes, as the newest backup of the lab's scope, a
// backup of another PostgreSQL cluster (a scratch initdb on this host)
// and returns its directory.
func foreignBackup(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp(labDir, "foreign-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	asPG := func(name string, args ...string) string {
		out, err := exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	os.Chmod(d, 0o755)
	exec.Command("chown", "postgres:postgres", d).Run()
	bin := "/usr/lib/postgresql/15/bin"
	data := filepath.Join(d, "data")
	asPG(bin+"/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync")
	asPG(bin+"/pg_ctl", "-D", data, "-l", filepath.Join(d, "log"), "-w", "-o", "-p 5499 -k "+d+" -c listen_addresses=", "start")
	defer exec.Command("runuser", "-u", "postgres", "--", bin+"/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").Run()
	out := asPG(filepath.Join(labDir, "bin", "pghook"), "--log-format", "json", "backup", "--scope", scope,
		"--backup-dir", filepath.Join(labDir, "backups"), "--host", d, "--port", "5499", "--user", "postgres", "--config-dir", "-")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	bdir := lines[len(lines)-1]
	if filepath.Dir(bdir) != filepath.Join(labDir, "backups", scope) {
		t.Fatalf("foreign backup printed %q", out)
	}
	t.Cleanup(func() { os.RemoveAll(bdir) })
	return bdir
}

// createReplicaPID returns the pid of `pghook create-replica` building
// node's data directory, or 0.
func createReplicaPID(node string) int {
	want := "--datadir=" + filepath.Join(labDir, node, "data")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		hasCmd, hasDir := false, false
		for _, a := range args {
			hasCmd = hasCmd || a == "create-replica"
			hasDir = hasDir || a == want
		}
		if hasCmd && hasDir {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	return 0
}

// TestReplicaFallbackCauses: the causes for which pghook must refuse (no
// backup, a backup of another cluster, its WAL recycled) and Patroni must
// fall back to basebackup, each seen in Patroni's log, and a pghook killed
// mid-restore whose next attempt succeeds.
func TestReplicaFallbackCauses(t *testing.T) {
	if _, err := lib(t, "lab_wait_healthy", "90"); err != nil {
		t.Fatal(err)
	}
	l := leader(t)
	node := otherNode(l)
	if _, err := lib(t, "lab_psql", l, "-c", "create table if not exists pghook_e2e_replica (v text)"); err != nil {
		t.Fatal(err)
	}

	t.Run("no backup", func(t *testing.T) {
		// The scope's shared storage, with a backup in it, moved aside (as
		// when it is not mounted), and back before the checks.
		takeBackup(t, l)
		shared := filepath.Join(labDir, "backups", scope)
		aside := shared + ".aside"
		if err := os.Rename(shared, aside); err != nil {
			t.Fatal(err)
		}
		back := func() {
			if err := os.Rename(aside, shared); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Error(err)
			}
		}
		defer back()
		marker := insertMarker(t, l, "nobackup")
		log, _ := reinit(t, l, node)
		back()
		fellBack(t, log, l, node, 3, marker)
	})
	if t.Failed() {
		return
	}

	t.Run("backup of another cluster", func(t *testing.T) {
		takeBackup(t, l)
		foreign := foreignBackup(t) // now the newest
		marker := insertMarker(t, l, "foreign")
		log, _ := reinit(t, l, node)
		if !strings.Contains(log, filepath.Base(foreign)) {
			t.Errorf("%s: pghook's lines do not name the foreign backup %s", node, foreign)
		}
		fellBack(t, log, l, node, 5, marker)
	})
	if t.Failed() {
		return
	}

	t.Run("WAL after the backup recycled", func(t *testing.T) {
		bdir := takeBackup(t, l)
		// Past wal_keep_size (128MB = 8 segments) with checkpoints: the segment
		// after the backup's end is removed; the replicas' slots have moved on.
		for i := 0; i < 14; i++ {
			if _, err := lib(t, "lab_psql", l, "-c", "insert into pghook_e2e_replica values ('wal'); select pg_switch_wal(); checkpoint"); err != nil {
				t.Fatal(err)
			}
		}
		marker := insertMarker(t, l, "walgone")
		log, _ := reinit(t, l, node)
		if !strings.Contains(log, filepath.Base(bdir)) {
			t.Errorf("%s: pghook's lines do not name backup %s", node, filepath.Base(bdir))
		}
		fellBack(t, log, l, node, 6, marker)
	})
	if t.Failed() {
		return
	}

	t.Run("kill -9 mid-restore, then the next attempt succeeds", func(t *testing.T) {
		// A database big enough for the extraction to take a while.
		if _, err := lib(t, "lab_psql", l, "-c",
			"create table pghook_e2e_kill as select repeat(md5(i::text), 28) v from generate_series(1, 250000) i; checkpoint"); err != nil {
			t.Fatal(err)
		}
		defer lib(t, "lab_psql", l, "-c", "drop table if exists pghook_e2e_kill; checkpoint")
		bdir := takeBackup(t, l)
		marker := insertMarker(t, l, "killed")
		off := logSize(node)
		if out, err := lib(t, "lab_patronictl_on", node, "reinit", scope, node, "--force"); err != nil {
			t.Fatalf("reinit %s: %v: %s", node, err, out)
		}
		// Catch pghook once it writes the data directory: stop it, look, kill.
		data := filepath.Join(labDir, node, "data")
		killed := 0
		deadline := time.Now().Add(60 * time.Second)
		for killed == 0 && time.Now().Before(deadline) {
			pid := createReplicaPID(node)
			if pid == 0 {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			for time.Now().Before(deadline) {
				if syscall.Kill(pid, syscall.SIGSTOP) != nil {
					break // it ended
				}
				if _, err := os.Stat(filepath.Join(data, "base")); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
					killed = pid
					break
				}
				syscall.Kill(pid, syscall.SIGCONT)
				time.Sleep(3 * time.Millisecond)
			}
			if killed == 0 {
				t.Fatalf("pghook create-replica (pid %d) ended before it could be killed mid-restore:\n%s", pid, logFrom(node, off))
			}
		}
		if killed == 0 {
			t.Fatal("pghook create-replica never ran")
		}
		t.Logf("%s: killed pghook create-replica (pid %d) while it extracted %s", node, killed, filepath.Base(bdir))
		eventually(t, 90*time.Second, node+" rebuilt by basebackup", func() error {
			if !strings.Contains(logFrom(node, off), "replica has been created using") {
				return fmt.Errorf("Patroni has not created the replica yet")
			}
			return nil
		})
		fellBack(t, logFrom(node, off), l, node, -9, marker)

		// The next attempt: nothing pghook left (locks, partial files) stands in its way.
		marker2 := insertMarker(t, l, "after-kill")
		log, took := reinit(t, l, node)
		if !strings.Contains(log, "replica has been created using pghook") || strings.Contains(log, "Error creating replica using method pghook") {
			t.Fatalf("%s: the attempt after the kill did not succeed with pghook:\n%s", node, log)
		}
		afterRebuild(t, l, node, marker2)
		afterRebuild(t, l, node, marker)
		noPartial(t)
		t.Logf("%s: rebuilt by pghook after the kill in %s", node, sec(took))
	})
	if out, err := lib(t, "lab_wait_healthy", "60"); err != nil {
		t.Fatalf("cluster not healthy at the end: %v %s", err, out)
	}
}
