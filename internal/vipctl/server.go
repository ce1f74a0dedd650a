package vipctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Handler performs one request; ctx ends when the server stops or the
// request's time is up.
type Handler func(ctx context.Context, op Op) error

// Server answers requests on a scope's socket.
type Server struct {
	ln      *net.UnixListener
	Timeout time.Duration // per request; 0 means 30s
	Log     zerolog.Logger
}

// Listen binds scope's socket. It fails when another process serves the
// scope in this network namespace (another watcher of the same scope).
func Listen(scope string) (*Server, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: Address(scope), Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w (is another watcher of scope %s running in this network namespace?)", Address(scope), err, scope)
	}
	return &Server{ln: ln}, nil
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
	defer s.ln.Close()
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
