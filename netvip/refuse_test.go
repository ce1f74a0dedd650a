package netvip

import (
	"context"
	"net/netip"
	"testing"
)

func TestRefuse(t *testing.T) {
	for _, tt := range []struct {
		name   string
		prefix string
		arpIgn int
		wantOK bool
		route  bool
	}{
		{"arp_ignore 1: local route on lo", "192.0.2.100/24", 1, true, true},
		{"arp_ignore 2", "192.0.2.100/24", 2, true, true},
		{"arp_ignore 0: the route would answer ARP, nothing done", "192.0.2.100/24", 0, false, false},
		{"arp_ignore unknown", "192.0.2.100/24", -1, false, false},
		{"IPv6: nothing done", "2001:db8::100/64", 1, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.arpIgn = tt.arpIgn
			v, err := parseSettings(Settings{Backend: "netlink", Address: tt.prefix, Interface: "eth0"})
			if err != nil {
				t.Fatal(err)
			}
			n := newNetlink(v, f, testLogger(t))
			ok, err := n.Refuse(context.Background())
			if err != nil || ok != tt.wantOK {
				t.Fatalf("Refuse: %v %v, want %v", ok, err, tt.wantOK)
			}
			addr := netip.MustParsePrefix(tt.prefix).Addr()
			if f.routes[addr] != tt.route {
				t.Fatalf("route present %v, want %v (ops %s)", f.routes[addr], tt.route, f.Ops())
			}
			if err := n.Unrefuse(context.Background()); err != nil {
				t.Fatal(err)
			}
			if f.routes[addr] {
				t.Fatalf("route still there after Unrefuse (ops %s)", f.Ops())
			}
		})
	}
}
