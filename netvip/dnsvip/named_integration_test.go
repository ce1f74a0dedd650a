//go:build integration

package dnsvip

// A netlink VIP named in DNS, with the real pieces: the netlink backend
// adding the address on dnslab's host interface (root namespace, a veth of
// the test's own) and BIND 9 serving the record. Root only; under the
// shared lock:
//   flock /tmp/pghook-root.lock go test -tags integration -run BINDNamed ./netvip/dnsvip/

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/dnslab"
	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// noAnnounce drops the follow-up rounds (the first is sent by Hold).
type noAnnounce struct{}

func (noAnnounce) Announce(context.Context, netvip.AnnounceRequest) error { return nil }

func onHostIf(t *testing.T, addr string) bool {
	t.Helper()
	ifi, err := net.InterfaceByName(dnslab.HostIf)
	if err != nil {
		t.Fatal(err)
	}
	as, err := ifi.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.String() == addr {
			return true
		}
	}
	return false
}

func TestBINDNamedVIP(t *testing.T) {
	lab := startLab(t)
	ctx := context.Background()
	// One VIP per subnet; the host interface is in 10.251.78.0/24.
	const vip = "10.251.78.100"
	s := netvip.Settings{Backend: "netlink", Interface: dnslab.HostIf, Addresses: []string{"192.0.2.100/24", vip + "/24"},
		TakeoverWait: -1, Announcements: 1}
	nl, err := netvip.NewNetlink(s, zerolog.Nop(), netvip.WithAnnouncer(noAnnounce{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nl.Release(context.Background()) })
	rec, err := New(Settings{Name: dnslab.Name, Zone: dnslab.Zone, Server: dnslab.ServerAddr, KeyFile: lab.KeyFile,
		Interface: dnslab.HostIf, Target: netip.MustParseAddr(vip), Timeout: time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	here := func() (bool, error) { return netvip.OnInterface(dnslab.HostIf, netip.MustParsePrefix(vip+"/24")) }
	n := NameVIP(nl, rec, here, zerolog.Nop())
	served := func(want ...string) {
		t.Helper()
		expectRecord(t, lab, dnslab.Name, want...)
	}
	// Take: the subnet's VIP on the interface, the name on it.
	if err := n.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if !onHostIf(t, vip) {
		t.Fatal("the VIP is not on the interface after Hold")
	}
	served(vip)
	if st, err := n.Status(ctx); err != nil || !st.Held {
		t.Fatalf("status after Hold: %+v %v", st, err)
	}
	// Another subnet's primary took the name: the address here without
	// the name is an error (the watcher then acts), and this node's
	// release leaves that record alone but drops the address.
	other, err := New(Settings{Name: dnslab.Name, Zone: dnslab.Zone, Server: dnslab.ServerAddr, KeyFile: lab.KeyFile,
		Address: netip.MustParseAddr("10.251.78.12"), Target: netip.MustParseAddr("198.51.100.100"), Timeout: time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Status(ctx); err == nil || !strings.Contains(err.Error(), "does not name it") {
		t.Fatalf("status with the name elsewhere: %v, want an error", err)
	}
	if err := n.Release(ctx); err != nil {
		t.Fatal(err)
	}
	served("198.51.100.100")
	if onHostIf(t, vip) {
		t.Fatal("the VIP stayed on the interface after Release")
	}
	// Take again, release: the record goes (its prerequisite holds), then the address.
	if err := n.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	served(vip)
	if err := n.Release(ctx); err != nil {
		t.Fatal(err)
	}
	served()
	if onHostIf(t, vip) {
		t.Fatal("the VIP stayed on the interface after Release")
	}
	if st, err := n.Status(ctx); err != nil || st.Held {
		t.Fatalf("status after Release: %+v %v", st, err)
	}
}
