package netvip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// osSystem is the real system: netlink in the network namespace of the
// calling thread, and AF_PACKET sockets.
type osSystem struct{}

func (osSystem) link(name string) (linkInfo, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return linkInfo{}, fmt.Errorf("interface %s: %w", name, errNoLink)
		}
		return linkInfo{}, fmt.Errorf("looking up interface %s: %w", name, err)
	}
	a := l.Attrs()
	return linkInfo{
		Name:  a.Name,
		Index: a.Index,
		MAC:   a.HardwareAddr,
		Up:    a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_RUNNING != 0,
	}, nil
}

func nlLink(li linkInfo) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: li.Index, Name: li.Name}}
}

func (osSystem) addrs(li linkInfo, af netip.Addr) ([]addrInfo, error) {
	family := netlink.FAMILY_V4
	if af.Is6() {
		family = netlink.FAMILY_V6
	}
	var as []netlink.Addr
	var err error
	for range 5 {
		as, err = netlink.AddrList(nlLink(li), family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", li.Name, err)
	}
	out := make([]addrInfo, 0, len(as))
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, addrInfo{Prefix: netip.PrefixFrom(ip.Unmap(), ones), Label: a.Label, Flags: a.Flags})
	}
	return out, nil
}

func nlAddr(a addrSpec) *netlink.Addr {
	ip := a.Prefix.Addr()
	bits := 128
	if ip.Is4() {
		bits = 32
	}
	return &netlink.Addr{
		IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), bits)},
		Label: a.Label,
		Flags: a.Flags,
	}
}

func (osSystem) addrReplace(li linkInfo, a addrSpec) error {
	return netlink.AddrReplace(nlLink(li), nlAddr(a))
}

func (osSystem) addrDel(li linkInfo, a addrSpec) error {
	return netlink.AddrDel(nlLink(li), nlAddr(a))
}

func (osSystem) localRoute(addr netip.Addr, add bool) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("looking up lo: %w", err)
	}
	bits := addr.BitLen()
	r := &netlink.Route{
		LinkIndex: lo.Attrs().Index,
		Dst:       &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(bits, bits)},
		Table:     unix.RT_TABLE_LOCAL,
		Type:      unix.RTN_LOCAL,
		Scope:     netlink.SCOPE_HOST,
	}
	if add {
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("adding route local %s dev lo: %w", addr, err)
		}
		return nil
	}
	if err := netlink.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("deleting route local %s dev lo: %w", addr, err)
	}
	return nil
}

func (osSystem) arpIgnore(ifname string) int {
	return arpIgnoreLevel("/proc/sys/net/ipv4/conf", ifname)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSocket opens an AF_PACKET socket. With proto 0 it receives
// nothing; bind gives it a protocol and an interface.
func packetSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("opening packet socket (needs CAP_NET_RAW): %w", err)
	}
	return fd, nil
}

// closePacketSocket closes fd without waiting: the kernel's packet_release
// waits for an RCU grace period (synchronize_net), 10-15 ms measured here,
// which would otherwise sit between the probe and adding the VIP. A process
// that exits first has the kernel close it, after its work is done.
func closePacketSocket(fd int) {
	go unix.Close(fd)
}

func sendFrame(fd int, li linkInfo, frame []byte) error {
	sa := &unix.SockaddrLinklayer{
		Protocol: htons(uint16(frame[12])<<8 | uint16(frame[13])),
		Ifindex:  li.Index,
		Halen:    6,
	}
	copy(sa.Addr[:], frame[0:6])
	for {
		err := unix.Sendto(fd, frame, 0, sa)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

func checkEthernet(li linkInfo) error {
	if len(li.MAC) != 6 {
		return fmt.Errorf("interface %s has no Ethernet address", li.Name)
	}
	return nil
}

func (osSystem) announce(li linkInfo, addr netip.Addr) error {
	if err := checkEthernet(li); err != nil {
		return err
	}
	frames := [][]byte{unsolicitedNAFrame(li.MAC, addr)}
	if addr.Is4() {
		frames = garpFrames(li.MAC, addr)
	}
	fd, err := packetSocket()
	if err != nil {
		return err
	}
	defer closePacketSocket(fd)
	for _, f := range frames {
		if err := sendFrame(fd, li, f); err != nil {
			return fmt.Errorf("sending on %s: %w", li.Name, err)
		}
	}
	return nil
}

func (osSystem) probe(ctx context.Context, li linkInfo, addr netip.Addr, timeout time.Duration) (net.HardwareAddr, bool, error) {
	if err := checkEthernet(li); err != nil {
		return nil, false, err
	}
	proto, frame := uint16(unix.ETH_P_IPV6), nsProbeFrame(li.MAC, addr)
	if addr.Is4() {
		proto, frame = unix.ETH_P_ARP, arpProbeFrame(li.MAC, addr)
	}
	fd, err := packetSocket()
	if err != nil {
		return nil, false, err
	}
	defer closePacketSocket(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: li.Index}); err != nil {
		return nil, false, fmt.Errorf("binding packet socket to %s: %w", li.Name, err)
	}
	deadline := time.Now().Add(timeout)
	if err := sendFrame(fd, li, frame); err != nil {
		return nil, false, fmt.Errorf("sending probe on %s: %w", li.Name, err)
	}
	// Two more probes, a third and two thirds of the way, cover lost frames
	// without lengthening the wait.
	resends := []time.Time{time.Now().Add(timeout / 3), time.Now().Add(2 * timeout / 3)}
	buf := make([]byte, 2048)
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if len(resends) > 0 && !time.Now().Before(resends[0]) {
			resends = resends[1:]
			if err := sendFrame(fd, li, frame); err != nil {
				return nil, false, fmt.Errorf("sending probe on %s: %w", li.Name, err)
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, false, nil
		}
		if len(resends) > 0 {
			left = min(left, time.Until(resends[0]))
		}
		// ppoll: millisecond poll timeouts would round a 5 ms probe up.
		ts := unix.NsecToTimespec(max(int64(min(left, 50*time.Millisecond)), 0))
		_, err := unix.Ppoll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, &ts, nil)
		if err != nil && err != unix.EINTR {
			return nil, false, fmt.Errorf("waiting for answers on %s: %w", li.Name, err)
		}
		for {
			n, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				break
			}
			if err != nil {
				return nil, false, fmt.Errorf("reading answers on %s: %w", li.Name, err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			if owner, ok := answersFor(buf[:n], addr, li.MAC); ok {
				return owner, true, nil
			}
		}
	}
}
