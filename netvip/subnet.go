package netvip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MaxAddresses bounds Settings.Addresses.
const MaxAddresses = 16

// PickAddress chooses, from candidate VIPs (CIDRs, one per subnet the
// cluster spans), the one whose subnet contains an address of interface
// ifname: a cluster over several subnets has one VIP per subnet, and the
// primary takes the one its own subnet can route. It fails when none or
// more than one matches.
func PickAddress(candidates []string, ifname string) (string, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return "", fmt.Errorf("interface %q: %w", ifname, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return "", fmt.Errorf("addresses of %s: %w", ifname, err)
	}
	var own []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				own = append(own, ip.Unmap())
			}
		}
	}
	return pickAddress(candidates, own, ifname)
}

func pickAddress(candidates []string, own []netip.Addr, ifname string) (string, error) {
	if len(candidates) == 0 {
		return "", errors.New("no vip addresses configured")
	}
	var match []string
	for _, c := range candidates {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return "", fmt.Errorf("vip address %q (want a CIDR such as 192.0.2.10/24): %w", c, err)
		}
		for _, a := range own {
			// The VIP itself (held now) does not place this node.
			if a != p.Addr() && p.Masked().Contains(a) {
				match = append(match, c)
				break
			}
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		ss := make([]string, len(own))
		for i, a := range own {
			ss[i] = a.String()
		}
		return "", fmt.Errorf("none of the vip addresses %s is in a subnet of %s (%s): list this node's subnet's VIP in addresses",
			strings.Join(candidates, ", "), ifname, strings.Join(ss, ", "))
	}
	return "", fmt.Errorf("vip addresses %s all match %s: give one per subnet", strings.Join(match, ", "), ifname)
}

// OnInterface reports whether prefix (a VIP with its prefix length) is an
// address of interface ifname now. Reading addresses needs no capability,
// so an unprivileged process can tell whether this node holds a VIP that
// only the VIP helper may add or remove.
func OnInterface(ifname string, prefix netip.Prefix) (bool, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return false, fmt.Errorf("interface %q: %w", ifname, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false, fmt.Errorf("addresses of %s: %w", ifname, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		ones, _ := n.Mask.Size()
		if ok && ip.Unmap() == prefix.Addr() && ones == prefix.Bits() {
			return true, nil
		}
	}
	return false, nil
}
