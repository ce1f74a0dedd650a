package netvip

// go test -fuzz target (make fuzz runs it for FUZZTIME; plain go test runs
// the seeds in testdata/fuzz/FuzzAnswersFor/). Before taking the VIP, the
// probe reads raw frames from the wire: any host on the segment can send
// anything, and the verdict "another host holds the VIP" must come only
// from a well-formed ARP packet or neighbour advertisement for it.

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

func FuzzAnswersFor(f *testing.F) {
	own := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	v4 := netip.MustParseAddr("192.0.2.100")
	v6 := netip.MustParseAddr("2001:db8::100")
	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := bytes.Clone(frame)
		op, sha, spa, ok := arpSender(frame)
		if ok {
			if len(frame) < 42 || binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP || len(sha) != 6 || !spa.Is4() {
				t.Fatalf("arpSender accepted %x: op %d sha %v spa %v", frame, op, sha, spa)
			}
			// Re-encoding what was read gives the same ARP payload.
			re := arpFrame(op, sha, spa, net.HardwareAddr(frame[32:38]), netip.AddrFrom4([4]byte(frame[38:42])))
			if !bytes.Equal(re[14:42], frame[14:42]) {
				t.Fatalf("arpSender's reading of %x re-encodes as %x", frame[14:42], re[14:42])
			}
		}
		target, owner, flags, ok := neighborAdvert(frame)
		if ok {
			if len(frame) < 78 || binary.BigEndian.Uint16(frame[12:14]) != etherTypeIPv6 || len(owner) != 6 || !target.Is6() {
				t.Fatalf("neighborAdvert accepted %x: %v %v %x", frame, target, owner, flags)
			}
			if frame[14+40] != icmpv6NeighborAdvertisement {
				t.Fatalf("neighborAdvert accepted ICMPv6 type %d", frame[14+40])
			}
		}
		for _, addr := range []netip.Addr{v4, v6} {
			o, claims := answersFor(frame, addr, own)
			if claims && (bytes.Equal(o, own) || len(o) != 6) {
				t.Fatalf("answersFor(%x, %v) blames owner %v (own %v)", frame, addr, o, own)
			}
			if claims && addr.Is4() {
				if _, _, spa, ok := arpSender(frame); !ok || spa != addr {
					t.Fatalf("answersFor(%x) claims %v without an ARP packet from it", frame, addr)
				}
			}
			if claims && addr.Is6() {
				if tg, _, _, ok := neighborAdvert(frame); !ok || tg != addr {
					t.Fatalf("answersFor(%x) claims %v without an advertisement for it", frame, addr)
				}
			}
		}
		if !bytes.Equal(orig, frame) {
			t.Fatal("the parsers modified the frame")
		}
	})
}

// TestFramesParseBack: what pghook sends is what its probe recognises, so
// the seeds above are real frames.
func TestFramesParseBack(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	v4 := netip.MustParseAddr("192.0.2.100")
	v6 := netip.MustParseAddr("2001:db8::100")
	for _, fr := range garpFrames(mac, v4) {
		if o, ok := answersFor(fr, v4, net.HardwareAddr{0x02, 0, 0, 0, 0, 1}); !ok || !bytes.Equal(o, mac) {
			t.Errorf("gratuitous ARP %x not recognised (%v %v)", fr, o, ok)
		}
	}
	na := unsolicitedNAFrame(mac, v6)
	if o, ok := answersFor(na, v6, net.HardwareAddr{0x02, 0, 0, 0, 0, 1}); !ok || !bytes.Equal(o, mac) {
		t.Errorf("unsolicited NA %x not recognised (%v %v)", na, o, ok)
	}
	if _, ok := answersFor(na, v6, mac); ok {
		t.Error("own advertisement taken for another host's")
	}
}
