// Package dnsvip is the dns VIP backend: where no address can float (clouds
// without layer-2 failover addresses, clusters spread over subnets), the
// primary makes one DNS name resolve to its own address instead, with RFC
// 2136 dynamic updates signed with TSIG, sent to the zone's primary
// authoritative server.
//
//   - Hold replaces the name's A (or AAAA) RRset with this node's address
//     on the configured interface, in one update message. It overwrites
//     whatever is there: callers run it only under the DCS guard
//     (hooks.GuardedVIP), like an address takeover.
//   - Release deletes only this node's value, with the RFC 2136 prerequisite
//     that the RRset is exactly that value. A former primary that releases
//     late thus never removes the new primary's record: the server refuses
//     with NXRRSET and the refusal is logged.
//   - Status asks the server (not a cache) what it serves for the name.
//
// It needs no capabilities: the callback and the watcher run it directly,
// never through the VIP helper. The TSIG secret is read from a root-owned
// key file (ReadKeyFile) and never logged.
package dnsvip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// Defaults.
const (
	DefaultTTL     = time.Second
	DefaultTimeout = 2 * time.Second
	// fudge is the TSIG time window (RFC 8945 recommends 300 s).
	fudge = 300
)

// Settings configure the backend; zero values mean the defaults.
type Settings struct {
	Name      string        // the record, e.g. primary.pglab.example.
	Zone      string        // the zone that holds it
	Server    string        // host or host:port (port 53)
	TTL       time.Duration // whole seconds; 0: DefaultTTL
	KeyFile   string        // BIND key file (ReadKeyFile)
	Transport string        // "tcp" (default) or "udp"
	Timeout   time.Duration // per exchange; 0: DefaultTimeout
	// Interface whose address the record names (the first global unicast
	// IPv4 address, else IPv6).
	Interface string
	// Address, when valid, is named instead of Interface's (tests).
	Address netip.Addr
	// ReplicaName, when set, is the record every read-serving replica adds
	// its own address to (Replicas).
	ReplicaName string
	// Target, when valid, is the address the primary's record names
	// instead of this node's own: the VIP this node holds (NamedVIP). The
	// replica record still names the node's own address.
	Target netip.Addr
}

// Backend is the dns backend. It is safe for concurrent use.
type Backend struct {
	name, zone, server, net string
	replicaName             string
	ttl                     uint32
	timeout                 time.Duration
	keyFile, ifname         string
	fixed, target           netip.Addr
	log                     zerolog.Logger

	keyMu sync.Mutex
	key   *Key
}

var _ netvip.Backend = (*Backend)(nil)

// New checks s and returns the backend. It reads neither the key nor the
// interface yet: Status needs neither, and Hold and Release read them
// each time (the key file once).
func New(s Settings, log zerolog.Logger) (*Backend, error) {
	if s.Name == "" || s.Zone == "" || s.Server == "" || (s.Interface == "" && !s.Address.IsValid()) {
		return nil, errors.New("dnsvip: needs name, zone, server, a TSIG key file and an interface")
	}
	name, zone := canonicalName(s.Name), canonicalName(s.Zone)
	if !validName(name) || !validName(zone) || !strings.HasSuffix(name, "."+zone) {
		return nil, fmt.Errorf("dnsvip: name %q is not a name below zone %q", s.Name, s.Zone)
	}
	if s.ReplicaName != "" {
		if err := checkReplicaName(canonicalName(s.ReplicaName), name, zone); err != nil {
			return nil, err
		}
	}
	server := s.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	b := &Backend{
		name: name, zone: zone, server: server, net: "tcp",
		ttl: uint32(DefaultTTL / time.Second), timeout: DefaultTimeout,
		keyFile: s.KeyFile, ifname: s.Interface, fixed: s.Address, target: s.Target,
	}
	if s.ReplicaName != "" {
		b.replicaName = canonicalName(s.ReplicaName)
	}
	switch s.Transport {
	case "", "tcp":
	case "udp":
		b.net = "udp"
	default:
		return nil, fmt.Errorf("dnsvip: transport %q: want tcp or udp", s.Transport)
	}
	if s.TTL > 0 {
		b.ttl = uint32(s.TTL / time.Second)
	}
	if s.Timeout > 0 {
		b.timeout = s.Timeout
	}
	if s.KeyFile == "" {
		return nil, errors.New("dnsvip: needs a TSIG key file (tsig_key_file): unsigned updates are not sent")
	}
	b.log = log.With().Str("vip_backend", "dns").Str("dns_name", name).Str("dns_server", server).Logger()
	return b, nil
}

