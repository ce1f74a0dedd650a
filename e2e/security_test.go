//go:build e2e

// The security audit, in the lab as Patroni runs it: while the
// cluster bootstraps, switches over and rebuilds a replica through
// create_replica, no password reaches a command line, a log, a roster or
// `pghook env`/`status`/`vip status`/`pgtab` output; files holding a password are
// 0600 and owned by their user; no PostgreSQL server process holds a
// capability; a user outside group postgres cannot move the VIP.
//
// Each detector is first run on a planted leak (a process with a password
// in its argv, a line, a 0644 file): a detector that cannot see the plant
// would make its check pass vacuously.
//
// A restore of a hostile archive writing nothing outside the data
// directory is covered where the extractor lives: replica's
// TestExtractRejectsMaliciousTars (dotdot, absolute, symlink-then-write,
// hardlink, devices, backslash names; it checks nothing appears next to
// the data directory) and FuzzExtractBase/FuzzExtractWAL.
package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// minSecret is the shortest value treated as a password: shorter ones
// would match by chance (the lab's are 20+ characters).
const minSecret = 8

// labSecrets returns every password the lab configured, by where it was
// found: the password keys of each node's rendered patroni.yml and the
// files under $LAB_DIR/secrets (including post_init's role passwords).
func labSecrets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(v, where string) {
		v = strings.TrimSpace(v)
		if len(v) >= minSecret {
			out[v] = where
		}
	}
	var walk func(n any, path string)
	walk = func(n any, path string) {
		switch v := n.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && strings.Contains(strings.ToLower(k), "password") {
					add(s, path+"."+k)
				}
				walk(c, path+"."+k)
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	for _, n := range nodes {
		p := filepath.Join(labDir, n, "patroni.yml")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("reading the lab's patroni.yml: %v", err)
		}
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		walk(doc, p)
	}
	files, _ := filepath.Glob(filepath.Join(labDir, "secrets", "*"))
	for _, f := range files {
		if strings.HasSuffix(f, ".pgpass") {
			continue // holds the same passwords as the .password files
		}
		if b, err := os.ReadFile(f); err == nil {
			add(string(b), f)
		}
	}
	if len(out) < 3 {
		t.Fatalf("found only %d lab passwords (%v): the lab's layout changed; update labSecrets", len(out), out)
	}
	return out
}

// leaks returns a description of every secret found in text.
func leaks(text string, secrets map[string]string) []string {
	var out []string
	for s, where := range secrets {
		if strings.Contains(text, s) {
			out = append(out, "the password of "+where)
		}
	}
	sort.Strings(out)
	return out
}

// argvSampler reads /proc/*/cmdline of every process on the host (all
// namespaces) every few milliseconds and keeps each distinct command line,
// so that short-lived processes (callbacks, create-replica, pg_basebackup,
// psql) are seen too.
type argvSampler struct {
	mu     sync.Mutex
	seen   map[string]string // cmdline -> comm
	rounds int
	stop   chan struct{}
	done   chan struct{}
}

func startArgvSampler() *argvSampler {
	s := &argvSampler{seen: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *argvSampler) sample() {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		cl := string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
		s.mu.Lock()
		if _, ok := s.seen[cl]; !ok {
			comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
			s.seen[cl] = strings.TrimSpace(string(comm))
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.rounds++
	s.mu.Unlock()
}

func (s *argvSampler) Stop() {
	close(s.stop)
	<-s.done
}

// findings returns every sampled command line holding a secret.
func (s *argvSampler) findings(secrets map[string]string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for cl, comm := range s.seen {
		if l := leaks(cl, secrets); len(l) > 0 {
			out = append(out, fmt.Sprintf("%s: %q holds %s", comm, cl, strings.Join(l, ", ")))
		}
	}
	sort.Strings(out)
	return out
}

func (s *argvSampler) count(match string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for cl := range s.seen {
		if strings.Contains(cl, match) {
			n++
		}
	}
	return n
}

// labLogFiles lists every log the lab writes: Patroni's (with pghook's
// callback, post_init and create_replica lines), the VIP watchers',
// etcd's and PostgreSQL's.
func labLogFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, n := range nodes {
		d := filepath.Join(labDir, n)
		for _, pat := range []string{"*.log", "pglog/*"} {
			m, _ := filepath.Glob(filepath.Join(d, pat))
			out = append(out, m...)
		}
	}
	if len(out) < len(nodes) {
		t.Fatalf("found only %d log files in %s: the lab's layout changed", len(out), labDir)
	}
	return out
}

// logFindings returns "file:line: what" for every log line holding a secret.
func logFindings(files []string, secrets map[string]string) (findings []string, lines int) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			findings = append(findings, fmt.Sprintf("%s: unreadable: %v", f, err))
			continue
		}
		for i, l := range strings.Split(string(b), "\n") {
			lines++
			if lk := leaks(l, secrets); len(lk) > 0 {
				findings = append(findings, fmt.Sprintf("%s:%d: %s in %q", f, i+1, strings.Join(lk, ", "), l))
			}
		}
	}
	return findings, lines
}

