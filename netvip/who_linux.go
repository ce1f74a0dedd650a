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

// whoHas sends the probe for addr on ifname and collects every answer
// until timeout ends.
func whoHas(ctx context.Context, ifname string, addr netip.Addr, timeout time.Duration) ([]net.HardwareAddr, error) {
	li, err := osSystem{}.link(ifname)
	if err != nil {
		return nil, err
	}
	if err := checkEthernet(li); err != nil {
		return nil, err
	}
	proto, frame := uint16(unix.ETH_P_IPV6), nsProbeFrame(li.MAC, addr)
	if addr.Is4() {
		proto, frame = unix.ETH_P_ARP, arpProbeFrame(li.MAC, addr)
	}
	fd, err := packetSocket()
	if err != nil {
		return nil, err
	}
	defer closePacketSocket(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: li.Index}); err != nil {
		return nil, fmt.Errorf("binding packet socket to %s: %w", li.Name, err)
	}
	start := time.Now()
	deadline := start.Add(timeout)
	resends := []time.Time{start.Add(timeout / 3), start.Add(2 * timeout / 3)}
	if err := sendFrame(fd, li, frame); err != nil {
		return nil, fmt.Errorf("sending probe on %s: %w", li.Name, err)
	}
	var seen []net.HardwareAddr
	buf := make([]byte, 2048)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(resends) > 0 && !time.Now().Before(resends[0]) {
			resends = resends[1:]
			if err := sendFrame(fd, li, frame); err != nil {
				return nil, fmt.Errorf("sending probe on %s: %w", li.Name, err)
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return seen, nil
		}
		if len(resends) > 0 {
			left = min(left, time.Until(resends[0]))
		}
		ts := unix.NsecToTimespec(max(int64(min(left, 50*time.Millisecond)), 0))
		if _, err := unix.Ppoll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, &ts, nil); err != nil && err != unix.EINTR {
			return nil, fmt.Errorf("waiting for answers on %s: %w", li.Name, err)
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
				return nil, fmt.Errorf("reading answers on %s: %w", li.Name, err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			if owner, ok := answersFor(buf[:n], addr, li.MAC); ok {
				seen = addAnswer(seen, owner)
			}
		}
	}
}

func neighbours(ifname string) ([]Neighbour, error) {
	li, err := osSystem{}.link(ifname)
	if err != nil {
		return nil, err
	}
	var out []Neighbour
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		var ns []netlink.Neigh
		for range 5 {
			ns, err = netlink.NeighList(li.Index, fam)
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || len(n.HardwareAddr) == 0 || n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) != 0 {
				continue
			}
			out = append(out, Neighbour{Addr: ip.Unmap(), MAC: n.HardwareAddr})
		}
	}
	return out, nil
}
