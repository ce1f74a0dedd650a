// Package netvip makes the virtual IP match a desired state: held on this
// node or released. Backends: none (VIP handling disabled), netlink (the
// address on a local interface, announced with gratuitous ARP or
// unsolicited neighbour advertisements; Linux only) and pcs (Pacemaker
// moves the resource that carries the VIP; see Pcs); the dns and exec
// backends live in the subpackages dnsvip and execvip. Every operation is
// idempotent and safe to interrupt: "already there" and "already gone" are
// success, because Patroni SIGKILLs a callback when the next one arrives.
//
// For the CLI, besides New: Spawner, SpawnDetached and RunDetached run the
// announcement rounds in a process that survives the callback (the hidden
// `pghook vip announce` command: RunDetached, then ParseAnnounceArgs and
// Announce); WhoHas asks who answers for an address; HaveCaps tells whether this
// process may add addresses (CAP_NET_ADMIN) and send announcements
// (CAP_NET_RAW).
package netvip

import (
	"context"
	"fmt"
	"time"

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

// Gate is a check that must pass before a VIP is taken, such as "the DCS
// leader key does not name another member". It returns nil to allow.
type Gate func(ctx context.Context) error

// GatedHolder is a Backend that can run a Gate concurrently with its own
// preparation (for netlink: looking up the link and probing the address),
// so that a DCS read does not add to the time a takeover takes. It adds the
// VIP only once the gate has passed; a failed gate leaves nothing changed.
type GatedHolder interface {
	HoldIf(ctx context.Context, gate Gate) error
}

// PromptReleaser is a Backend whose Release and Status wait on a remote
// service (dnsvip.NamedVIP updates its DNS record before it lets the
// address go, so that clients resolving the name are not sent to an
// address nobody holds, and its Status reads the record). For a node that
// cannot read the DCS, which is likely cut off from that service as well
// and must not keep the address while a new leader takes it:
// AddressHeld tells whether the address is here without asking the
// service, and ReleasePromptly lets the address go first and does the
// rest after.
type PromptReleaser interface {
	AddressHeld(ctx context.Context) (bool, error)
	ReleasePromptly(ctx context.Context) error
}

// Status is what a backend observed.
type Status struct {
	Held   bool   `json:"held"`
	Detail string `json:"detail"`
}

// Settings select and configure a backend. Zero values mean the defaults.
// The yaml keys are those of a scope's vip section in pghook.yaml
// (internal/config embeds Settings there).
type Settings struct {
	// Backend is none, netlink, pcs (here), dns or exec (netvip/dnsvip,
	// netvip/execvip).
	Backend string `yaml:"backend"`
	Address string `yaml:"address"` // CIDR such as 192.0.2.10/24 or 2001:db8::10/64
	// Addresses, when Address is empty, are VIPs, one per subnet: the one
	// whose subnet holds an address of Interface is used (PickAddress).
	Addresses []string `yaml:"addresses"`
	Interface string   `yaml:"interface"` // e.g. eth0
	// Label is the IPv4 address label: "eth0:vip", or "vip", which means
	// "<Interface>:vip". Empty means no label; ignored for IPv6, which
	// has no labels.
	Label string `yaml:"label"`
	// Resource is the Pacemaker resource that carries the VIP (backend
	// pcs), normally an ocf:heartbeat:IPaddr2 primitive.
	Resource string `yaml:"resource"`
	// Node is this host's Pacemaker node name (backend pcs): empty means
	// what `crm_node -n` prints.
	Node string `yaml:"node"`
	// Announcements is the number of rounds of gratuitous ARP (a request
	// and a reply) or unsolicited neighbour advertisements: 0 means 5.
	Announcements int `yaml:"announcements"`
	// AnnounceInterval is the time between rounds: 0 means 1s. Linux
	// peers ignore ARP updates that are not gratuitous within about 1s
	// (neigh locktime) of the last one.
	AnnounceInterval time.Duration `yaml:"announce_interval"`
	// TakeoverWait bounds how long Hold waits while another host still
	// answers for the VIP before taking it anyway: 0 means 3s, negative
	// means take it at once without probing.
	TakeoverWait time.Duration `yaml:"takeover_wait"`
	// ProbeTimeout is how long one probe waits for another holder's answer
	// (0: 5ms).
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
}

// New returns the backend that s names. Options apply to the netlink
// backend.
func New(s Settings, log zerolog.Logger, opts ...Option) (Backend, error) {
	switch s.Backend {
	case "", "none":
		return None{}, nil
	case "netlink":
		return NewNetlink(s, log, opts...)
	case "pcs":
		return NewPcs(s, log)
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
