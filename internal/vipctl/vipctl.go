// Package vipctl is the control socket of a running `pghook vip watch`. A
// callback running as postgres asks the watcher — which already holds
// CAP_NET_ADMIN and CAP_NET_RAW and has its DCS connection open — to hold
// or release the VIP now, instead of starting the privileged helper: a
// process start costs more than the whole request.
//
// The socket is a path socket, <run_dir>/vip-<scope>.sock, in a directory
// that only root and the watcher's user may write (/run/pghook, made by the
// watcher's unit): both ends check that directory and every one above it
// before they trust it, so no other local user can take the name first
// (an abstract socket can be bound by anyone in the network namespace).
// Both ends also check the other's credentials (SO_PEERCRED): the watcher
// serves only its own user and root, and a caller trusts only a watcher of
// its own user or root. A request grants no more than running the helper
// does: the same guarded hold (DCS leader key, address probe) or release,
// with the settings of the watcher's root-owned config; no address, no
// setting travels over the socket. A lock file beside the socket keeps a
// second watcher of the same scope from replacing the first one's socket.
//
// Protocol: one request per connection, one line each way:
//
//	-> hold | release
//	<- ok | error: <message>
package vipctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pghook/pghook/internal/privilege"
)

// Op is what a caller asks of the watcher.
type Op string

const (
	Hold    Op = "hold"
	Release Op = "release"
)

// ErrNoWatcher means no trusted watcher answered the request: nobody
// listens on the scope's socket, the listener is not of a trusted user, or
// it went away before replying. The caller should do the operation itself
// (through the helper); operations are idempotent, so doing one twice is
// harmless.
var ErrNoWatcher = errors.New("no trusted VIP watcher answered")

// maxLine bounds a request or reply line.
const maxLine = 4096

// Endpoint names a scope's control socket.
type Endpoint struct {
	// Dir is the directory of the socket (pghook.yaml's run_dir).
	Dir   string
	Scope string
	// Trust checks Dir before it is used; nil means privilege.CheckDir
	// with this process's uid as the one owner besides root.
	Trust func(dir string) error
}

// maxSocketPath is the room in sockaddr_un.sun_path, less its NUL.
const maxSocketPath = 107

// Path is the socket's path.
func (e Endpoint) Path() string { return filepath.Join(e.Dir, "vip-"+e.Scope+".sock") }

func (e Endpoint) lockPath() string { return filepath.Join(e.Dir, "vip-"+e.Scope+".lock") }

// check validates the scope as a file name and the directory as trusted.
func (e Endpoint) check() error {
	if e.Scope == "" || e.Scope == "." || e.Scope == ".." || strings.ContainsAny(e.Scope, "/\x00") {
		return fmt.Errorf("scope %q cannot name a control socket", e.Scope)
	}
	if len(e.Path()) > maxSocketPath {
		return fmt.Errorf("control socket path %s is longer than %d bytes: choose a shorter run_dir", e.Path(), maxSocketPath)
	}
	trust := e.Trust
	if trust == nil {
		trust = func(dir string) error { return privilege.CheckDir(dir, os.Getuid()) }
	}
	if err := trust(e.Dir); err != nil {
		return fmt.Errorf("control socket directory: %w (it must be owned by root or the watcher's user, mode 0750 or stricter, below root-owned directories; the unit's RuntimeDirectory makes /run/pghook so)", err)
	}
	return nil
}

// ParseOp parses a request line (without its newline).
func ParseOp(s string) (Op, error) {
	switch Op(s) {
	case Hold, Release:
		return Op(s), nil
	}
	return "", fmt.Errorf("unknown request %q (want hold or release)", truncate(s, 40))
}

// Request asks scope's watcher to perform op and waits for its answer
// until ctx ends. It returns nil when the watcher did it, the watcher's
// error when it tried and failed, and an error wrapping ErrNoWatcher when
// no trusted watcher answered.
func Request(ctx context.Context, ep Endpoint, op Op) error {
	if _, err := ParseOp(string(op)); err != nil {
		return err
	}
	if err := ep.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrNoWatcher, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", ep.Path())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoWatcher, err)
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	uid, err := peerUID(uc)
	if err != nil {
		return fmt.Errorf("%w: reading the listener's credentials: %v", ErrNoWatcher, err)
	}
	if !trusted(uid) {
		return fmt.Errorf("%w: %s is served by uid %d, neither root nor this user: not trusted", ErrNoWatcher, ep.Path(), uid)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write([]byte(string(op) + "\n")); err != nil {
		return fmt.Errorf("%w: sending %s: %v", ErrNoWatcher, op, err)
	}
	line, err := readLine(bufio.NewReader(c))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: no answer to %s: %v", ErrNoWatcher, op, ctx.Err())
		}
		return fmt.Errorf("%w: no answer to %s: %v", ErrNoWatcher, op, err)
	}
	switch {
	case line == "ok":
		return nil
	case strings.HasPrefix(line, "error: "):
		return fmt.Errorf("VIP watcher: %s", strings.TrimPrefix(line, "error: "))
	}
	return fmt.Errorf("%w: unexpected answer %q", ErrNoWatcher, truncate(line, 40))
}

func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return "", err
		}
		b.Write(chunk)
		if b.Len() > maxLine {
			return "", fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if !isPrefix {
			return b.String(), nil
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
