package scope

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/exitcode"
	"github.com/pghook/pghook/internal/vipctl"
	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/netvip/dnsvip"
	"github.com/pghook/pghook/netvip/execvip"
	"github.com/rs/zerolog"
)

// This file builds the VIP backend stack, in one place, for every caller:
// the callback, the vip commands, the watcher, status and the VIP helper.
// The privilege decisions are the plain functions below.

// Caller is what the process asking for a stack may do.
type Caller struct {
	Admin, Raw bool // CAP_NET_ADMIN, CAP_NET_RAW in effect (root has both)
	// Privileged: the VIP helper itself.
	Privileged bool
	// Watcher: the scope's reconciler, which serves the control socket
	// and announces from a goroutine.
	Watcher bool
}

// Route is how a caller reaches its VIP backend.
type Route int

const (
	// RouteNone: backend none, nothing to do.
	RouteNone Route = iota
	// RouteDirect: this process drives the backend itself.
	RouteDirect
	// RouteWatcher: ask the scope's running watcher over its control
	// socket; without a trusted watcher, run the VIP helper.
	RouteWatcher
	// RouteHelper: run the VIP helper.
	RouteHelper
)

func (r Route) String() string {
	return [...]string{"none", "direct", "watcher, else helper", "helper"}[r]
}

// ChooseRoute decides how caller c reaches backend. Only netlink needs
// capabilities (pcs needs membership of haclient; dns and exec nothing):
// without both, an unprivileged caller asks the watcher, which applies the
// same stack without starting a process, and the watcher itself — whose
// socket that is — runs the helper.
func ChooseRoute(backend string, c Caller) Route {
	switch {
	case backend == "" || backend == "none":
		return RouteNone
	case backend == "netlink" && !(c.Admin && c.Raw) && !c.Privileged:
		if c.Watcher {
			return RouteHelper
		}
		return RouteWatcher
	}
	return RouteDirect
}

// ChooseProbeRoute decides how caller c asks the link who answers for a
// netlink VIP (status): sending the probe needs CAP_NET_RAW, else the
// helper sends it.
func ChooseProbeRoute(c Caller) Route {
	if c.Raw || c.Privileged {
		return RouteDirect
	}
	return RouteHelper
}

// AnnounceCommand is the command line after the executable that a
// detached announcer of scope runs: an unprivileged pghook passes the
// request in its arguments (`vip announce …`); the helper's announcer
// (fixed) reads it from its root-owned config and takes only the scope.
func AnnounceCommand(scope string, privileged bool) (cmd []string, fixed bool) {
	if privileged {
		return []string{"announce", "--scope", scope}, true
	}
	return []string{"vip", "announce"}, false
}

// RefuseWithoutDCS decides what a missing view of the leader lock means
// for a guarded hold: the helper refuses (whatever its caller arranged, it
// never takes the VIP without a DCS check); anyone else takes the VIP as
// Patroni decided, guarded by the address probe, and logs a warning.
func RefuseWithoutDCS(c Caller) bool { return c.Privileged }

// HelperArgs are the arguments after the operation for the VIP helper:
// the scope alone, as the helper reads everything else from its own
// root-owned config.
func HelperArgs(scope string) []string { return []string{"--scope", scope} }

// StackOptions shape a stack.
type StackOptions struct {
	// Guard: check the DCS leader key before taking the VIP.
	Guard bool
	// Announcer sends the rounds after the first. Nil: a detached process,
	// which outlives a callback that Patroni kills. The watcher passes
	// netvip.Background (and is then a Caller.Watcher).
	Announcer netvip.Announcer
	// Options are added to the backend's (netlink).
	Options []netvip.Option
}

// caller is this process.
func (r *Resolver) caller(watcher bool) Caller {
	admin, raw := netvip.HaveCaps()
	return Caller{Admin: admin, Raw: raw, Privileged: r.Privileged, Watcher: watcher}
}

// None is the backend that does nothing (no VIP, or one left alone).
func None() netvip.Backend { return netvip.None{} }

