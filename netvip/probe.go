package netvip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Probe asks on ifname who holds addr and reports whether a host other
// than this one answered within timeout, and its MAC. For IPv4 it sends an
// ARP probe (RFC 5227: sender IP 0.0.0.0, so nobody learns from it); for
// IPv6 a neighbour solicitation from the unspecified address to addr's
// solicited-node group (RFC 4862 DAD), which a holder answers with a
// neighbour advertisement to all nodes. Any ARP packet with addr as sender
// IP, or advertisement for addr, from another MAC counts as an answer. It
// needs CAP_NET_RAW.
func Probe(ctx context.Context, ifname string, addr netip.Addr, timeout time.Duration) (owner net.HardwareAddr, answered bool, err error) {
	return probe(ctx, osSystem{}, ifname, addr, timeout)
}

func probe(ctx context.Context, sys system, ifname string, addr netip.Addr, timeout time.Duration) (net.HardwareAddr, bool, error) {
	if !addr.IsValid() || addr.Is4In6() {
		return nil, false, fmt.Errorf("probing for %v on %s: not an IPv4 or IPv6 address", addr, ifname)
	}
	li, err := sys.link(ifname)
	if err != nil {
		return nil, false, fmt.Errorf("probing for %v on %s: %w", addr, ifname, err)
	}
	owner, answered, err := sys.probe(ctx, li, addr.WithZone(""), timeout)
	if err != nil {
		return nil, false, fmt.Errorf("probing for %v on %s: %w", addr, ifname, err)
	}
	return owner, answered, nil
}
