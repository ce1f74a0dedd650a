package netvip

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// WhoHas asks on ifname who answers for addr and returns the MAC of every
// other host that answered within timeout, in the order they first did
// (nil: nobody). Unlike a takeover's probe, which stops at the first answer
// because it only needs to know whether to wait, it listens for the whole
// window, so that two hosts answering for one VIP show as two. The
// questions are the same (an RFC 5227 ARP probe, sender IP 0.0.0.0, or an
// RFC 4862 neighbour solicitation from ::), sent at the start and a third
// and two thirds of the way in; nobody learns a neighbour entry from them.
// This host's own kernel never answers its own question, so a local
// holder does not show: ask the backend's Status for that. It needs
// CAP_NET_RAW (see HaveCaps and Helper.WhoHas).
func WhoHas(ctx context.Context, ifname string, addr netip.Addr, timeout time.Duration) ([]net.HardwareAddr, error) {
	if !addr.IsValid() || addr.Is4In6() {
		return nil, fmt.Errorf("asking who has %v on %s: not an IPv4 or IPv6 address", addr, ifname)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("asking who has %v on %s: timeout %v must be positive", addr, ifname, timeout)
	}
	macs, err := whoHas(ctx, ifname, addr.WithZone(""), timeout)
	if err != nil {
		return nil, fmt.Errorf("asking who has %v on %s: %w", addr, ifname, err)
	}
	return macs, nil
}

// addAnswer appends mac to seen unless it is there already.
func addAnswer(seen []net.HardwareAddr, mac net.HardwareAddr) []net.HardwareAddr {
	for _, m := range seen {
		if m.String() == mac.String() {
			return seen
		}
	}
	return append(seen, mac)
}

// WhoHasAnswer is what the VIP helper prints for `who-has --json`.
type WhoHasAnswer struct {
	Address   string   `json:"address"`
	Interface string   `json:"interface"`
	Answers   []string `json:"answers"` // MACs, as net.HardwareAddr.String
}

// WhoHas runs WhoHas in the privileged helper (`<helper> who-has --json
// --timeout D --scope S --config F`), which takes the address and the
// interface from the scope's root-owned pghook.yaml.
func (h Helper) WhoHas(ctx context.Context, timeout time.Duration) ([]net.HardwareAddr, error) {
	out, err := h.run(ctx, "who-has", "--json", "--timeout", timeout.String())
	if err != nil {
		return nil, err
	}
	var a WhoHasAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		return nil, fmt.Errorf("vip helper %s who-has: %w: %q", h.Path, err, out)
	}
	macs := make([]net.HardwareAddr, 0, len(a.Answers))
	for _, s := range a.Answers {
		m, err := net.ParseMAC(s)
		if err != nil {
			return nil, fmt.Errorf("vip helper %s who-has: answer %q: %w", h.Path, s, err)
		}
		macs = append(macs, m)
	}
	return macs, nil
}

// Locate returns the Pacemaker nodes the VIP resource runs on
// (`crm_resource --locate`), and this node's name.
func (p *Pcs) Locate(ctx context.Context) (on []string, self string, err error) {
	if self, err = p.localNode(ctx); err != nil {
		return nil, "", fmt.Errorf("vip resource %s: %w", p.res, err)
	}
	if on, err = p.locate(ctx); err != nil {
		return nil, "", fmt.Errorf("vip resource %s: %w", p.res, err)
	}
	return on, self, nil
}

// Neighbour is a kernel neighbour-table entry with a link-layer address.
type Neighbour struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// Neighbours lists the kernel's neighbour entries on ifname (IPv4 and
// IPv6) that carry a link-layer address, whatever their state. Reading
// them needs no privilege.
func Neighbours(ifname string) ([]Neighbour, error) {
	ns, err := neighbours(ifname)
	if err != nil {
		return nil, fmt.Errorf("reading the neighbour table of %s: %w", ifname, err)
	}
	return ns, nil
}

// ParseWhoHasTimeout reads the helper's --timeout: a Go duration or a
// number of milliseconds, 1ms..10s.
func ParseWhoHasTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		ms, aerr := strconv.Atoi(s)
		if aerr != nil {
			return 0, fmt.Errorf("--timeout %q: want a duration such as 200ms", s)
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d < time.Millisecond || d > 10*time.Second {
		return 0, fmt.Errorf("--timeout %v: want 1ms..10s", d)
	}
	return d, nil
}