// Name implements netvip.Backend.
func (b *Backend) Name() string { return "dns" }

// Hold implements netvip.Backend: the RRset becomes this node's address.
func (b *Backend) Hold(ctx context.Context) error {
	start := time.Now()
	me, err := b.named()
	if err != nil {
		return fmt.Errorf("dns record %s: %w", b.name, err)
	}
	if err := b.update(ctx, b.holdMsg(me)); err != nil {
		return fmt.Errorf("pointing dns record %s at %s (server %s): %w", b.name, me, b.server, err)
	}
	b.log.Info().Str("action", "vip hold").Str("address", me.String()).Dur("took_ms", time.Since(start)).Msg("dns record points here")
	return nil
}

// Release implements netvip.Backend: only this node's value goes, and only
// when it is all the RRset holds; otherwise the server's NXRRSET leaves the
// record alone. A set that holds this node's value among others (added by
// hand) loses just that value.
func (b *Backend) Release(ctx context.Context) error {
	start := time.Now()
	me, err := b.named()
	if err != nil {
		return fmt.Errorf("dns record %s: %w", b.name, err)
	}
	err = b.update(ctx, b.releaseMsg(me, true))
	var rc *RcodeError
	switch {
	case err == nil:
		b.log.Info().Str("action", "vip release").Str("address", me.String()).Dur("took_ms", time.Since(start)).Msg("dns record removed (it named this node)")
		return nil
	case errors.As(err, &rc) && rc.Rcode == RcodeNXRRSet:
	default:
		return fmt.Errorf("removing this node's value %s from dns record %s (server %s): %w", me, b.name, b.server, err)
	}
	// The prerequisite failed: the record does not name this node alone.
	vals, _, qerr := b.lookup(ctx, rrtype(me))
	if qerr == nil && len(vals) > 1 && slices.Contains(vals, me) {
		if err := b.update(ctx, b.releaseMsg(me, false)); err != nil {
			return fmt.Errorf("removing this node's value %s from dns record %s (with %s): %w", me, b.name, joinAddrs(vals), err)
		}
		b.log.Info().Str("action", "vip release").Str("address", me.String()).Str("left", joinAddrs(vals)).Msg("this node's value removed from a record that names several")
		return nil
	}
	ev := b.log.Info().Str("action", "vip release").Str("address", me.String()).Dur("took_ms", time.Since(start))
	if qerr != nil {
		ev = ev.AnErr("lookup_error", qerr)
	} else {
		ev = ev.Str("record", joinAddrs(vals))
	}
	ev.Msg("release refused by the server's prerequisite (NXRRSET): the record does not name this node; left alone")
	return nil
}

// Status implements netvip.Backend, from what the server answers now.
// Held: the RRset is exactly this node's address. A set that names this
// node among others is an error, so that a reconciler acts either way.
func (b *Backend) Status(ctx context.Context) (netvip.Status, error) {
	me, err := b.named()
	if err != nil {
		return netvip.Status{}, fmt.Errorf("dns record %s: %w", b.name, err)
	}
	vals, ttl, err := b.lookup(ctx, rrtype(me))
	if err != nil {
		return netvip.Status{}, fmt.Errorf("dns record %s on %s: %w", b.name, b.server, err)
	}
	t := typeName(rrtype(me))
	switch {
	case len(vals) == 0:
		return netvip.Status{Detail: fmt.Sprintf("%s %s: no record on %s (this node is %s)", b.name, t, b.server, me)}, nil
	case len(vals) == 1 && vals[0] == me:
		return netvip.Status{Held: true, Detail: fmt.Sprintf("%s %s %s (ttl %d) on %s: this node", b.name, t, me, ttl, b.server)}, nil
	case slices.Contains(vals, me):
		return netvip.Status{}, fmt.Errorf("dns record %s %s names several addresses (%s), this node's %s among them", b.name, t, joinAddrs(vals), me)
	}
	return netvip.Status{Detail: fmt.Sprintf("%s %s %s (ttl %d) on %s: not this node (%s)", b.name, t, joinAddrs(vals), ttl, b.server, me)}, nil
}

// Resolve returns what the server serves for the name (A, then AAAA when
// there is no A record), for status displays.
func (b *Backend) Resolve(ctx context.Context) ([]netip.Addr, error) {
	vals, _, err := b.lookup(ctx, dns.TypeA)
	if err == nil && len(vals) == 0 {
		vals, _, err = b.lookup(ctx, dns.TypeAAAA)
	}
	return vals, err
}

