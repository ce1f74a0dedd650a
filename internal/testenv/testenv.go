// Package testenv starts real services for integration tests: a
// single-member etcd and a PostgreSQL 15 instance, on loopback only, in
// temporary directories removed when the test ends. It is imported only
// by tests built with the integration tag.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// RequireBinary skips the test when path is not executable.
func RequireBinary(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not installed (make deps)", path)
	}
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Etcd is a running single-member etcd.
type Etcd struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string
}

// StartEtcd runs /usr/bin/etcd on loopback until the test ends.
func StartEtcd(t testing.TB, extra ...string) *Etcd {
	t.Helper()
	RequireBinary(t, "/usr/bin/etcd")
	dir := t.TempDir()
	cport, pport := FreePort(t), FreePort(t)
	ep := fmt.Sprintf("http://127.0.0.1:%d", cport)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	cmd := exec.Command("/usr/bin/etcd", "--name", "t", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", ep, "--advertise-client-urls", ep,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "t="+peer, "--pre-vote=true", "--logger=zap", "--log-outputs", filepath.Join(dir, "etcd.log"))
	cmd.Args = append(cmd.Args, extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	WaitFor(t, 20*time.Second, "etcd health", func() error {
		out, err := exec.Command("etcdctl", "--endpoints", ep, "endpoint", "health").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	return &Etcd{Endpoint: ep, Dir: dir}
}

// Ctl runs etcdctl against e and returns its output.
func (e *Etcd) Ctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("etcdctl", append([]string{"--endpoints", e.Endpoint}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl %v: %v: %s", args, err, out)
	}
	return string(out)
}

// Postgres is a running PostgreSQL owned by the postgres OS user.
type Postgres struct {
	Dir, DataDir, SocketDir, BinDir string
	Port                            int
}

// StartPostgres initdbs and starts PostgreSQL 15 as user postgres, on a
// socket in a private directory and on 127.0.0.1:PORT, until the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	RequireRoot(t)
	bin := "/usr/lib/postgresql/15/bin"
	RequireBinary(t, bin+"/initdb")
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "pghook-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	os.Chown(dir, uid, gid)
	p := &Postgres{Dir: dir, DataDir: filepath.Join(dir, "data"), SocketDir: dir, BinDir: bin, Port: FreePort(t)}
	AsPostgres(t, bin+"/initdb", "-D", p.DataDir, "-U", "postgres", "-A", "trust", "--no-sync")
	AsPostgres(t, bin+"/pg_ctl", "-D", p.DataDir, "-l", filepath.Join(dir, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c cluster_name=pghook_it", p.Port, dir), "start")
	t.Cleanup(func() {
		exec.Command("runuser", "-u", "postgres", "--", bin+"/pg_ctl", "-D", p.DataDir, "-m", "immediate", "-w", "stop").Run()
	})
	return p
}

// AsPostgres runs a command as the postgres OS user and fails the test on error.
func AsPostgres(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// WaitFor retries f until it succeeds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
