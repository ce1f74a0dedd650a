package netvip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/pghook/pghook/internal/ctxtime"
	"github.com/rs/zerolog"
)

const (
	// defaultProbeTimeout is how long one probe waits for another holder
	// to answer (Settings.ProbeTimeout). A holder's kernel answers ARP and
	// neighbour solicitations itself, in well under a millisecond on a LAN,
	// even when its userland is busy; this is added to every takeover in
	// which nobody answers, so it is kept short (5 ms is still five times a
	// busy LAN's ARP round trip), with probes re-sent a third and two thirds
	// of the way in case a frame is lost. The DCS leader key, read at the
	// same time, and the old holder's watcher are the other two guards.
	defaultProbeTimeout = 5 * time.Millisecond
	// probeEvery is the longest pause between probes while another host
	// answers. The first pause is firstProbePause and each next one twice
	// the last: in a switchover the old holder lets go on the same leader
	// key write that starts the new holder's take, milliseconds after its
	// first probe, and a fixed 100 ms pause would keep the address on no
	// host for that long.
	probeEvery      = 100 * time.Millisecond
	firstProbePause = 5 * time.Millisecond
)

// Address flags (IFA_F_* in linux/if_addr.h), spelled out so that the
// package builds on other systems too.
const (
	ifaNoDAD         = 0x02
	ifaDADFailed     = 0x08
	ifaTentative     = 0x40
	ifaNoPrefixRoute = 0x200
)

// errNoLink is wrapped by system.link when the interface does not exist.
var errNoLink = errors.New("no such interface")

// linkInfo is what the backend needs to know about an interface.
type linkInfo struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	Up    bool
}

// addrInfo is one address on an interface.
type addrInfo struct {
	Prefix netip.Prefix
	Label  string
	Flags  int // IFA_F_*
}

// addrSpec is an address to add to or delete from an interface.
type addrSpec struct {
	Prefix netip.Prefix
	Dev    string
	Label  string
	Flags  int // IFA_F_*
}

// String renders a in the words of ip-address(8).
func (a addrSpec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s dev %s", a.Prefix, a.Dev)
	if a.Label != "" {
		fmt.Fprintf(&b, " label %s", a.Label)
	}
	if a.Flags&ifaNoPrefixRoute != 0 {
		b.WriteString(" noprefixroute")
	}
	if a.Flags&ifaNoDAD != 0 {
		b.WriteString(" nodad")
	}
	return b.String()
}

// system is the part of the OS the netlink backend touches: netlink for
// links and addresses, packet sockets for announcements and probes. The
// real one is osSystem; tests use a recording fake.
type system interface {
	// link returns the interface named name, or an error wrapping errNoLink.
	link(name string) (linkInfo, error)
	// addrs returns the addresses of the family of af on li.
	addrs(li linkInfo, af netip.Addr) ([]addrInfo, error)
	// addrReplace adds a, or updates it if it is there.
	addrReplace(li linkInfo, a addrSpec) error
	// addrDel deletes a. Its error is the kernel's errno when it says no.
	addrDel(li linkInfo, a addrSpec) error
	// announce sends one round of announcements of addr on li.
	announce(li linkInfo, addr netip.Addr) error
	// probe asks who holds addr on li and waits up to timeout for another
	// host than li's own MAC to answer.
	probe(ctx context.Context, li linkInfo, addr netip.Addr, timeout time.Duration) (owner net.HardwareAddr, answered bool, err error)
	// localRoute adds (add) or deletes the route "local ADDR dev lo table
	// local scope host": the host accepts packets for addr without having
	// it on any link. Deleting a route that is not there is success.
	localRoute(addr netip.Addr, add bool) error
	// arpIgnore is max(net.ipv4.conf.{all,ifname}.arp_ignore); -1 unknown.
	arpIgnore(ifname string) int
}

// Option configures the netlink backend.
type Option func(*Netlink)

// WithAnnouncer makes Hold hand the announcement rounds after the first to
// a. The default is InProcess, which makes Hold return only after the last
// round.
func WithAnnouncer(a Announcer) Option {
	return func(n *Netlink) { n.ann = a }
}

// WithTakeoverWaits makes Hold call f after every takeover whose probe
// found another host answering for the VIP, with how long it then waited
// (metrics).
func WithTakeoverWaits(f func(waited time.Duration)) Option {
	return func(n *Netlink) { n.onWait = f }
}

// Netlink is the backend that adds the VIP to a local interface over
// netlink and announces it with gratuitous ARP or unsolicited neighbour
// advertisements. It needs CAP_NET_ADMIN and CAP_NET_RAW (see HaveCaps).
type Netlink struct {
	v          vip
	sys        system
	ann        Announcer
	log        zerolog.Logger
	probeEvery time.Duration
	onWait     func(time.Duration)
}