// named is the address the primary's record names when this node holds
// it: the target VIP, else this node's own address.
func (b *Backend) named() (netip.Addr, error) {
	if b.target.IsValid() {
		return b.target, nil
	}
	return b.self()
}

// self is this node's own address (the replica record's value, and the
// primary's without a target).
func (b *Backend) self() (netip.Addr, error) {
	if b.fixed.IsValid() {
		return b.fixed, nil
	}
	return InterfaceAddr(b.ifname)
}

// RcodeError is a reply whose rcode is not NOERROR.
type RcodeError struct {
	Rcode int
	// TSIGError is the TSIG error of a NOTAUTH reply (BADSIG, BADKEY,
	// BADTIME), 0 for none.
	TSIGError uint16
}

func (e *RcodeError) Error() string {
	if e.TSIGError != 0 {
		return fmt.Sprintf("server answered %s (TSIG %s): %s", rcodeName(e.Rcode), rcodeName(int(e.TSIGError)), tsigHint(e.TSIGError))
	}
	return "server answered " + rcodeName(e.Rcode) + ": " + rcodeHint(e.Rcode)
}

func tsigHint(code uint16) string {
	switch code {
	case RcodeBadSig:
		return "the key's secret differs from the server's: use the key file the server includes"
	case RcodeBadKey:
		return "the server has no key of this name and algorithm: check tsig_key_file against the server's key statement"
	case RcodeBadTime:
		return "the clocks of this host and the server differ by more than 300 s: fix NTP"
	}
	return "the signature was refused"
}

func rcodeHint(rc int) string {
	switch rc {
	case RcodeNXRRSet:
		return "a prerequisite failed (the record does not hold this node's value)"
	case RcodeRefused:
		return "the update policy does not let this key change this name and type (grant KEY name NAME A AAAA;)"
	case RcodeNotAuth:
		return "the server is not the primary for this zone (check dns.zone and dns.server)"
	case RcodeServFail:
		return "the server could not apply the update (see its log: journal, permissions)"
	case RcodeFormErr:
		return "the server could not parse the update"
	}
	return "update not applied"
}

// update signs and sends one UPDATE and checks the signed reply's rcode.
func (b *Backend) update(ctx context.Context, m *dns.Msg) error {
	k, err := b.loadKey()
	if err != nil {
		return err
	}
	r, err := b.exchange(ctx, m, &k)
	if err != nil {
		return err
	}
	if r.Rcode != RcodeSuccess {
		return &RcodeError{Rcode: r.Rcode}
	}
	return nil
}

// lookup asks the server for the name's RRset of type t, without
// recursion.
func (b *Backend) lookup(ctx context.Context, t uint16) ([]netip.Addr, uint32, error) {
	return b.lookupName(ctx, b.name, t)
}

// lookupName asks the server for name's RRset of type t.
func (b *Backend) lookupName(ctx context.Context, name string, t uint16) ([]netip.Addr, uint32, error) {
	r, err := b.exchange(ctx, queryMsg(name, t), nil)
	if err != nil {
		return nil, 0, err
	}
	if r.Rcode != RcodeSuccess && r.Rcode != RcodeNXDomain {
		return nil, 0, &RcodeError{Rcode: r.Rcode}
	}
	var vals []netip.Addr
	var ttl uint32
	for _, a := range r.Answer {
		h := a.Header()
		if !strings.EqualFold(h.Name, name) || h.Rrtype != t {
			continue
		}
		var ip net.IP
		switch rr := a.(type) {
		case *dns.A:
			ip = rr.A.To4()
		case *dns.AAAA:
			ip = rr.AAAA.To16()
		}
		if v, ok := netip.AddrFromSlice(ip); ok {
			vals = append(vals, v)
			ttl = h.Ttl
		}
	}
	slices.SortFunc(vals, netip.Addr.Compare)
	return vals, ttl, nil
}

func (b *Backend) loadKey() (Key, error) {
	b.keyMu.Lock()
	defer b.keyMu.Unlock()
	if b.key != nil {
		return *b.key, nil
	}
	k, err := ReadKeyFile(b.keyFile)
	if err != nil {
		return Key{}, err
	}
	b.key = &k
	return k, nil
}

func joinAddrs(a []netip.Addr) string {
	if len(a) == 0 {
		return "none"
	}
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = v.String()
	}
	return strings.Join(s, ",")
}
