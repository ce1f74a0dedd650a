package dnsvip

import (
	"fmt"
	"net"
	"net/netip"
)

// InterfaceAddr is the address a node's record names: the first global
// unicast IPv4 address on the interface, else the first IPv6 one.
func InterfaceAddr(ifname string) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %q (setting interface): %w", ifname, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifname, err)
	}
	var v6 netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case !ip.IsGlobalUnicast():
		case ip.Is4():
			return ip, nil
		case !v6.IsValid():
			v6 = ip
		}
	}
	if v6.IsValid() {
		return v6, nil
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no global unicast address for the dns record", ifname)
}