// NewNetlink returns the netlink backend for s. It checks s but not yet the
// interface, which may appear later (Hold reports a missing one).
func NewNetlink(s Settings, log zerolog.Logger, opts ...Option) (*Netlink, error) {
	v, err := parseSettings(s)
	if err != nil {
		return nil, err
	}
	log = log.With().Str("vip", v.prefix.String()).Str("interface", v.ifname).Logger()
	if s.Label != "" && v.label == "" {
		log.Debug().Str("label", s.Label).Msg("ignoring the label: IPv6 addresses have none")
	}
	n := newNetlink(v, osSystem{}, log)
	for _, o := range opts {
		o(n)
	}
	return n, nil
}

func newNetlink(v vip, sys system, log zerolog.Logger) *Netlink {
	return &Netlink{v: v, sys: sys, log: log, probeEvery: probeEvery, ann: InProcess{Log: log, sys: sys}}
}

// Name implements Backend.
func (n *Netlink) Name() string { return "netlink" }

func (n *Netlink) spec() addrSpec {
	a := addrSpec{Prefix: n.v.prefix, Dev: n.v.ifname, Label: n.v.label, Flags: ifaNoPrefixRoute}
	if n.v.addr().Is6() {
		a.Flags |= ifaNoDAD
	}
	return a
}

// Hold implements Backend. While another host answers for the VIP it
// re-probes, for up to Settings.TakeoverWait, then takes the VIP anyway and
// logs a warning. It adds the address, checks that it is there, sends the
// first round of announcements itself and hands the others to the
// Announcer. Holding a VIP already held refreshes it and announces again.
func (n *Netlink) Hold(ctx context.Context) error { return n.HoldIf(ctx, nil) }

// HoldIf implements GatedHolder: gate (nil: none) runs in its own
// goroutine while the link is looked up and probed; the address is added
// only after gate returned nil. A gate that refuses ends a wait for another
// holder at once. On any error nothing has been changed.
func (n *Netlink) HoldIf(ctx context.Context, gate Gate) error {
	pctx, cancelProbe := context.WithCancel(ctx)
	defer cancelProbe()
	var gateErr chan error
	if gate != nil {
		gateErr = make(chan error, 1)
		go func() {
			err := gate(pctx)
			if err != nil {
				cancelProbe()
			}
			gateErr <- err
		}()
	}
	waitGate := func() error {
		if gateErr == nil {
			return nil
		}
		select {
		case err := <-gateErr:
			gateErr = nil
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	li, err := n.sys.link(n.v.ifname)
	if err != nil {
		return fmt.Errorf("adding vip %s to %s: %w", n.v.prefix, n.v.ifname, err)
	}
	held, _, err := n.present(li)
	if err != nil {
		return fmt.Errorf("adding vip %s to %s: %w", n.v.prefix, n.v.ifname, err)
	}
	if !held && n.v.takeoverWait >= 0 {
		if err := n.waitForOwner(pctx, li); err != nil {
			if ctx.Err() == nil {
				if gerr := waitGate(); gerr != nil {
					return gerr // the gate refused and cut the wait short
				}
			}
			return fmt.Errorf("adding vip %s to %s: %w", n.v.prefix, n.v.ifname, err)
		}
	}
	if err := waitGate(); err != nil {
		return err
	}
	a := n.spec()
	if err := n.sys.addrReplace(li, a); err != nil {
		return fmt.Errorf("adding vip %s to %s: %w", n.v.prefix, n.v.ifname, err)
	}
	ok, detail, err := n.present(li)
	if err != nil {
		return fmt.Errorf("reading back vip %s on %s: %w", n.v.prefix, n.v.ifname, err)
	}
	if !ok {
		return fmt.Errorf("adding vip %s to %s: the kernel took it but it is not usable: %s", n.v.prefix, n.v.ifname, detail)
	}
	if !held {
		n.log.Info().Msg("vip added")
	}
	if !li.Up {
		n.log.Warn().Msg("interface is down: the vip is added but cannot be announced")
	}
	if err := n.sys.announce(li, n.v.addr()); err != nil {
		return fmt.Errorf("announcing vip %s on %s: %w", n.v.prefix, n.v.ifname, err)
	}
	if n.v.rounds > 1 {
		if err := n.ann.Announce(ctx, n.v.followUp()); err != nil {
			return fmt.Errorf("announcing vip %s on %s: %w", n.v.prefix, n.v.ifname, err)
		}
	}
	return nil
}

// waitForOwner probes until nobody else answers for the VIP or
// takeoverWait has passed. A failed probe never blocks a takeover.
func (n *Netlink) waitForOwner(ctx context.Context, li linkInfo) error {
	start := time.Now()
	conflict := false
	defer func() {
		if conflict && n.onWait != nil {
			n.onWait(time.Since(start))
		}
	}()
	for probes := 1; ; probes++ {
		owner, answered, err := n.sys.probe(ctx, li, n.v.addr(), n.v.probeTimeout)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			n.log.Warn().Err(err).Msg("probing for another holder failed; taking the vip")
			return nil
		case !answered:
			if probes > 1 {
				n.log.Info().Dur("waited", time.Since(start)).Msg("the other holder released the vip")
			}
			return nil
		case time.Since(start) >= n.v.takeoverWait:
			n.log.Warn().Str("owner", owner.String()).Dur("waited", time.Since(start)).
				Msg("another host still answers for the vip; taking it anyway")
			return nil
		case probes == 1:
			conflict = true
			n.log.Info().Str("owner", owner.String()).Dur("max_wait", n.v.takeoverWait).
				Msg("another host answers for the vip; waiting for it to release")
		}
		if err := ctxtime.Sleep(ctx, n.probePause(probes)); err != nil {
			return err
		}
	}
}

// probePause is the pause after the n-th probe (1-based) found another
// holder: firstProbePause, doubling, at most probeEvery.
func (n *Netlink) probePause(probes int) time.Duration {
	d := firstProbePause
	for i := 1; i < probes && d < n.probeEvery; i++ {
		d *= 2
	}
	return min(d, n.probeEvery)
}

// Release implements Backend. It deletes the address; a missing address or
// interface is success. A running announcer stops by itself before its
// next round.
func (n *Netlink) Release(ctx context.Context) error {
	li, err := n.sys.link(n.v.ifname)
	if errors.Is(err, errNoLink) {
		n.log.Warn().Msg("interface is gone, so the vip is too")
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing vip %s from %s: %w", n.v.prefix, n.v.ifname, err)
	}
	held, err := n.onLink(li)
	if err != nil {
		return fmt.Errorf("removing vip %s from %s: %w", n.v.prefix, n.v.ifname, err)
	}
	if !held {
		return nil
	}
	// Without label or flags: the kernel matches a delete by label too,
	// and the address may have been added by hand with another one.
	err = n.sys.addrDel(li, addrSpec{Prefix: n.v.prefix, Dev: n.v.ifname})
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("removing vip %s from %s: %w", n.v.prefix, n.v.ifname, err)
	}
	if held, err = n.onLink(li); err != nil {
		return fmt.Errorf("reading back vip %s on %s: %w", n.v.prefix, n.v.ifname, err)
	}
	if held {
		return fmt.Errorf("removing vip %s from %s: still there after deleting it", n.v.prefix, n.v.ifname)
	}
	n.log.Info().Msg("vip removed")
	return nil
}

