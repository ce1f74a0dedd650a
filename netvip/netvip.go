// Package netvip makes the virtual IP match a desired state: held on this
// node or released. Backends: none (VIP handling disabled), and the
// netlink and Pacemaker backends (separate issue). Every operation is
// idempotent and safe to interrupt: "already there" and "already gone" are
// success, because Patroni SIGKILLs a callback when the next one arrives.
package netvip

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
)

// Backend holds or releases the VIP.
type Backend interface {
	// Name is the backend name for logs.
	Name() string
	// Hold makes this node hold the VIP.
	Hold(ctx context.Context) error
	// Release makes this node not hold the VIP.
	Release(ctx context.Context) error
	// Status reports whether this node holds the VIP.
	Status(ctx context.Context) (Status, error)
}

// Status is what a backend observed.
type Status struct {
	Held   bool   `json:"held"`
	Detail string `json:"detail"`
}

// Settings select and configure a backend.
type Settings struct {
	Backend       string // none, netlink, pcs
	Address       string // CIDR
	Interface     string
	Label         string
	Resource      string
	Announcements int
}

// ErrNotBuilt is returned for a backend this build does not have yet.
var ErrNotBuilt = errors.New("netvip: backend not built yet")

// New returns the backend that s names.
func New(s Settings, log zerolog.Logger) (Backend, error) {
	switch s.Backend {
	case "", "none":
		return None{}, nil
	case "netlink", "pcs":
		return nil, fmt.Errorf("%w: %q (use backend none for now)", ErrNotBuilt, s.Backend)
	}
	return nil, fmt.Errorf("netvip: unknown backend %q: want none, netlink or pcs", s.Backend)
}

// None is the backend for clusters without a VIP: every operation
// succeeds and changes nothing.
type None struct{}

// Name implements Backend.
func (None) Name() string { return "none" }

// Hold implements Backend.
func (None) Hold(context.Context) error { return nil }

// Release implements Backend.
func (None) Release(context.Context) error { return nil }

// Status implements Backend.
func (None) Status(context.Context) (Status, error) {
	return Status{Held: false, Detail: "no VIP configured (backend none)"}, nil
}