// VIP builds s's VIP backend stack for this process:
//
//   - backend none: nothing to do;
//   - netlink without CAP_NET_ADMIN/CAP_NET_RAW (and not root): the
//     scope's running watcher over its control socket, else the VIP
//     helper, which apply the same stack; the watcher itself goes straight
//     to the helper;
//   - otherwise the backend itself, guarded by the DCS leader key when
//     o.Guard is set.
//
// Errors are exitcode errors whose message names the problem.
func (r *Resolver) VIP(s *Scope, o StackOptions) (netvip.Backend, error) {
	log := r.Log.With().Str("scope", s.Name).Logger()
	backend := s.Settings.VIP.Backend
	c := r.caller(o.Announcer != nil)
	route := ChooseRoute(backend, c)
	log.Debug().Str("vip_backend", backend).Stringer("vip_route", route).Msg("VIP stack")
	if route == RouteNone {
		return netvip.None{}, nil
	}
	if route == RouteHelper || route == RouteWatcher {
		// The helper (or the watcher) holds the address and names it.
		h := netvip.Backend(s.helper(backend))
		if _, err := os.Stat(s.HelperPath); err != nil {
			return nil, exitcode.Failuref("vip: this process lacks CAP_NET_ADMIN/CAP_NET_RAW and the VIP helper %s is not usable: %v (install the package, or set vip_helper)", s.HelperPath, err)
		}
		if c.Watcher {
			return h, nil
		}
		return &vipctl.Backend{Endpoint: s.Endpoint(), Fallback: h, Log: log}, nil
	}
	name, err := r.namer(s, log)
	if err != nil {
		return nil, exitcode.Usagef("vip: key scopes.%s.vip.dns: %v", s.Name, err)
	}
	ann := o.Announcer
	if ann == nil {
		self, err := os.Executable()
		if err != nil {
			return nil, exitcode.Failuref("vip: %v", err)
		}
		// The announcer must hold CAP_NET_RAW too: it is this same file.
		cmd, fixed := AnnounceCommand(s.Name, r.Privileged)
		ann = netvip.Spawner{Self: self, Command: cmd, Fixed: fixed, OnSpawnError: func(err error) {
			log.Warn().Err(err).Str("action", "vip announce").Msg("the follow-up announcements did not start")
		}}
	}
	b, err := r.backend(s, log, append([]netvip.Option{netvip.WithAnnouncer(ann)}, o.Options...)...)
	if err != nil {
		return nil, exitcode.Usagef("vip: %v", err)
	}
	if !o.Guard {
		return name(b), nil
	}
	me, view, err := r.guardView(s, c, log)
	if err != nil {
		return nil, exitcode.Failuref("vip: %v", err)
	}
	return name(hooks.GuardedVIP{Backend: b, Me: me, View: view, Log: log}), nil
}

// namer returns what wraps s's address backend where this process holds
// the address itself (root, or the VIP helper and its watcher): for a
// netlink VIP with dns settings (config.VIP.Named), a dnsvip.NamedVIP whose
// record names the VIP this node takes (its subnet's, from addresses);
// otherwise nothing. The record follows the address in the same process,
// so a take at the leader key's write names the VIP without a process
// start; callers that reach the address through the helper or the watcher
// leave the record to them.
func (r *Resolver) namer(s *Scope, log zerolog.Logger) (func(netvip.Backend) netvip.Backend, error) {
	v := s.Settings.VIP
	if !v.Named() {
		return func(b netvip.Backend) netvip.Backend { return b }, nil
	}
	a, err := s.VIPAddress()
	if err != nil {
		return nil, err
	}
	p, err := netip.ParsePrefix(a)
	if err != nil {
		return nil, fmt.Errorf("vip address %q (want a CIDR such as 192.0.2.10/24): %w", a, err)
	}
	rec, err := dnsBackend(s, log, p.Addr())
	if err != nil {
		return nil, err
	}
	here := func() (bool, error) { return netvip.OnInterface(v.Interface, p) }
	return func(b netvip.Backend) netvip.Backend { return dnsvip.NameVIP(b, rec, here, log) }, nil
}

// guardView returns this member's name and the view of the leader lock
// for the guard. When it cannot be had, RefuseWithoutDCS decides.
func (r *Resolver) guardView(s *Scope, c Caller, log zerolog.Logger) (string, hooks.LeaderView, error) {
	view, err := s.LeaderView(time.Second)
	if err == nil {
		return s.Patroni.Name, view, nil
	}
	if RefuseWithoutDCS(c) {
		return "", nil, fmt.Errorf("%w: the VIP helper takes the VIP only with a DCS check (set scopes.%s.patroni_config in %s)", err, s.Name, s.configPath)
	}
	log.Warn().Err(err).Msg("the VIP is taken without a DCS check")
	if s.Patroni != nil {
		return s.Patroni.Name, nil, nil
	}
	return "", nil, nil
}

// helper is the VIP helper acting for s.
func (s *Scope) helper(backend string) netvip.Helper {
	return netvip.Helper{Path: s.HelperPath, Args: HelperArgs(s.Name), Backend: backend}
}

