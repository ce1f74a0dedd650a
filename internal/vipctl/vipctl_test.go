package vipctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// TestMain lets a test re-run this binary as another user (see asNobody).
func TestMain(m *testing.M) {
	switch os.Getenv("VIPCTL_CHILD") {
	case "listen": // pose as a watcher, as whoever we run as
		s, err := Listen(childEndpoint())
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		_ = s.Serve(context.Background(), func(context.Context, Op) error { return nil })
		os.Exit(0)
	case "request":
		err := Request(context.Background(), childEndpoint(), Hold)
		fmt.Printf("nowatcher=%t err=%v\n", errors.Is(err, ErrNoWatcher), err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childEndpoint is the endpoint a child process (asNobody) was given.
func childEndpoint() Endpoint {
	ep := Endpoint{Dir: os.Getenv("VIPCTL_DIR"), Scope: os.Getenv("VIPCTL_SCOPE")}
	if os.Getenv("VIPCTL_TRUST") == "any" {
		ep.Trust = trustAny
	}
	return ep
}

func trustAny(string) error { return nil }

// endpoint returns an endpoint no other test (or process) uses, in a
// directory others may enter and write (the tests of the socket protocol
// and of peer credentials; the directory check has tests of its own).
func endpoint(t *testing.T) Endpoint {
	t.Helper()
	dir, err := os.MkdirTemp("", "vipctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return Endpoint{Dir: dir, Scope: strings.ReplaceAll(t.Name(), "/", "_"), Trust: trustAny}
}

type recorder struct {
	mu  sync.Mutex
	ops []Op
	err error
}

func (r *recorder) handle(_ context.Context, op Op) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	return r.err
}

func serve(t *testing.T, sc Endpoint, h Handler) {
	t.Helper()
	s, err := Listen(sc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func TestRequest(t *testing.T) {
	tests := []struct {
		name       string
		handlerErr error
		op         Op
		wantErr    string // "" = success
		noWatcher  bool
	}{
		{name: "hold", op: Hold},
		{name: "release", op: Release},
		{name: "the watcher's failure comes back", op: Hold, handlerErr: errors.New("adding vip: interface eth9\nnot found"), wantErr: "VIP watcher: adding vip: interface eth9 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := endpoint(t)
			r := &recorder{err: tt.handlerErr}
			serve(t, sc, r.handle)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := Request(ctx, sc, tt.op)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Request: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Request: %v, want %q", err, tt.wantErr)
			case errors.Is(err, ErrNoWatcher):
				t.Fatalf("a watcher's own failure must not read as 'no watcher' (the caller would redo it): %v", err)
			}
			if len(r.ops) != 1 || r.ops[0] != tt.op {
				t.Errorf("the watcher saw %v, want [%s]", r.ops, tt.op)
			}
		})
	}
}

func TestRequestNoWatcher(t *testing.T) {
	err := Request(context.Background(), endpoint(t), Hold)
	if !errors.Is(err, ErrNoWatcher) || !isAbsent(err) {
		t.Fatalf("Request with nobody listening: %v, want ErrNoWatcher (absent)", err)
	}
}

func TestRequestBadOp(t *testing.T) {
	if err := Request(context.Background(), endpoint(t), Op("hold\nrelease")); err == nil || errors.Is(err, ErrNoWatcher) {
		t.Fatalf("an unknown op must be refused before anything is sent: %v", err)
	}
}

// A server refuses what it does not understand, and a watcher that hangs
// does not hold the caller past its deadline.
func TestServerRawLines(t *testing.T) {
	sc := endpoint(t)
	r := &recorder{}
	serve(t, sc, r.handle)
	for _, tt := range []struct{ send, want string }{
		{"hold\n", "ok"},
		{"HOLD\n", `error: unknown request "HOLD" (want hold or release)`},
		{"release 10.0.0.1\n", `error: unknown request "release 10.0.0.1" (want hold or release)`},
		{strings.Repeat("x", 5000) + "\n", ""}, // too long: closed without an answer
	} {
		c, err := net.Dial("unix", sc.Path())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(tt.send)); err != nil {
			t.Fatal(err)
		}
		got, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.TrimSuffix(got, "\n") != tt.want {
			t.Errorf("sent %.20q: got %q, want %q", tt.send, got, tt.want)
		}
	}
	if len(r.ops) != 1 {
		t.Errorf("handler ran %d times, want once (only the valid request)", len(r.ops))
	}
}

func TestRequestDeadline(t *testing.T) {
	sc := endpoint(t)
	serve(t, sc, func(ctx context.Context, _ Op) error { <-ctx.Done(); return ctx.Err() })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Request(ctx, sc, Hold)
	if !errors.Is(err, ErrNoWatcher) {
		t.Fatalf("a watcher that does not answer in time: %v, want ErrNoWatcher (so the caller falls back)", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Request returned after %v, past its 100ms deadline", took)
	}
}

// asNobody runs this test binary as child mode as uid/gid 65534.
func asNobody(t *testing.T, mode string, sc Endpoint) *exec.Cmd {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	// The go tool's build directory is not open to other users: a copy.
	dir, err := os.MkdirTemp("", "vipctl-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := dir + "/vipctl.test"
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	trust := ""
	if sc.Trust != nil {
		trust = "any"
	}
	cmd.Env = append(os.Environ(), "VIPCTL_CHILD="+mode, "VIPCTL_SCOPE="+sc.Scope, "VIPCTL_DIR="+sc.Dir, "VIPCTL_TRUST="+trust)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// Another user cannot pose as the watcher: a caller trusts only a
// listener of its own user or root, and falls back.
func TestImpostorWatcherRefused(t *testing.T) {
	sc := endpoint(t)
	cmd := asNobody(t, "listen", sc)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("impostor did not start: %q", line)
	}
	err = Request(context.Background(), sc, Hold)
	if !errors.Is(err, ErrNoWatcher) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("request to a listener of uid 65534: %v, want ErrNoWatcher naming the uid", err)
	}
}

// A watcher serves only its own user and root.
func TestUntrustedCallerRefused(t *testing.T) {
	sc := endpoint(t)
	r := &recorder{}
	serve(t, sc, r.handle)
	out, err := asNobody(t, "request", sc).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "nowatcher=true") {
		t.Errorf("uid 65534's request: %s, want refused (no answer)", out)
	}
	if len(r.ops) != 0 {
		t.Errorf("the watcher acted on an untrusted request: %v", r.ops)
	}
}

type fakeBackend struct {
	ops []string
}

func (f *fakeBackend) Name() string { return "netlink via helper" }
func (f *fakeBackend) Hold(context.Context) error {
	f.ops = append(f.ops, "hold")
	return nil
}
func (f *fakeBackend) Release(context.Context) error {
	f.ops = append(f.ops, "release")
	return nil
}
func (f *fakeBackend) Status(context.Context) (netvip.Status, error) { return netvip.Status{}, nil }

func TestBackend(t *testing.T) {
	tests := []struct {
		name         string
		watcher      bool
		watcherErr   error
		wantErr      bool
		wantFallback string
		wantName     string
	}{
		{name: "watcher serves", watcher: true, wantName: "watcher /"},
		{name: "watcher fails: its error, no second try", watcher: true, watcherErr: errors.New("leader key names n2"), wantErr: true, wantName: "watcher /"},
		{name: "no watcher: the helper", wantFallback: "hold", wantName: "netlink via helper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := endpoint(t)
			r := &recorder{err: tt.watcherErr}
			if tt.watcher {
				serve(t, sc, r.handle)
			}
			fb := &fakeBackend{}
			b := &Backend{Endpoint: sc, Fallback: fb, Log: zerolog.Nop()}
			err := b.Hold(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Hold: %v", err)
			}
			if got := strings.Join(fb.ops, ","); got != tt.wantFallback {
				t.Errorf("fallback ops %q, want %q", got, tt.wantFallback)
			}
			if !strings.HasPrefix(b.Name(), tt.wantName) {
				t.Errorf("Name %q, want prefix %q", b.Name(), tt.wantName)
			}
		})
	}
}

// The socket's directory is checked by both ends: a directory that another
// user could write (here under /tmp, writable by everyone) is refused by
// the watcher and by the caller, which then falls back.
func TestUntrustedDirectoryRefused(t *testing.T) {
	ep := endpoint(t)
	ep.Trust = nil // the real check
	if _, err := Listen(ep); err == nil || !strings.Contains(err.Error(), "control socket directory") {
		t.Fatalf("Listen in a world-writable directory: %v, want refused", err)
	}
	err := Request(context.Background(), ep, Hold)
	if !errors.Is(err, ErrNoWatcher) || isAbsent(err) || !strings.Contains(err.Error(), "control socket directory") {
		t.Fatalf("Request in a world-writable directory: %v, want ErrNoWatcher naming the directory", err)
	}
}

// Only one watcher per scope: the second is refused and the first keeps
// serving; a socket left by a watcher that died is replaced.
func TestOneWatcherPerScope(t *testing.T) {
	ep := endpoint(t)
	// A socket file left behind (its process gone, nobody listening).
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: ep.Path(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	r := &recorder{}
	serve(t, ep, r.handle)
	if _, err := Listen(ep); !errors.Is(err, ErrAnotherWatcher) {
		t.Fatalf("second Listen: %v, want refused", err)
	}
	if err := Request(context.Background(), ep, Release); err != nil {
		t.Fatalf("the first watcher stopped serving: %v", err)
	}
	if fi, err := os.Stat(ep.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %v mode %v, want 0600", err, fi.Mode().Perm())
	}
}

// Nobody but root and the watcher's user can squat the name: in a
// root-owned directory, another user cannot bind the socket at all.
func TestSquatterCannotBind(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to own the directory and run another user")
	}
	dir, err := os.MkdirTemp("/run", "vipctl-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ep := Endpoint{Dir: dir, Scope: "squat"}
	out, _ := asNobody(t, "listen", ep).CombinedOutput()
	if !strings.Contains(string(out), "error") {
		t.Fatalf("uid 65534 bound %s: %s", ep.Path(), out)
	}
	r := &recorder{}
	serve(t, ep, r.handle)
	if err := Request(context.Background(), ep, Hold); err != nil {
		t.Fatalf("the real watcher: %v", err)
	}
}
