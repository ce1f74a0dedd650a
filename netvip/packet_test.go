package netvip

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var (
	vip4 = netip.MustParseAddr("192.0.2.10")
	vip6 = netip.MustParseAddr("2001:db8::10")
)

func TestGARPFrames(t *testing.T) {
	frames := garpFrames(fakeMAC, vip4)
	if len(frames) != 2 {
		t.Fatalf("%d frames, want a request and a reply", len(frames))
	}
	for i, f := range frames {
		wantOp, wantTHA := uint16(arpRequest), zeroMAC
		if i == 1 {
			wantOp, wantTHA = arpReply, fakeMAC
		}
		if len(f) != 60 || !bytes.Equal(f[0:6], broadcastMAC) || !bytes.Equal(f[6:12], fakeMAC) {
			t.Errorf("frame %d: bad Ethernet header or length %d: % x", i, len(f), f)
		}
		op, sha, spa, ok := arpSender(f)
		if !ok || op != wantOp || !bytes.Equal(sha, fakeMAC) || spa != vip4 {
			t.Errorf("frame %d: op %d sha %s spa %s ok %t", i, op, sha, spa, ok)
		}
		arp := f[14:]
		if !bytes.Equal(arp[18:24], wantTHA) || !bytes.Equal(arp[24:28], vip4.AsSlice()) {
			t.Errorf("frame %d: target %s %v, want %s %s", i, net.HardwareAddr(arp[18:24]), arp[24:28], wantTHA, vip4)
		}
	}
}

func TestARPProbeFrame(t *testing.T) {
	f := arpProbeFrame(fakeMAC, vip4)
	op, _, spa, ok := arpSender(f)
	if !ok || op != arpRequest || spa != netip.IPv4Unspecified() || !bytes.Equal(f[14+24:14+28], vip4.AsSlice()) {
		t.Errorf("probe: op %d spa %s ok %t: % x", op, spa, ok, f)
	}
}

func TestUnsolicitedNA(t *testing.T) {
	f := unsolicitedNAFrame(fakeMAC, vip6)
	if !bytes.Equal(f[0:6], net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}) || binary.BigEndian.Uint16(f[12:14]) != etherTypeIPv6 {
		t.Fatalf("bad Ethernet header % x", f[:14])
	}
	ip := f[14:]
	src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	if ip[7] != 255 || src != vip6 || dst != allNodesMulticast {
		t.Errorf("hop limit %d src %s dst %s", ip[7], src, dst)
	}
	target, owner, flags, ok := neighborAdvert(f)
	if !ok || target != vip6 || !bytes.Equal(owner, fakeMAC) || flags != naFlagOverride {
		t.Errorf("NA target %s owner %s flags %#x ok %t", target, owner, flags, ok)
	}
	msg := ip[40 : 40+binary.BigEndian.Uint16(ip[4:6])]
	if c := icmpv6Checksum(src, dst, msg); c != 0 {
		t.Errorf("checksum does not verify: % x", msg)
	}
}

func TestICMPv6ChecksumKnownValue(t *testing.T) {
	// An echo request from ::1 to ::1, id 0, seq 0, no data: the sum is
	// 2×1 (addresses) + 8 (length) + 58 + 0x8000 (type 128) = 0x8044.
	msg := []byte{128, 0, 0, 0, 0, 0, 0, 0}
	if got, want := icmpv6Checksum(netip.IPv6Loopback(), netip.IPv6Loopback(), msg), uint16(^uint16(0x8044)); got != want {
		t.Errorf("checksum %#04x, want %#04x", got, want)
	}
}

func TestNSProbeFrame(t *testing.T) {
	group, mac := solicitedNode(vip6)
	if group != netip.MustParseAddr("ff02::1:ff00:10") || !bytes.Equal(mac, net.HardwareAddr{0x33, 0x33, 0xff, 0, 0, 0x10}) {
		t.Fatalf("solicited node %s %s", group, mac)
	}
	f := nsProbeFrame(fakeMAC, vip6)
	ip := f[14:]
	if !bytes.Equal(f[0:6], mac) || ip[7] != 255 || netip.AddrFrom16([16]byte(ip[8:24])) != netip.IPv6Unspecified() ||
		netip.AddrFrom16([16]byte(ip[24:40])) != group || ip[40] != icmpv6NeighborSolicitation ||
		netip.AddrFrom16([16]byte(ip[48:64])) != vip6 {
		t.Errorf("bad NS % x", f)
	}
	if c := icmpv6Checksum(netip.IPv6Unspecified(), group, ip[40:40+24]); c != 0 {
		t.Error("checksum does not verify")
	}
}

func TestAnswersFor(t *testing.T) {
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	reply := arpFrame(arpReply, other, vip4, fakeMAC, netip.IPv4Unspecified())
	tests := []struct {
		name  string
		frame []byte
		addr  netip.Addr
		want  net.HardwareAddr
	}{
		{name: "arp reply from the holder", frame: reply, addr: vip4, want: other},
		{name: "garp from the holder", frame: garpFrames(other, vip4)[0], addr: vip4, want: other},
		{name: "our own garp", frame: garpFrames(fakeMAC, vip4)[1], addr: vip4},
		{name: "another address", frame: reply, addr: netip.MustParseAddr("192.0.2.11")},
		{name: "someone else's probe", frame: arpProbeFrame(other, vip4), addr: vip4},
		{name: "NA from the holder", frame: unsolicitedNAFrame(other, vip6), addr: vip6, want: other},
		{name: "our own NA", frame: unsolicitedNAFrame(fakeMAC, vip6), addr: vip6},
		{name: "someone else's NS", frame: nsProbeFrame(other, vip6), addr: vip6},
		{name: "NA for another address", frame: unsolicitedNAFrame(other, vip6), addr: netip.MustParseAddr("2001:db8::11")},
		{name: "truncated", frame: reply[:30], addr: vip4},
		{name: "arp when asking for ipv6", frame: reply, addr: vip6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := answersFor(tt.frame, tt.addr, fakeMAC)
			if ok != (tt.want != nil) || !bytes.Equal(got, tt.want) {
				t.Errorf("answersFor = %s, %t; want %s", got, ok, tt.want)
			}
		})
	}
}
