package netvip

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
)

// Frames built and parsed here are whole Ethernet frames, sent and read
// through AF_PACKET sockets (see system_linux.go). Building them by hand
// keeps one code path for IPv4 and IPv6, lets the IPv6 probe use the
// unspecified source address (RFC 4862 DAD), and makes them testable as
// bytes.

const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	arpRequest = 1
	arpReply   = 2

	icmpv6NeighborSolicitation  = 135
	icmpv6NeighborAdvertisement = 136
	protoICMPv6                 = 58

	naFlagOverride  = 0x20
	naFlagSolicited = 0x40

	ndOptTargetLinkAddr = 2

	minFrameLen = 60 // Ethernet minimum without FCS; short frames are zero-padded
)

var (
	broadcastMAC      = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC           = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	allNodesMulticast = netip.MustParseAddr("ff02::1")
)

func ethernetHeader(dst, src net.HardwareAddr, etherType uint16) []byte {
	b := make([]byte, 14, minFrameLen)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], etherType)
	return b
}

func pad(frame []byte) []byte {
	for len(frame) < minFrameLen {
		frame = append(frame, 0)
	}
	return frame
}

// arpFrame builds an Ethernet broadcast ARP packet for IPv4 over Ethernet.
func arpFrame(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := ethernetHeader(broadcastMAC, sha, etherTypeARP)
	b = binary.BigEndian.AppendUint16(b, 1) // hardware type Ethernet
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, sha...)
	b = append(b, spa.AsSlice()...)
	b = append(b, tha...)
	b = append(b, tpa.AsSlice()...)
	return pad(b)
}

// garpFrames returns the gratuitous ARP request and reply for vip: sender
// and target IP both the VIP, sender MAC the interface's, to broadcast.
// The reply's target MAC equals the sender MAC because Linux counts a reply
// as gratuitous only then (arp_is_garp in net/ipv4/arp.c), and only a
// gratuitous packet overrides a neighbour entry within its locktime.
func garpFrames(mac net.HardwareAddr, vip netip.Addr) [][]byte {
	return [][]byte{
		arpFrame(arpRequest, mac, vip, zeroMAC, vip),
		arpFrame(arpReply, mac, vip, mac, vip),
	}
}

// arpProbeFrame returns an RFC 5227 ARP probe for vip: a request with
// sender IP 0.0.0.0, so no peer learns anything from it.
func arpProbeFrame(mac net.HardwareAddr, vip netip.Addr) []byte {
	return arpFrame(arpRequest, mac, netip.IPv4Unspecified(), zeroMAC, vip)
}

// arpSender parses an ARP packet for IPv4 over Ethernet and returns its
// operation, sender MAC and sender IP.
func arpSender(frame []byte) (op uint16, sha net.HardwareAddr, spa netip.Addr, ok bool) {
	if len(frame) < 42 || binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return 0, nil, netip.Addr{}, false
	}
	p := frame[14:]
	if binary.BigEndian.Uint16(p[0:2]) != 1 || binary.BigEndian.Uint16(p[2:4]) != etherTypeIPv4 || p[4] != 6 || p[5] != 4 {
		return 0, nil, netip.Addr{}, false
	}
	spa, _ = netip.AddrFromSlice(p[14:18])
	return binary.BigEndian.Uint16(p[6:8]), net.HardwareAddr(bytes.Clone(p[8:14])), spa, true
}

// solicitedNode returns the solicited-node multicast address of a
// (RFC 4291 §2.7.1) and its Ethernet multicast MAC (RFC 2464 §7).
func solicitedNode(a netip.Addr) (netip.Addr, net.HardwareAddr) {
	b := a.As16()
	g := [16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]}
	return netip.AddrFrom16(g), multicastMAC(netip.AddrFrom16(g))
}

func multicastMAC(group netip.Addr) net.HardwareAddr {
	g := group.As16()
	return net.HardwareAddr{0x33, 0x33, g[12], g[13], g[14], g[15]}
}