// Endpoint is s's watcher control socket.
func (s *Scope) Endpoint() vipctl.Endpoint {
	return vipctl.Endpoint{Dir: s.controlDir, Scope: s.Name}
}

// Backend is s's VIP backend itself, unguarded, announcing as opts say:
// what status reads (pcs, dns, exec) and the bottom of every stack.
func (r *Resolver) Backend(s *Scope, opts ...netvip.Option) (netvip.Backend, error) {
	return r.backend(s, r.Log, opts...)
}

// backend builds the backend that s names. dns and exec need no
// capabilities: they run in this process (the callback, `vip watch`),
// never in the VIP helper, which refuses them.
func (r *Resolver) backend(s *Scope, log zerolog.Logger, opts ...netvip.Option) (netvip.Backend, error) {
	v := s.Settings.VIP
	switch v.Backend {
	case "dns", "exec":
		if r.Privileged {
			return nil, fmt.Errorf("backend %s runs without privileges: the VIP helper serves netlink only", v.Backend)
		}
	default:
		return netvip.New(v.Settings, log, opts...)
	}
	if v.Backend == "dns" {
		return dnsBackend(s, log, netip.Addr{})
	}
	e := v.Exec
	addr, err := s.VIPAddress()
	if err != nil {
		return nil, err
	}
	return execvip.New(execvip.Settings{Hold: e.Hold, Release: e.Release, Check: e.Check, Timeout: e.Timeout,
		Scope: s.Name, Node: s.MemberName(), Address: addr}, log)
}

// dnsBackend is s's dns record; target, when valid, is the VIP it names
// (config.VIP.Named) instead of this node's own address.
func dnsBackend(s *Scope, log zerolog.Logger, target netip.Addr) (*dnsvip.Backend, error) {
	v := s.Settings.VIP
	d := v.DNS
	return dnsvip.New(dnsvip.Settings{Name: d.Name, Zone: d.Zone, Server: d.Server, TTL: d.TTL, KeyFile: d.TSIGKeyFile,
		Transport: d.Transport, Timeout: d.Timeout, Interface: v.Interface, ReplicaName: d.ReplicaName, Target: target}, log)
}

// ReplicaRecord is s's read-only record (vip.dns.replica_name), nil when
// the scope has none.
func (r *Resolver) ReplicaRecord(s *Scope, log zerolog.Logger) (*dnsvip.ReplicaRecord, error) {
	v := s.Settings.VIP
	if (v.Backend != "dns" && !v.Named()) || v.DNS.ReplicaName == "" {
		return nil, nil
	}
	b, err := dnsBackend(s, log, netip.Addr{})
	if err != nil {
		return nil, err
	}
	return b.Replicas(), nil
}

// VIPAddress is s's VIP: address, or the one of addresses whose subnet
// holds an address of the interface.
func (s *Scope) VIPAddress() (string, error) {
	v := s.Settings.VIP
	if v.Address != "" || len(v.Addresses) == 0 {
		return v.Address, nil
	}
	return netvip.PickAddress(v.Addresses, v.Interface)
}

// ArpAnnounceWarning warns when a netlink VIP's interface answers ARP in a
// way that lets peers learn the wrong address; "" otherwise.
func (s *Scope) ArpAnnounceWarning() string {
	if s.Settings.VIP.Backend != "netlink" {
		return ""
	}
	return netvip.ArpAnnounceWarning(s.Settings.VIP.Interface)
}

// Prober asks the link who answers for s's netlink VIP within a window:
// directly when this process may send the probe, else through the VIP
// helper (ChooseProbeRoute).
func (r *Resolver) Prober(s *Scope, prefix netip.Prefix) func(ctx context.Context, window time.Duration) ([]net.HardwareAddr, error) {
	if ChooseProbeRoute(r.caller(false)) == RouteDirect {
		return func(ctx context.Context, window time.Duration) ([]net.HardwareAddr, error) {
			return netvip.WhoHas(ctx, s.Settings.VIP.Interface, prefix.Addr(), window)
		}
	}
	h := s.helper("netlink")
	return func(ctx context.Context, window time.Duration) ([]net.HardwareAddr, error) {
		if _, err := os.Stat(h.Path); err != nil {
			return nil, fmt.Errorf("this process lacks CAP_NET_RAW and the VIP helper %s is not usable: %w (run as root, install the package, or set vip_helper)", h.Path, err)
		}
		return h.WhoHas(ctx, window)
	}
}
