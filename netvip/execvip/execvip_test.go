package execvip

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func newBackend(t *testing.T, s Settings) (*Backend, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	s.Scope, s.Node, s.Address = "main", "n1", "192.0.2.10"
	if s.Hold == nil {
		s.Hold = sh("exit 0")
	}
	if s.Release == nil {
		s.Release = sh("exit 0")
	}
	if s.Check == nil {
		s.Check = sh("exit 1")
	}
	b, err := New(s, zerolog.New(&buf))
	if err != nil {
		t.Fatal(err)
	}
	return b, &buf
}

func TestOps(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		op      string
		wantErr string // "" for success
		held    bool
		detail  string
		log     string
	}{
		{"hold ok", Settings{Hold: sh("exit 0")}, "hold", "", false, "", "succeeded"},
		{"hold fails", Settings{Hold: sh("echo 'quota exceeded' >&2; exit 3")}, "hold", "exited 3: quota exceeded", false, "", `"stderr":"quota exceeded"`},
		{"release fails", Settings{Release: sh("exit 2")}, "release", "exec.release /bin/sh exited 2", false, "", ""},
		{"check held", Settings{Check: sh("echo 'eip on i-123'; exit 0")}, "check", "", true, "eip on i-123", ""},
		{"check not held", Settings{Check: sh("exit 1")}, "check", "", false, "exec.check exited 1", ""},
		{"check unknown", Settings{Check: sh("echo api down >&2; exit 2")}, "check", "exited 2: api down", false, "", ""},
		{"missing command", Settings{Hold: []string{"/nonexistent/vip-api"}}, "hold", "starting /nonexistent/vip-api", false, "", ""},
		{"timeout", Settings{Hold: sh("sleep 5"), Timeout: 100 * time.Millisecond}, "hold", "killed after the timeout 100ms", false, "", "timed out"},
		{"multi-line stderr is one line", Settings{Hold: sh("printf 'a\\nb\\n' >&2; exit 4")}, "hold", "exited 4: a ; b", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, logbuf := newBackend(t, tt.s)
			var err error
			var held bool
			var detail string
			switch tt.op {
			case "hold":
				err = b.Hold(context.Background())
			case "release":
				err = b.Release(context.Background())
			case "check":
				st, e := b.Status(context.Background())
				err, held, detail = e, st.Held, st.Detail
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if held != tt.held || detail != tt.detail {
				t.Fatalf("held %v detail %q, want %v %q", held, detail, tt.held, tt.detail)
			}
			if tt.log != "" && !strings.Contains(logbuf.String(), tt.log) {
				t.Fatalf("log %q lacks %q", logbuf.String(), tt.log)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("PGPASSWORD", "secret")
	t.Setenv("PGHOOK_VIP_BACKEND", "netlink")
	out := filepath.Join(t.TempDir(), "env")
	b, _ := newBackend(t, Settings{Hold: []string{"/usr/bin/env"}, Check: sh("env > " + out + "; exit 1")})
	if _, err := b.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PGHOOK_VIP_OP=check\n", "PGHOOK_SCOPE=main\n", "PGHOOK_NODE=n1\n", "PGHOOK_VIP_ADDRESS=192.0.2.10\n", "PATH="} {
		if !strings.Contains(string(env), want) {
			t.Errorf("environment lacks %q", want)
		}
	}
	for _, no := range []string{"PGPASSWORD", "PGHOOK_VIP_BACKEND"} {
		if strings.Contains(string(env), no) {
			t.Errorf("environment passes %s", no)
		}
	}
}

// A timed-out command's children go too: a wrapper script must not leave
// an API call running that could still move the VIP later.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	b, _ := newBackend(t, Settings{Hold: sh("sleep 30 & echo $! > " + pidFile + "; wait"), Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := b.Hold(context.Background())
	var ee *ExitError
	if !errors.As(err, &ee) || ee.TimedOut == 0 {
		t.Fatalf("err %v, want a timeout", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v", took)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	deadline := time.Now().Add(2 * time.Second)
	alive := func() bool {
		// A zombie is dead; whether PID 1 reaps it soon is not ours to test.
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err == nil && syscall.Kill(pid, 0) == nil && !strings.Contains(string(st), ") Z ")
	}
	for alive() {
		if time.Now().After(deadline) {
			t.Fatalf("the command's child %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCallerCancel(t *testing.T) {
	b, _ := newBackend(t, Settings{Release: sh("sleep 5")})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.Release(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the caller's deadline", err)
	}
}

func TestNewRefusesRelativeCommands(t *testing.T) {
	for _, s := range []Settings{
		{Hold: []string{"vip-api"}, Release: sh(""), Check: sh("")},
		{Hold: sh(""), Release: nil, Check: sh("")},
	} {
		if _, err := New(s, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v) accepted", s)
		}
	}
}