// icmpv6Frame wraps an ICMPv6 message (checksum field zero) in IPv6 with
// hop limit 255, as neighbour discovery requires (RFC 4861 §7.1), and in
// Ethernet, filling in the checksum.
func icmpv6Frame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, msg []byte) []byte {
	binary.BigEndian.PutUint16(msg[2:4], icmpv6Checksum(src, dst, msg))
	b := ethernetHeader(dstMAC, srcMAC, etherTypeIPv6)
	b = append(b, 0x60, 0, 0, 0) // version 6, traffic class 0, flow label 0
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	b = append(b, protoICMPv6, 255)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = append(b, msg...)
	return pad(b)
}

func icmpv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	s, d := src.As16(), dst.As16()
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(s[:])
	add(d[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:4], uint32(len(msg)))
	l[7] = protoICMPv6
	add(l[:])
	add(msg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// unsolicitedNAFrame returns an unsolicited neighbour advertisement for vip
// to all nodes (ff02::1), from vip itself, with the Override flag and the
// target link-layer address option (RFC 4861 §7.2.6), so that peers replace
// the link-layer address they have for vip.
func unsolicitedNAFrame(mac net.HardwareAddr, vip netip.Addr) []byte {
	t := vip.As16()
	msg := []byte{icmpv6NeighborAdvertisement, 0, 0, 0, naFlagOverride, 0, 0, 0}
	msg = append(msg, t[:]...)
	msg = append(msg, ndOptTargetLinkAddr, 1)
	msg = append(msg, mac...)
	return icmpv6Frame(multicastMAC(allNodesMulticast), mac, vip, allNodesMulticast, msg)
}

// nsProbeFrame returns a neighbour solicitation for vip from the
// unspecified address to vip's solicited-node group, as in duplicate
// address detection (RFC 4862 §5.4.2). A holder answers with an NA to all
// nodes.
func nsProbeFrame(mac net.HardwareAddr, vip netip.Addr) []byte {
	group, groupMAC := solicitedNode(vip)
	t := vip.As16()
	msg := []byte{icmpv6NeighborSolicitation, 0, 0, 0, 0, 0, 0, 0}
	msg = append(msg, t[:]...)
	return icmpv6Frame(groupMAC, mac, netip.IPv6Unspecified(), group, msg)
}

// neighborAdvert parses an Ethernet frame holding an ICMPv6 neighbour
// advertisement without extension headers. owner is the target link-layer
// address option, or the Ethernet source when the option is missing.
func neighborAdvert(frame []byte) (target netip.Addr, owner net.HardwareAddr, flags byte, ok bool) {
	if len(frame) < 14+40+24 || binary.BigEndian.Uint16(frame[12:14]) != etherTypeIPv6 {
		return netip.Addr{}, nil, 0, false
	}
	ip := frame[14:]
	if ip[0]>>4 != 6 || ip[6] != protoICMPv6 || ip[7] != 255 {
		return netip.Addr{}, nil, 0, false
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if plen < 24 || 40+plen > len(ip) {
		return netip.Addr{}, nil, 0, false
	}
	msg := ip[40 : 40+plen]
	if msg[0] != icmpv6NeighborAdvertisement || msg[1] != 0 {
		return netip.Addr{}, nil, 0, false
	}
	target = netip.AddrFrom16([16]byte(msg[8:24]))
	owner = net.HardwareAddr(bytes.Clone(frame[6:12]))
	for opts := msg[24:]; len(opts) >= 8; {
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			break
		}
		if opts[0] == ndOptTargetLinkAddr && n >= 8 {
			owner = net.HardwareAddr(bytes.Clone(opts[2:8]))
		}
		opts = opts[n:]
	}
	return target, owner, msg[4], true
}

// answersFor reports whether frame shows another host than own claiming
// addr: an ARP packet with addr as sender IP, or a neighbour advertisement
// for addr. owner is that host's MAC.
func answersFor(frame []byte, addr netip.Addr, own net.HardwareAddr) (owner net.HardwareAddr, ok bool) {
	if addr.Is4() {
		_, sha, spa, ok := arpSender(frame)
		if ok && spa == addr && !bytes.Equal(sha, own) {
			return sha, true
		}
		return nil, false
	}
	target, o, _, ok := neighborAdvert(frame)
	if ok && target == addr && !bytes.Equal(o, own) {
		return o, true
	}
	return nil, false
}
