package netvip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

const (
	defaultAnnouncements    = 5
	defaultAnnounceInterval = time.Second
	defaultTakeoverWait     = 3 * time.Second
	maxIfNameLen            = 15 // IFNAMSIZ - 1; also the limit for IPv4 labels

	// MaxAnnouncements and the interval bounds keep announcements from
	// flooding the link, whoever configured them.
	MaxAnnouncements    = 30
	MinAnnounceInterval = 100 * time.Millisecond
	MaxAnnounceInterval = 10 * time.Second
)

// vip is the validated form of Settings for the netlink backend.
type vip struct {
	prefix       netip.Prefix // address and prefix length, e.g. 192.0.2.10/24
	ifname       string
	label        string // IPv4 only; empty for none
	rounds       int
	interval     time.Duration
	takeoverWait time.Duration // <0: do not probe
	probeTimeout time.Duration
}

func (v vip) addr() netip.Addr { return v.prefix.Addr() }

// followUp is what Hold hands its Announcer after the first round: the
// remaining rounds, one interval apart. Rounds 0: nothing to hand over.
func (v vip) followUp() AnnounceRequest {
	return AnnounceRequest{Interface: v.ifname, Addr: v.addr(), Rounds: v.rounds - 1, Interval: v.interval, Delay: v.interval}
}

// FollowUp is the announcement request that Hold of the netlink backend
// with settings s hands to its Announcer. The VIP helper's detached
// announcer builds it from its root-owned config with this, instead of
// reading it from its arguments.
func FollowUp(s Settings) (AnnounceRequest, error) {
	v, err := parseSettings(s)
	if err != nil {
		return AnnounceRequest{}, err
	}
	return v.followUp(), nil
}

// parseSettings validates s for the netlink backend and fills in defaults.
func parseSettings(s Settings) (vip, error) {
	if s.Address == "" && len(s.Addresses) > 0 {
		if len(s.Addresses) > MaxAddresses {
			return vip{}, fmt.Errorf("netvip: %d vip addresses: at most %d", len(s.Addresses), MaxAddresses)
		}
		a, err := PickAddress(s.Addresses, s.Interface)
		if err != nil {
			return vip{}, fmt.Errorf("netvip: %w", err)
		}
		s.Address = a
	}
	if s.Address == "" {
		return vip{}, errors.New("netvip: no vip address configured (want a CIDR such as 192.0.2.10/24)")
	}
	p, err := netip.ParsePrefix(s.Address)
	if err != nil {
		return vip{}, fmt.Errorf("netvip: parsing vip address %q (want a CIDR such as 192.0.2.10/24): %w", s.Address, err)
	}
	a := p.Addr()
	if a.Is4In6() || a.Zone() != "" || !a.IsGlobalUnicast() {
		return vip{}, fmt.Errorf("netvip: vip address %s is not a unicast IPv4 or IPv6 address usable as a vip", p)
	}
	v := vip{prefix: p, ifname: s.Interface}
	if err := checkIfName(s.Interface); err != nil {
		return vip{}, fmt.Errorf("netvip: vip %s: %w", p, err)
	}
	if s.Label != "" && a.Is4() {
		v.label = s.Label
		if !strings.HasPrefix(s.Label, s.Interface) {
			v.label = s.Interface + ":" + s.Label
		}
		if len(v.label) > maxIfNameLen {
			return vip{}, fmt.Errorf("netvip: vip %s: label %q is longer than %d bytes", p, v.label, maxIfNameLen)
		}
	}
	switch {
	case s.Announcements < 0:
		return vip{}, fmt.Errorf("netvip: vip %s: announcements %d is negative", p, s.Announcements)
	case s.Announcements > MaxAnnouncements:
		return vip{}, fmt.Errorf("netvip: vip %s: announcements %d: at most %d", p, s.Announcements, MaxAnnouncements)
	case s.Announcements == 0:
		v.rounds = defaultAnnouncements
	default:
		v.rounds = s.Announcements
	}
	switch {
	case s.AnnounceInterval < 0:
		return vip{}, fmt.Errorf("netvip: vip %s: announce interval %v is negative", p, s.AnnounceInterval)
	case s.AnnounceInterval == 0:
		v.interval = defaultAnnounceInterval
	case s.AnnounceInterval < MinAnnounceInterval || s.AnnounceInterval > MaxAnnounceInterval:
		return vip{}, fmt.Errorf("netvip: vip %s: announce interval %v: want %v to %v", p, s.AnnounceInterval, MinAnnounceInterval, MaxAnnounceInterval)
	default:
		v.interval = s.AnnounceInterval
	}
	v.probeTimeout = s.ProbeTimeout
	if v.probeTimeout <= 0 {
		v.probeTimeout = defaultProbeTimeout
	}
	v.takeoverWait = s.TakeoverWait
	if v.takeoverWait == 0 {
		v.takeoverWait = defaultTakeoverWait
	}
	return v, nil
}

func checkIfName(name string) error {
	switch {
	case name == "":
		return errors.New("no interface configured")
	case len(name) > maxIfNameLen:
		return fmt.Errorf("interface name %q is longer than %d bytes", name, maxIfNameLen)
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("interface name %q is not valid", name)
	}
	return nil
}
