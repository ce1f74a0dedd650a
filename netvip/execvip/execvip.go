// Package execvip is the exec VIP backend: pghook decides when (the DCS
// guard, the callbacks, the reconciler) and commands from pghook.yaml do
// the moving — a cloud provider's API that assigns a secondary address or
// an elastic IP, a load balancer's target. Commands run without a shell,
// with a timeout, as the caller (the callback's user); they need no
// capabilities, so they never run through the VIP helper.
//
//   - Hold runs exec.hold; exit 0 means this node holds the VIP.
//   - Release runs exec.release; exit 0 means it does not.
//   - Status runs exec.check: exit 0 held, exit 1 not held, anything else
//     (or a timeout) is an error, which makes the reconciler act again.
//
// A command that fails or times out is an error, never taken as done: the
// callback reports it and `pghook vip watch` runs the command again at its
// next step. Each command gets PGHOOK_VIP_OP (hold, release, check),
// PGHOOK_SCOPE, PGHOOK_NODE and PGHOOK_VIP_ADDRESS in its environment, on
// top of the caller's minus PostgreSQL's PG* variables. Its standard error
// is logged (the first 2 KiB); check's first line of standard output is
// the status detail.
package execvip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// DefaultTimeout bounds each command when Settings.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// maxOutput bounds what is kept of a command's output.
const maxOutput = 2048

// Settings configure the backend.
type Settings struct {
	Hold, Release, Check []string // argv, argv[0] an absolute path
	Timeout              time.Duration
	Scope, Node, Address string // for the commands' environment
}

// Backend is the exec backend.
type Backend struct {
	s   Settings
	log zerolog.Logger
}

var _ netvip.Backend = (*Backend)(nil)

// New checks s and returns the backend.
func New(s Settings, log zerolog.Logger) (*Backend, error) {
	for _, c := range []struct {
		key  string
		argv []string
	}{{"hold", s.Hold}, {"release", s.Release}, {"check", s.Check}} {
		if len(c.argv) == 0 || !strings.HasPrefix(c.argv[0], "/") {
			return nil, fmt.Errorf("execvip: exec.%s must be a command list starting with an absolute path", c.key)
		}
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	return &Backend{s: s, log: log.With().Str("vip_backend", "exec").Logger()}, nil
}

// Name implements netvip.Backend.
func (b *Backend) Name() string { return "exec" }

// Hold implements netvip.Backend.
func (b *Backend) Hold(ctx context.Context) error {
	_, _, err := b.run(ctx, "hold", b.s.Hold, false)
	return err
}

// Release implements netvip.Backend.
func (b *Backend) Release(ctx context.Context) error {
	_, _, err := b.run(ctx, "release", b.s.Release, false)
	return err
}

// Status implements netvip.Backend.
func (b *Backend) Status(ctx context.Context) (netvip.Status, error) {
	code, out, err := b.run(ctx, "check", b.s.Check, true)
	if err != nil {
		return netvip.Status{}, err
	}
	detail, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if detail == "" {
		detail = "exec.check exited " + fmt.Sprint(code)
	}
	return netvip.Status{Held: code == 0, Detail: detail}, nil
}

// ExitError is a command that ran and exited non-zero, or was killed.
type ExitError struct {
	Op       string // hold, release, check
	Cmd      string
	Code     int // -1: killed
	TimedOut time.Duration
	Stderr   string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exec.%s %s exited %d", e.Op, e.Cmd, e.Code)
	if e.TimedOut > 0 {
		msg = fmt.Sprintf("exec.%s %s killed after the timeout %v (exec.timeout): not taken as done", e.Op, e.Cmd, e.TimedOut)
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// run runs argv for op. For check, exit 1 is an answer, not an error.
func (b *Backend) run(ctx context.Context, op string, argv []string, check bool) (int, string, error) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, b.s.Timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Env = b.env(op)
	cmd.Dir = "/"
	var out, errOut limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: a wrapper script's children go too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	took := time.Since(start)
	stderr := oneLine(errOut.String())
	log := b.log.With().Str("action", "vip "+op).Str("command", argv[0]).Dur("took_ms", took).Logger()
	if stderr != "" {
		log.Info().Str("stderr", stderr).Msg("exec backend command wrote to standard error")
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case cctx.Err() != nil && ctx.Err() == nil:
		e := &ExitError{Op: op, Cmd: argv[0], Code: -1, TimedOut: b.s.Timeout, Stderr: stderr}
		log.Error().Err(e).Msg("exec backend command timed out")
		return -1, "", e
	case ctx.Err() != nil:
		return -1, "", fmt.Errorf("exec.%s %s: %w", op, argv[0], ctx.Err())
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		return -1, "", fmt.Errorf("exec.%s: starting %s: %w (exec.%s in pghook.yaml)", op, argv[0], err, op)
	}
	if code == 0 || (check && code == 1) {
		log.Debug().Int("exit", code).Msg("exec backend command")
		if !check {
			log.Info().Msg("exec backend command succeeded")
		}
		return code, out.String(), nil
	}
	e := &ExitError{Op: op, Cmd: argv[0], Code: code, Stderr: stderr}
	log.Error().Err(e).Msg("exec backend command failed")
	return code, out.String(), e
}

// env is the caller's environment without PostgreSQL's PG* and pghook's
// own variables, plus what the command needs to know.
func (b *Backend) env(op string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PGHOOK_VIP_OP="+op, "PGHOOK_SCOPE="+b.s.Scope, "PGHOOK_NODE="+b.s.Node, "PGHOOK_VIP_ADDRESS="+b.s.Address)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "\n", " ; ")), " ")
}

// limitedBuffer keeps the first maxOutput bytes and drops the rest, so a
// chatty command cannot fill memory; it never fails a write.
type limitedBuffer struct{ bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
