//go:build e2e

package e2e

// What a node set up the user's way gets at bootstrap: Patroni's
// bootstrap.post_init runs `pghook post-init` once, on the node that ran
// initdb (the rewind user's grants, role app, database appdb, the SQL files
// of $LAB_DIR/sql/<scope>), and pg_rewind works with that rewind user when a
// crashed primary comes back. Runs first (file order), on the fresh lab.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/patroni"
)

// psql runs one query on NODE over its unix socket (as postgres).
func psql(t *testing.T, node, db, query string) string {
	t.Helper()
	out, err := lib(t, "lab_psql", node, "-d", db, "-c", query)
	if err != nil {
		t.Fatalf("%s: %q: %v", node, query, err)
	}
	return out
}

// rewindUserOf reads postgresql.authentication.rewind.username of NODE's patroni.yml.
func rewindUserOf(t *testing.T, node string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(labDir, node, "patroni.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := patroni.Parse(b)
	if err != nil {
		t.Fatalf("%s patroni.yml: %v", node, err)
	}
	if !strings.Contains(cfg.Bootstrap.PostInit, " post-init") {
		t.Fatalf("%s patroni.yml: bootstrap.post_init %q does not run pghook post-init", node, cfg.Bootstrap.PostInit)
	}
	if !cfg.Bootstrap.DCS.Postgresql.UsePgRewind {
		t.Fatalf("%s patroni.yml: bootstrap.dcs.postgresql.use_pg_rewind is not true", node)
	}
	u := cfg.Postgresql.Authentication["rewind"]
	if u == nil {
		t.Fatalf("%s patroni.yml: no authentication.rewind", node)
	}
	if u.Username == "" || u.Username == "postgres" || u.Password == "" {
		t.Fatalf("%s patroni.yml: authentication.rewind must be a separate user with a password, got %q", node, u.Username)
	}
	return u.Username
}

// logLines returns the lines of NODE's patroni.log containing every one of subs.
func logLines(node string, from int64, subs ...string) []string {
	return fileLines(filepath.Join(labDir, node, "patroni.log"), from, subs...)
}

// logSize is in replica_test.go.

func TestPostInitAtBootstrap(t *testing.T) {
	if _, err := lib(t, "lab_wait_healthy", "90"); err != nil {
		t.Fatal(err)
	}
	l := leader(t)
	ru := rewindUserOf(t, l)

	// The rewind user: exactly pg_rewind's four functions, and no superuser.
	for _, fn := range []string{
		"pg_catalog.pg_ls_dir(text,boolean,boolean)",
		"pg_catalog.pg_stat_file(text,boolean)",
		"pg_catalog.pg_read_binary_file(text)",
		"pg_catalog.pg_read_binary_file(text,bigint,bigint,boolean)",
	} {
		q := fmt.Sprintf("select has_function_privilege('%s', '%s', 'EXECUTE')", ru, fn)
		if got := psql(t, l, "postgres", q); got != "t" {
			t.Errorf("%s lacks EXECUTE on %s (%q)", ru, fn, got)
		}
	}
	if got := psql(t, l, "postgres", fmt.Sprintf("select rolsuper::text || ' ' || rolcanlogin::text from pg_roles where rolname = '%s'", ru)); got != "false true" {
		t.Errorf("rewind user %s: rolsuper/rolcanlogin %q, want \"false true\"", ru, got)
	}

	// Role app (login, password from its file) and database appdb owned by it.
	if got := psql(t, l, "postgres", "select rolcanlogin::text || ' ' || (rolpassword is not null)::text from pg_authid where rolname = 'app'"); got != "true true" {
		t.Errorf("role app: login/password %q, want \"true true\"", got)
	}
	if got := psql(t, l, "postgres", "select pg_get_userbyid(datdba) from pg_database where datname = 'appdb'"); got != "app" {
		t.Errorf("database appdb owner %q, want app", got)
	}

	// Each SQL file applied once; its effects there once.
	sqlDir := filepath.Join(labDir, "sql", scope)
	files, _ := filepath.Glob(filepath.Join(sqlDir, "*.sql"))
	if len(files) < 2 {
		t.Fatalf("want the lab's SQL files in %s, found %v", sqlDir, files)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	applied := psql(t, l, "postgres", "select name from pghook.applied_sql order by name")
	if applied != strings.Join(names, "\n") {
		t.Errorf("pghook.applied_sql lists %q, want each of %v once", applied, names)
	}
	if got := psql(t, l, "postgres", "select count(*)::text || ' ' || count(*) filter (where id = 1 and note = 'seeded by pghook post-init')::text from public.lab_seed"); got != "1 1" {
		t.Errorf("public.lab_seed: %q, want exactly the one seeded row", got)
	}
	if got := psql(t, l, "postgres", "select has_table_privilege('app', 'public.lab_seed', 'SELECT')"); got != "t" {
		t.Errorf("020 file's grant missing: %q", got)
	}
	// Replicas have it too (it is in the cluster, not in one node).
	for _, n := range nodes {
		if n == l {
			continue
		}
		eventually(t, 30*time.Second, n+" replaying the seeded row", func() error {
			out, err := lib(t, "lab_psql", n, "-c", "select count(*) from public.lab_seed")
			if err == nil && out != "1" {
				err = fmt.Errorf("%s: %q rows", n, out)
			}
			return err
		})
	}

	// Patroni ran post_init once, on the node that ran initdb.
	var initNodes, doneNodes []string
	for _, n := range nodes {
		if len(logLines(n, 0, "initialized a new cluster")) > 0 {
			initNodes = append(initNodes, n)
		}
		done := logLines(n, 0, `"action":"post-init"`, "post-init done")
		switch len(done) {
		case 0:
		case 1:
			doneNodes = append(doneNodes, n)
		default:
			t.Errorf("%s: %d \"post-init done\" lines, want one:\n%s", n, len(done), strings.Join(done, "\n"))
		}
		if f := logLines(n, 0, "post-init failed"); len(f) > 0 {
			t.Errorf("%s: %s", n, f[0])
		}
	}
	if len(initNodes) != 1 || len(doneNodes) != 1 || initNodes[0] != doneNodes[0] {
		t.Fatalf("post-init done on %v, cluster initialised on %v: want the one bootstrap node, once", doneNodes, initNodes)
	}
	boot := initNodes[0]
	if g := logLines(boot, 0, `"step":"rewind user"`, `"role":"`+ru+`"`); len(g) != 1 {
		t.Errorf("%s: pghook's rewind-user step for %s logged %d times, want once", boot, ru, len(g))
	}
	done := logLines(boot, 0, "post-init done")[0]
	t.Logf("bootstrap node %s (leader now %s): %s", boot, l, done)

	// A second run (as Patroni would, on the leader) changes nothing.
	d := filepath.Join(labDir, l)
	out, err := lib(t, "lab_exec_pg", l, filepath.Join(labDir, "bin", "pghook"), "--config", filepath.Join(d, "pghook.yaml"),
		"--log-format", "json", "post-init", "--scope", scope, fmt.Sprintf("dbname=postgres user=postgres host=%s port=5432", filepath.Join(d, "run")))
	if err != nil {
		t.Fatalf("second post-init: %v\n%s", err, out)
	}
	if got := psql(t, l, "postgres", "select (select count(*) from pghook.applied_sql)::text || ' ' || (select count(*) from public.lab_seed)::text"); got != fmt.Sprintf("%d 1", len(names)) {
		t.Errorf("after a second post-init: applied/rows %q, want \"%d 1\"", got, len(names))
	}
}

// TestRewindAfterLeaderCrash: the leader is SIGKILLed (Patroni and
// PostgreSQL), another node takes over and gets a write, the old primary
// comes back: Patroni must pg_rewind it with the rewind user (no reinit)
// and it must stream from the new leader again, with the write.
func TestRewindAfterLeaderCrash(t *testing.T) {
	if _, err := lib(t, "lab_wait_healthy", "90"); err != nil {
		t.Fatal(err)
	}
	old := leader(t)
	rewindUserOf(t, old)
	// Something on the old timeline, so the two histories certainly diverge.
	psql(t, old, "postgres", "create table if not exists public.rewind_probe (id serial primary key, at text not null)")
	psql(t, old, "postgres", "insert into public.rewind_probe (at) values ('before crash')")
	from := logSize(old)

	t0 := time.Now()
	if _, err := lib(t, "lab_kill_node", old); err != nil {
		t.Fatal(err)
	}
	nl := newLeader(t, old, 60*time.Second)
	failover := time.Since(t0)
	psql(t, nl, "postgres", fmt.Sprintf("insert into public.rewind_probe (at) values ('after failover to %s')", nl))
	psql(t, nl, "postgres", "checkpoint")

	t1 := time.Now()
	if _, err := lib(t, "lab_start_patroni", old); err != nil {
		t.Fatal(err)
	}
	eventually(t, 120*time.Second, old+" streaming from "+nl, func() error {
		out, err := lib(t, "lab_psql", nl, "-c", fmt.Sprintf("select count(*) from pg_stat_replication where state = 'streaming' and client_addr = '%s'", mustIP(t, old)))
		if err == nil && out != "1" {
			err = fmt.Errorf("%s streaming from %s: %q", old, nl, out)
		}
		return err
	})
	rejoin := time.Since(t1)
	if _, err := lib(t, "lab_wait_healthy", "120"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, old+" having the new leader's write", func() error {
		out, err := lib(t, "lab_psql", old, "-c", "select count(*) from public.rewind_probe where at like 'after failover%'")
		if err == nil && out != "1" {
			err = fmt.Errorf("%q rows", out)
		}
		return err
	})

	ran := logLines(old, from, "running pg_rewind from")
	ok := logLines(old, from, "pg_rewind exit code=0")
	for _, bad := range []string{"Failed to rewind", "pg_rewind exit code=1", "replica has been created using", "Removing data directory", "reinitialize"} {
		if l := logLines(old, from, bad); len(l) > 0 {
			t.Errorf("%s: %s", old, l[0])
		}
	}
	switch {
	case len(ran) > 0 && len(ok) > 0:
		// pg_rewind connected to the new leader as the rewind user (log_connections).
		ru := rewindUserOf(t, nl)
		b, _ := os.ReadFile(filepath.Join(labDir, nl, "pglog", "postgresql.log"))
		if !strings.Contains(string(b), "connection authorized: user="+ru+" ") {
			t.Errorf("%s's PostgreSQL log shows no connection of %s (pg_rewind's)", nl, ru)
		}
		t.Logf("%s rewound as %s: %s", old, ru, ok[0])
	case len(ran) > 0:
		t.Fatalf("%s: pg_rewind ran but did not succeed:\n%s", old, strings.Join(logLines(old, from, "rewind"), "\n"))
	default:
		t.Fatalf("%s rejoined without pg_rewind although its timeline diverged (log since restart):\n%s", old, strings.Join(logLines(old, from, "INFO"), "\n"))
	}
	t.Logf("kill -9 of %s → %s leading in %v; %s restarted → rewound and streaming in %v", old, nl, failover.Round(100*time.Millisecond), old, rejoin.Round(100*time.Millisecond))

	// For comparison: a full reinit of the same node (create_replica_methods:
	// pghook, then basebackup).
	t2 := time.Now()
	if out, err := lib(t, "lab_patronictl_on", nl, "reinit", scope, old, "--force", "--wait"); err != nil {
		t.Fatalf("reinit %s: %v\n%s", old, err, out)
	}
	if _, err := lib(t, "lab_wait_healthy", "180"); err != nil {
		t.Fatal(err)
	}
	t.Logf("for comparison, patronictl reinit %s → streaming again in %v", old, time.Since(t2).Round(100*time.Millisecond))
}

func mustIP(t *testing.T, node string) string {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(node, "n"))
	if err != nil {
		t.Fatalf("node %q", node)
	}
	return fmt.Sprintf("10.251.77.%d", 10+n)
}

// TestLabIsInstalledByPghook: every node's patroni.yml and pghook.yaml
// were written by `pghook install` (the user's path), and running it again
// on the live cluster (lab.sh up, whose fast path re-runs it with the same
// settings) changes nothing: same files, same passwords, no restart.
func TestLabIsInstalledByPghook(t *testing.T) {
	if _, err := lib(t, "lab_wait_healthy", "120"); err != nil {
		t.Fatal(err)
	}
	type snap struct {
		yml, pgh []byte
		mtime    time.Time
	}
	before := map[string]snap{}
	for _, n := range nodes {
		d := filepath.Join(labDir, n)
		yml, err := os.ReadFile(filepath.Join(d, "patroni.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(yml), "written by `pghook install`") {
			t.Fatalf("%s patroni.yml was not written by pghook install:\n%s", n, yml)
		}
		if _, err := os.Stat(filepath.Join(d, "install-state.json")); err != nil {
			t.Fatalf("%s: no install state: %v", n, err)
		}
		fi, _ := os.Stat(filepath.Join(d, "patroni.yml"))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s patroni.yml mode %v, want 0600", n, fi.Mode().Perm())
		}
		pgh, _ := os.ReadFile(filepath.Join(d, "pghook.yaml"))
		before[n] = snap{yml, pgh, fi.ModTime()}
	}
	out, err := labCmd("up")
	if err != nil {
		t.Fatalf("lab.sh up (again): %v\n%s", err, out)
	}
	for _, n := range nodes {
		d := filepath.Join(labDir, n)
		log, _ := os.ReadFile(filepath.Join(d, "install.log"))
		if !strings.Contains(string(log), "pghook install: scope "+scope+": unchanged") {
			t.Errorf("%s: the second pghook install changed something:\n%s", n, log)
		}
		yml, _ := os.ReadFile(filepath.Join(d, "patroni.yml"))
		pgh, _ := os.ReadFile(filepath.Join(d, "pghook.yaml"))
		fi, _ := os.Stat(filepath.Join(d, "patroni.yml"))
		if string(yml) != string(before[n].yml) || string(pgh) != string(before[n].pgh) || !fi.ModTime().Equal(before[n].mtime) {
			t.Errorf("%s: patroni.yml or pghook.yaml rewritten by the second install", n)
		}
	}
	if strings.Contains(out, "restarting the cluster") {
		t.Errorf("the second lab.sh up restarted the cluster:\n%s", out)
	}
}

// TestLabRunsThePackage (LAB_FROM_DEB=1 only): the lab's Patroni calls the
// packaged /usr/bin/pghook and the watchers are the packaged helper with
// its file capabilities, not copies.
func TestLabRunsThePackage(t *testing.T) {
	env, err := labCmd("env")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(env, "\nLAB_FROM_DEB=1\n") {
		t.Skip("LAB_FROM_DEB is not 1: the lab runs PGHOOK_BIN's copies")
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status} ${Version}", "pghook").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "install ok installed") {
		t.Fatalf("pghook package not installed: %q %v", out, err)
	}
	for _, n := range nodes {
		b, err := os.ReadFile(filepath.Join(labDir, n, "patroni.yml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"post_init: /usr/bin/pghook ", "on_role_change: /usr/bin/pghook callback", "command: /usr/bin/pghook "} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s patroni.yml lacks %q", n, want)
			}
		}
		if strings.Contains(string(b), filepath.Join(labDir, "bin")) {
			t.Errorf("%s patroni.yml still names the lab's own bin directory", n)
		}
		if pid, err := lib(t, "lab_pid", n, "pghook-vip"); err == nil {
			if exe, _ := os.Readlink("/proc/" + pid + "/exe"); exe != "/usr/lib/pghook/pghook-vip" {
				t.Errorf("%s: watcher runs %q, want /usr/lib/pghook/pghook-vip", n, exe)
			}
		}
	}
	if gc, err := exec.Command("getcap", "/usr/lib/pghook/pghook-vip").CombinedOutput(); err != nil || !strings.Contains(string(gc), "cap_net_admin,cap_net_raw=ep") {
		t.Errorf("getcap /usr/lib/pghook/pghook-vip: %q %v", gc, err)
	}
}
