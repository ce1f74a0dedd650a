package vipctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Handler performs one request; ctx ends when the server stops or the
// request's time is up.
type Handler func(ctx context.Context, op Op) error

// Server answers requests on a scope's socket.
type Server struct {
	ln      *net.UnixListener
	lock    *os.File
	Timeout time.Duration // per request; 0 means 30s
	Log     zerolog.Logger
}

// ErrAnotherWatcher: a watcher of the same scope already serves it.
var ErrAnotherWatcher = errors.New("another watcher runs")

// Listen binds the endpoint's socket after checking its directory. It
// takes the scope's lock file first and fails when another watcher of the
// scope holds it; a socket left behind by a watcher that died is replaced.
func Listen(ep Endpoint) (*Server, error) {
	if err := ep.check(); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(ep.lockPath(), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("control socket lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: scope %s (it holds %s): stop it first", ErrAnotherWatcher, ep.Scope, ep.lockPath())
		}
		return nil, fmt.Errorf("locking %s: %w", ep.lockPath(), err)
	}
	path := ep.Path()
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			lock.Close()
			return nil, fmt.Errorf("%s exists and is not a socket: remove it", path)
		}
		if err := os.Remove(path); err != nil {
			lock.Close()
			return nil, fmt.Errorf("removing the stale socket %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	// Only the owner (and root) may connect; the directory already keeps
	// everyone else out.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		lock.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return &Server{ln: ln, lock: lock}, nil
}

// Addr is the socket's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests with h until ctx ends, then closes the socket and
// waits for the requests in progress.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = s.ln.Close() })
	defer stop()
	defer func() {
		_ = s.ln.Close()
		if s.lock != nil {
			_ = s.lock.Close()
		}
	}()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			s.Log.Warn().Err(err).Str("action", "vip watch").Msg("control socket: accept failed")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, c, h)
		}()
	}
}

func (s *Server) serve(ctx context.Context, c *net.UnixConn, h Handler) {
	defer c.Close()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_ = c.SetDeadline(time.Now().Add(timeout))
	uid, err := peerUID(c)
	if err != nil || !trusted(uid) {
		// Not an error of ours: someone else's process knocked.
		s.Log.Warn().Err(err).Uint32("uid", uid).Str("action", "vip watch").Msg("control socket: request from an untrusted user refused")
		return
	}
	line, err := readLine(bufio.NewReader(c))
	if err != nil {
		s.Log.Warn().Err(err).Str("action", "vip watch").Msg("control socket: unreadable request")
		return
	}
	reply := "ok"
	op, err := ParseOp(line)
	if err == nil {
		err = h(ctx, op)
	}
	if err != nil {
		reply = "error: " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	_, _ = c.Write([]byte(reply + "\n"))
}
