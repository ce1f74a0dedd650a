//go:build integration

package netvip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
)

// linkLab is three hosts on one bridge: the asker and two that may hold
// the VIP, each with eth0 and a fixed MAC; the bridge lives in a fourth
// namespace. Documentation addresses only (RFC 5737, RFC 3849).
type linkLab struct {
	ns  map[string]string // role → namespace
	mac map[string]string
}

func newLinkLab(t *testing.T) *linkLab {
	t.Helper()
	testenv.RequireRoot(t)
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	l := &linkLab{ns: map[string]string{}, mac: map[string]string{"asker": "02:00:00:00:01:01", "h1": "02:00:00:00:01:02", "h2": "02:00:00:00:01:03"}}
	br := "pghwho-" + id + "-br"
	for _, ns := range []string{br, "pghwho-" + id + "-a", "pghwho-" + id + "-1", "pghwho-" + id + "-2"} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { run(t, "ip", "netns", "del", ns) })
	}
	l.ns["asker"], l.ns["h1"], l.ns["h2"] = "pghwho-"+id+"-a", "pghwho-"+id+"-1", "pghwho-"+id+"-2"
	run(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	run(t, "ip", "-n", br, "link", "set", "br0", "up")
	for i, role := range []string{"asker", "h1", "h2"} {
		port := fmt.Sprintf("p%d", i)
		run(t, "ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "address", l.mac[role], "netns", l.ns[role])
		run(t, "ip", "-n", br, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", l.ns[role], "link", "set", "lo", "up")
		run(t, "ip", "-n", l.ns[role], "addr", "add", fmt.Sprintf("192.0.2.%d/24", i+1), "dev", "eth0")
		run(t, "ip", "-n", l.ns[role], "addr", "add", fmt.Sprintf("2001:db8::%d/64", i+1), "dev", "eth0", "nodad")
		run(t, "ip", "-n", l.ns[role], "link", "set", "eth0", "up")
	}
	// IPv6 answers solicitations only once the carrier is seen (linkwatch,
	// up to ~1s): the multicast route and the solicited-node group of
	// each host's own address show that it is ready.
	for i, role := range []string{"asker", "h1", "h2"} {
		ns := l.ns[role]
		testenv.WaitFor(t, 10*time.Second, "IPv6 ready in "+ns, func() error {
			if out := run(t, "ip", "-n", ns, "-6", "route", "show", "table", "local", "dev", "eth0"); !strings.Contains(out, "multicast ff00::/8") {
				return fmt.Errorf("no ff00::/8 route yet: %q", out)
			}
			if out := run(t, "ip", "-n", ns, "-6", "maddr", "show", "dev", "eth0"); !strings.Contains(out, fmt.Sprintf("ff02::1:ff00:%d", i+1)) {
				return fmt.Errorf("solicited-node group not joined yet: %q", out)
			}
			return nil
		})
	}
	return l
}

// whoHas runs WhoHas in the asker's namespace and returns the answering
// MACs, sorted, and how long it took.
func (l *linkLab) whoHas(t *testing.T, a netip.Addr, window time.Duration) ([]string, time.Duration) {
	t.Helper()
	var out []string
	var took time.Duration
	inNS(t, l.ns["asker"], func() {
		start := time.Now()
		macs, err := WhoHas(context.Background(), "eth0", a, window)
		took = time.Since(start)
		if err != nil {
			t.Fatalf("WhoHas(%s): %v", a, err)
		}
		for _, m := range macs {
			out = append(out, m.String())
		}
	})
	slices.Sort(out)
	return out, took
}

func TestIntegrationWhoHas(t *testing.T) {
	for _, fam := range []struct {
		name string
		vip  netip.Prefix
	}{{"ipv4", netip.MustParsePrefix("192.0.2.10/24")}, {"ipv6", netip.MustParsePrefix("2001:db8::10/64")}} {
		t.Run(fam.name, func(t *testing.T) {
			l := newLinkLab(t)
			a := fam.vip.Addr()
			add := func(role string) {
				run(t, "ip", "-n", l.ns[role], "addr", "add", fam.vip.String(), "dev", "eth0", "nodad")
			}
			const window = 200 * time.Millisecond

			got, took := l.whoHas(t, a, window)
			if len(got) != 0 {
				t.Fatalf("nobody holds %s, but %v answered", a, got)
			}
			// It listens for the whole window, and not much longer (a
			// loaded 2-core machine adds scheduling delay).
			if took < window || took > window+time.Second {
				t.Errorf("WhoHas took %v, want about its %v window", took, window)
			}

			add("h1")
			if got, _ := l.whoHas(t, a, window); !slices.Equal(got, []string{l.mac["h1"]}) {
				t.Fatalf("h1 holds %s: answers %v, want [%s]", a, got, l.mac["h1"])
			}

			// Two holders: both answer within one window (a takeover's probe would stop
			// at the first).
			add("h2")
			if got, _ := l.whoHas(t, a, window); !slices.Equal(got, []string{l.mac["h1"], l.mac["h2"]}) {
				t.Fatalf("h1 and h2 hold %s: answers %v, want both", a, got)
			}

			// The asker's own address never answers its own question.
			add("asker")
			run(t, "ip", "-n", l.ns["h2"], "addr", "del", fam.vip.String(), "dev", "eth0")
			if got, _ := l.whoHas(t, a, window); !slices.Equal(got, []string{l.mac["h1"]}) {
				t.Fatalf("asker and h1 hold %s: answers %v, want only h1's", a, got)
			}
		})
	}
}

// TestIntegrationNeighboursAfterDial: a TCP connection attempt to a
// member's address (even to a closed port) makes the kernel resolve it, and
// Neighbours then maps the address to the MAC that WhoHas reports.
func TestIntegrationNeighboursAfterDial(t *testing.T) {
	l := newLinkLab(t)
	for _, target := range []string{"192.0.2.2", "2001:db8::3"} {
		want := map[string]string{"192.0.2.2": l.mac["h1"], "2001:db8::3": l.mac["h2"]}[target]
		find := func() string {
			var got string
			inNS(t, l.ns["asker"], func() {
				ns, err := Neighbours("eth0")
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range ns {
					if n.Addr == netip.MustParseAddr(target) {
						got = n.MAC.String()
					}
				}
			})
			return got
		}
		if got := find(); got != "" {
			t.Fatalf("%s already in the neighbour table (%s) before any traffic", target, got)
		}
		var dialErr error
		inNS(t, l.ns["asker"], func() {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(target, "8008"), 300*time.Millisecond)
			if err == nil {
				c.Close()
			}
			dialErr = err
		})
		if got := find(); got != want {
			t.Fatalf("after dialling %s (%v): neighbour MAC %q, want %s\n%s", target, dialErr, got, want, run(t, "ip", "-n", l.ns["asker"], "neigh"))
		}
	}
	inNS(t, l.ns["asker"], func() {
		if _, err := Neighbours("eth9"); err == nil || !strings.Contains(err.Error(), "eth9") {
			t.Errorf("missing interface: %v", err)
		}
	})
}