// secretFileFindings walks dir and returns every regular file that holds a
// secret but is readable or writable by group or others, or is owned by
// another user than postgres (or root). checked counts such files.
func secretFileFindings(dir string, secrets map[string]string, pgUID int) (findings []string, checked []string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case "base", "pg_wal", "pg_xact", "member", "backups", "bin":
				return filepath.SkipDir // table data, WAL, etcd's data, backups, binaries
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Size() > 4<<20 || strings.HasSuffix(p, ".log") || strings.Contains(p, "/pglog/") {
			return nil // logs are checked for any secret at all
		}
		b, err := os.ReadFile(p)
		if err != nil || len(leaks(string(b), secrets)) == 0 {
			return nil
		}
		checked = append(checked, p)
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm()&0o077 != 0 || (int(st.Uid) != pgUID && st.Uid != 0) {
			findings = append(findings, fmt.Sprintf("%s holds %s but is %v uid %d (want 0600, owned by postgres)",
				p, strings.Join(leaks(string(b), secrets), ", "), fi.Mode().Perm(), st.Uid))
		}
		return nil
	})
	return findings, checked
}

// postgresCapEff returns CapEff of every PostgreSQL server process on the
// host, in any namespace, keyed "pid comm".
func postgresCapEff() map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := e.Name()
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		exe, err := os.Readlink("/proc/" + pid + "/exe")
		if err != nil || filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != "postgres" {
			continue
		}
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				out[pid+" "+exe] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// asUser runs argv as uid:gid with no supplementary groups in node's
// network namespace, from /.
// runDir is a lab node's run_dir (lab_run_dir in e2e/lab/lib.sh).
func runDir(node string) string { return "/run/pghook-lab/" + node }