// Status implements Backend: Held reports whether the address is on the
// interface and usable (for IPv6, not tentative and DAD did not fail).
func (n *Netlink) Status(ctx context.Context) (Status, error) {
	li, err := n.sys.link(n.v.ifname)
	if errors.Is(err, errNoLink) {
		return Status{Detail: fmt.Sprintf("%s not held: interface %s does not exist", n.v.prefix, n.v.ifname)}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("reading vip %s on %s: %w", n.v.prefix, n.v.ifname, err)
	}
	held, detail, err := n.present(li)
	if err != nil {
		return Status{}, fmt.Errorf("reading vip %s on %s: %w", n.v.prefix, n.v.ifname, err)
	}
	return Status{Held: held, Detail: detail}, nil
}

// onLink reports whether the VIP's address and prefix length are on li,
// usable or not.
func (n *Netlink) onLink(li linkInfo) (bool, error) {
	as, err := n.sys.addrs(li, n.v.addr())
	if err != nil {
		return false, err
	}
	for _, a := range as {
		if a.Prefix == n.v.prefix {
			return true, nil
		}
	}
	return false, nil
}

// present reports whether the VIP is on li and usable, with a sentence for
// Status.
func (n *Netlink) present(li linkInfo) (bool, string, error) {
	return addrPresent(n.sys, li, n.v.prefix)
}

func addrPresent(sys system, li linkInfo, p netip.Prefix) (bool, string, error) {
	as, err := sys.addrs(li, p.Addr())
	if err != nil {
		return false, "", err
	}
	for _, a := range as {
		if a.Prefix != p {
			continue
		}
		switch {
		case a.Flags&ifaDADFailed != 0:
			return false, fmt.Sprintf("%s on %s but duplicate address detection failed", p, li.Name), nil
		case a.Flags&ifaTentative != 0:
			return false, fmt.Sprintf("%s on %s but tentative (duplicate address detection running)", p, li.Name), nil
		}
		d := fmt.Sprintf("%s on %s", p, li.Name)
		if a.Label != "" && a.Label != li.Name {
			d += " label " + a.Label
		}
		if !li.Up {
			d += " (interface down)"
		}
		return true, d, nil
	}
	return false, fmt.Sprintf("%s not on %s", p, li.Name), nil
}