func asUser(node string, uid, gid int, argv ...string) (string, error) {
	args := append([]string{"netns", "exec", "pgh-" + node, "setpriv",
		"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups",
		"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent"}, argv...)
	cmd := exec.Command("ip", args...)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSecurityAudit(t *testing.T) {
	if _, err := lib(t, "lab_wait_healthy", "120"); err != nil {
		dumpLogs(t)
		t.Fatal(err)
	}
	secrets := labSecrets(t)
	t.Logf("looking for %d lab passwords", len(secrets))
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	pgUID, _ := strconv.Atoi(pgUser.Uid)
	var anySecret string
	for s := range secrets {
		anySecret = s
		break
	}

	// Negative controls: each detector sees a planted leak.
	t.Run("controls", func(t *testing.T) {
		s := startArgvSampler()
		plant := exec.Command("sh", "-c", "sleep 2", "pghook-audit-control", anySecret)
		if err := plant.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		s.Stop()
		plant.Process.Kill()
		plant.Wait()
		if f := s.findings(secrets); len(f) == 0 {
			t.Error("argv detector missed a password on a command line it sampled")
		}
		tmp := t.TempDir()
		log := filepath.Join(tmp, "x.log")
		os.WriteFile(log, []byte("a\n{\"dsn\":\"password="+anySecret+"\"}\n"), 0o600)
		if f, _ := logFindings([]string{log}, secrets); len(f) != 1 {
			t.Errorf("log detector: %v, want one finding", f)
		}
		os.WriteFile(filepath.Join(tmp, "conf"), []byte("password: "+anySecret+"\n"), 0o644)
		os.WriteFile(filepath.Join(tmp, "ok"), []byte("password: "+anySecret+"\n"), 0o600)
		os.Chown(filepath.Join(tmp, "ok"), pgUID, pgUID)
		if f, c := secretFileFindings(tmp, secrets, pgUID); len(f) != 1 || len(c) != 2 {
			t.Errorf("file detector: findings %v of %v, want the 0644 file only", f, c)
		}
	})

	// A lab run while command lines are sampled: a switchover, a backup
	// and a replica rebuilt through create_replica.
	s := startArgvSampler()
	l := leader(t)
	to := otherNode(l)
	if out, err := lib(t, "lab_switchover", l, to); err != nil {
		s.Stop()
		t.Fatalf("switchover %s -> %s: %v: %s", l, to, err, out)
	}
	eventually(t, 90*time.Second, to+" the leader", func() error {
		got, err := lib(t, "lab_leader")
		if err == nil && got != to {
			err = fmt.Errorf("leader %s", got)
		}
		return err
	})
	if _, err := lib(t, "lab_wait_healthy", "90"); err != nil {
		s.Stop()
		dumpLogs(t)
		t.Fatal(err)
	}
	takeBackup(t, to)
	rebuilt := otherNode(to)
	log, _ := reinit(t, to, rebuilt)
	if len(createReplicaLines(log)) == 0 {
		t.Errorf("no create_replica line from pghook in %s's log: the rebuild did not run pghook", rebuilt)
	}
	rolesFollow(t, 60*time.Second)

	// Operator commands on every node, as postgres.
	pghook := filepath.Join(labDir, "bin", "pghook")
	helper := labEnv(t)["LAB_PGHOOK_VIP"]
	var outputs []string
	for _, n := range nodes {
		conf := filepath.Join(labDir, n, "pghook.yaml")
		cmds := [][]string{
			{pghook, "--config", conf, "env", scope},
			{pghook, "--config", conf, "pgtab"},
			{pghook, "--config", conf, "pgtab", "--json"},
			{pghook, "--config", conf, "--log-level", "debug", "vip", "status", "--scope", scope},
			{pghook, "--config", conf, "--log-level", "debug", "status", "--scope", scope},
			{pghook, "--config", conf, "status", "--json", "--scope", scope},
		}
		if helper != "" {
			cmds = append(cmds, []string{helper, "status", "--json", "--scope", scope})
		}
		for _, c := range cmds {
			// lab_exec_pg's error carries stderr; both streams are checked.
			out, err := lib(t, "lab_exec_pg", append([]string{n}, c...)...)
			text := out
			if err != nil {
				text += "\n" + err.Error()
			}
			outputs = append(outputs, fmt.Sprintf("%s: %s\n%s", n, strings.Join(c, " "), text))
		}
	}
	s.Stop()

	t.Run("argv", func(t *testing.T) {
		if f := s.findings(secrets); len(f) > 0 {
			t.Errorf("passwords on command lines (visible to every user in ps):\n%s", strings.Join(f, "\n"))
		}
		// The sampler must have seen the processes that matter.
		for _, want := range []string{"patroni", "postgres"} {
			if s.count(want) == 0 {
				t.Errorf("no command line with %q sampled in %d rounds: the sampler missed the run", want, s.rounds)
			}
		}
		// Short-lived ones are caught when a sample falls into their life.
		t.Logf("%d distinct command lines in %d samples of /proc; short-lived ones seen: %d callback, %d create-replica, %d backup, %d pg_ctl",
			len(s.seen), s.rounds, s.count(" callback"), s.count("create-replica"), s.count(" backup"), s.count("pg_ctl"))
	})

	t.Run("logs", func(t *testing.T) {
		files := labLogFiles(t)
		f, lines := logFindings(files, secrets)
		if len(f) > 0 {
			t.Errorf("passwords in the lab's logs:\n%s", strings.Join(f, "\n"))
		}
		t.Logf("%d lines of %d log files checked", lines, len(files))
	})

	t.Run("pgtab", func(t *testing.T) {
		for _, n := range nodes {
			m, _ := filepath.Glob(filepath.Join(labDir, n, "home", ".pgtab*"))
			if len(m) == 0 {
				t.Errorf("%s has no roster", n)
			}
			for _, p := range m {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Errorf("%v", err)
				}
				if lk := leaks(string(b), secrets); len(lk) > 0 {
					t.Errorf("%s holds %s", p, strings.Join(lk, ", "))
				}
			}
		}
	})

	t.Run("command output", func(t *testing.T) {
		for _, o := range outputs {
			if lk := leaks(o, secrets); len(lk) > 0 {
				t.Errorf("%s in the output of %s", strings.Join(lk, ", "), o)
			}
		}
		for _, want := range []string{"export PGDATA=", "PATRONICTL_CONFIG_FILE", `"exit_code"`} {
			if !strings.Contains(strings.Join(outputs, "\n"), want) {
				t.Errorf("no %q in the commands' output: they did not run as intended:\n%s", want, strings.Join(outputs, "\n"))
			}
		}
	})

	t.Run("secret files", func(t *testing.T) {
		f, checked := secretFileFindings(labDir, secrets, pgUID)
		if len(f) > 0 {
			t.Errorf("files holding passwords are not private to their user:\n%s", strings.Join(f, "\n"))
		}
		if len(checked) < len(nodes) {
			t.Errorf("only %d files hold a password (%v): expected at least each node's patroni.yml", len(checked), checked)
		}
		t.Logf("%d files hold a password: %v", len(checked), checked)
	})

	t.Run("CapEff", func(t *testing.T) {
		caps := postgresCapEff()
		for k, v := range caps {
			if v != "0000000000000000" {
				t.Errorf("PostgreSQL process %s has CapEff %s, want 0", k, v)
			}
		}
		if len(caps) < 2*len(nodes) {
			t.Errorf("found only %d PostgreSQL processes: %v", len(caps), caps)
		}
		t.Logf("CapEff 0 on all %d PostgreSQL server processes on the host", len(caps))
	})

	t.Run("VIP outside group postgres", func(t *testing.T) {
		requireVIP(t)
		l := vipOnLeader(t, 60*time.Second)
		n := otherNode(l)
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Skip("no user nobody")
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		// A copy of the node's pghook.yaml that nobody may read, so that
		// only privilege stands between nobody and the VIP.
		dir, err := os.MkdirTemp("", "pghook-audit-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		src, err := os.ReadFile(filepath.Join(labDir, n, "pghook.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "pghook.yaml")
		if err := os.WriteFile(conf, src, 0o644); err != nil {
			t.Fatal(err)
		}
		cidr := labEnv(t)["LAB_VIP_CIDR"]
		// Each attempt would move the VIP if it were allowed: up on a
		// replica, down on the leader, a callback claiming the primary role.
		type attempt struct {
			node     string
			argv     []string
			exitZero bool // a callback exits 0 whatever happened (Patroni ignores it)
		}
		attempts := []attempt{
			{n, []string{pghook, "--config", conf, "vip", "up", "--scope", scope}, false},
			{n, []string{pghook, "--config", conf, "vip", "up", "--scope", scope, "--vip-backend", "netlink", "--vip-address", cidr, "--vip-interface", "eth0"}, false},
			{n, []string{pghook, "--config", conf, "callback", "on_role_change", "master", scope}, true},
			{l, []string{pghook, "--config", conf, "vip", "down", "--scope", scope}, false},
		}
		if helper != "" {
			attempts = append(attempts,
				attempt{n, []string{helper, "up", "--scope", scope}, false},
				attempt{l, []string{helper, "down", "--scope", scope}, false})
		}
		watchLog := func(node string) string { return filepath.Join(labDir, node, "vipwatch.log") }
		logFrom := map[string]int64{}
		for _, node := range []string{n, l} {
			if fi, err := os.Stat(watchLog(node)); err == nil {
				logFrom[node] = fi.Size()
			}
		}
		for _, a := range attempts {
			out, err := asUser(a.node, uid, gid, a.argv...)
			h := vipHolders(t)
			if len(h) != 1 || h[0] != l {
				t.Errorf("as nobody on %s, %v moved the VIP: holders %v, want [%s]\n%s", a.node, a.argv, h, l, out)
			}
			if err == nil && !a.exitZero {
				t.Errorf("as nobody on %s, %v succeeded:\n%s", a.node, a.argv, out)
			}
			t.Logf("nobody on %s: %s -> %v: %s", a.node, strings.Join(a.argv, " "), err, strings.TrimSpace(out))
		}
		// The running watchers' control sockets are out of nobody's reach: their
		// directory admits only root and postgres (the kernel refuses the
		// connection before the watcher's own SO_PEERCRED check).
		for _, node := range []string{n, l} {
			sock := filepath.Join(runDir(node), "vip-"+scope+".sock")
			if out, err := asUser(node, uid, gid, "/usr/bin/test", "-w", sock); err == nil {
				t.Errorf("nobody may write %s: %s", sock, out)
			}
		}
		// Control: the same helper runs for postgres, so the refusals above
		// come from nobody's privileges, not from a broken command.
		if helper != "" {
			if out, err := lib(t, "lab_exec_pg", n, helper, "status", "--scope", scope); err != nil {
				t.Errorf("control: pghook-vip status as postgres on %s failed: %v %s", n, err, out)
			}
			fi, err := os.Stat(helper)
			if err == nil && fi.Mode().Perm()&0o001 != 0 {
				t.Errorf("%s is %v: others may execute the capability-holding helper", helper, fi.Mode().Perm())
			}
		}
		vipOnLeader(t, 60*time.Second)
	})
}
