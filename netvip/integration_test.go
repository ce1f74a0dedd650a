//go:build integration

package netvip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
	"github.com/vishvananda/netns"
)

// The lab: two network namespaces joined by a veth pair, both ends named
// eth0. The holder runs the code under test; the peer plays a client or
// another holder. Only documentation addresses: 192.0.2.0/24 (RFC 5737)
// and 2001:db8::/32 (RFC 3849).

const (
	holderMAC = "02:00:00:00:00:01"
	peerMAC   = "02:00:00:00:00:02"
	staleMAC  = "02:00:00:00:00:99"
)

type lab struct {
	holder, peer string // namespace names
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	l := &lab{holder: "pghtest-" + id + "-h", peer: "pghtest-" + id + "-p"}
	for _, ns := range []string{l.holder, l.peer} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			// Stop what still runs in the namespace (a detached announcer
			// of a failed test), by pid, then delete it.
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			exec.Command("ip", "netns", "del", ns).Run()
		})
	}
	run(t, "ip", "-n", l.holder, "link", "add", "eth0", "address", holderMAC, "type", "veth", "peer", "name", "eth0", "address", peerMAC, "netns", l.peer)
	for ns, host := range map[string]string{l.holder: "1", l.peer: "2"} {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", ns, "addr", "add", "192.0.2."+host+"/24", "dev", "eth0")
		run(t, "ip", "-n", ns, "addr", "add", "2001:db8::"+host+"/64", "dev", "eth0", "nodad")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	// IPv6 drops multicast (ff02::1, solicited-node groups) as "no route"
	// (Ip6InNoRoutes) until addrconf has added ff00::/8 to the local
	// table, about 1s after the carrier comes up (linkwatch delay), and a
	// host answers solicitations only once it joined the solicited-node
	// group of its address, which can come after the route.
	for ns, host := range map[string]string{l.holder: "1", l.peer: "2"} {
		testenv.WaitFor(t, 10*time.Second, "IPv6 ready in "+ns, func() error {
			if out := run(t, "ip", "-n", ns, "-6", "route", "show", "table", "local", "dev", "eth0"); !strings.Contains(out, "multicast ff00::/8") {
				return fmt.Errorf("no ff00::/8 route yet: %q", out)
			}
			if out := run(t, "ip", "-n", ns, "-6", "maddr", "show", "dev", "eth0"); !strings.Contains(out, "ff02::1:ff00:"+host) {
				return fmt.Errorf("solicited-node group not joined yet: %q", out)
			}
			return nil
		})
	}
	return l
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs f on an OS thread moved into namespace ns, and moves the
// thread back afterwards (or, failing that, leaves it locked so that it
// is thrown away).
func inNS(t *testing.T, ns string, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := enterNS(ns); err != nil {
			errc <- err
			return
		}
		defer func() {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			errc <- nil
		}()
		f()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("entering namespace %s: %v", ns, err)
	}
}

// enterNS moves the calling thread, which must be locked, into ns.
func enterNS(ns string) error {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return netns.Set(h)
}

func (l *lab) addrShow(t *testing.T) string {
	return run(t, "ip", "-n", l.holder, "addr", "show", "dev", "eth0")
}

// neighbour returns the peer's link-layer address for a, or "".
func (l *lab) neighbour(t *testing.T, a netip.Addr) string {
	out := run(t, "ip", "-j", "-n", l.peer, "neigh", "show", a.String(), "dev", "eth0")
	var ns []struct {
		Lladdr string `json:"lladdr"`
	}
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		t.Fatalf("parsing %q: %v", out, err)
	}
	if len(ns) == 0 {
		return ""
	}
	return ns[0].Lladdr
}

func (l *lab) setStale(t *testing.T, a netip.Addr) {
	run(t, "ip", "-n", l.peer, "neigh", "replace", a.String(), "lladdr", staleMAC, "dev", "eth0", "nud", "stale")
	if got := l.neighbour(t, a); got != staleMAC {
		t.Fatalf("peer's entry for %s is %q after setting it to %s", a, got, staleMAC)
	}
}

func (l *lab) waitNeighbour(t *testing.T, a netip.Addr, want string, within time.Duration) {
	t.Helper()
	testenv.WaitFor(t, within, "peer's neighbour entry for "+a.String()+" = "+want, func() error {
		if got := l.neighbour(t, a); got != want {
			return fmt.Errorf("it is %q", got)
		}
		return nil
	})
}

type family struct {
	name   string
	prefix netip.Prefix
	flags  []string // what ip addr shows for the vip
}

var families = []family{
	{name: "ipv4", prefix: netip.MustParsePrefix("192.0.2.10/24"), flags: []string{"inet 192.0.2.10/24", "noprefixroute", "eth0:vip"}},
	{name: "ipv6", prefix: netip.MustParsePrefix("2001:db8::10/64"), flags: []string{"inet6 2001:db8::10/64", "nodad", "noprefixroute"}},
}

func (fam family) settings() Settings {
	return Settings{Backend: "netlink", Address: fam.prefix.String(), Interface: "eth0", Label: "vip",
		Announcements: 1, AnnounceInterval: 100 * time.Millisecond, TakeoverWait: 500 * time.Millisecond}
}

func newBackend(t *testing.T, s Settings, opts ...Option) *Netlink {
	t.Helper()
	b, err := NewNetlink(s, testLogger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIntegrationHoldRelease(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			l := newLab(t)
			b := newBackend(t, fam.settings())
			ctx := context.Background()
			for i := range 2 {
				inNS(t, l.holder, func() {
					if err := b.Hold(ctx); err != nil {
						t.Fatalf("Hold #%d: %v", i+1, err)
					}
				})
				out := l.addrShow(t)
				if n := strings.Count(out, " "+fam.prefix.String()+" "); n != 1 {
					t.Fatalf("after Hold #%d the vip is on eth0 %d times:\n%s", i+1, n, out)
				}
				line := grepLine(out, fam.prefix.String())
				for _, w := range fam.flags {
					if !strings.Contains(line, w) {
						t.Errorf("after Hold #%d: %q lacks %q", i+1, line, w)
					}
				}
				inNS(t, l.holder, func() {
					st, err := b.Status(ctx)
					if err != nil || !st.Held {
						t.Errorf("Status = %+v, %v; want held", st, err)
					}
				})
			}
			// noprefixroute: the vip added no route of its own.
			if routes := run(t, "ip", "-n", l.holder, "route", "show", "table", "all", "dev", "eth0"); strings.Contains(routes, "proto kernel scope link src "+fam.prefix.Addr().String()) {
				t.Errorf("the vip added a prefix route:\n%s", routes)
			}
			for i := range 2 {
				inNS(t, l.holder, func() {
					if err := b.Release(ctx); err != nil {
						t.Fatalf("Release #%d: %v", i+1, err)
					}
				})
				if out := l.addrShow(t); strings.Contains(out, " "+fam.prefix.String()+" ") {
					t.Fatalf("after Release #%d the vip is still there:\n%s", i+1, out)
				}
				inNS(t, l.holder, func() {
					st, err := b.Status(ctx)
					if err != nil || st.Held {
						t.Errorf("Status = %+v, %v; want not held", st, err)
					}
				})
			}
		})
	}
}

func TestIntegrationMissingInterface(t *testing.T) {
	l := newLab(t)
	s := families[0].settings()
	s.Interface = "eth7"
	b := newBackend(t, s)
	inNS(t, l.holder, func() {
		err := b.Hold(context.Background())
		if err == nil || !strings.Contains(err.Error(), "eth7") {
			t.Errorf("Hold on a missing interface = %v, want an error naming eth7", err)
		}
		if err := b.Release(context.Background()); err != nil {
			t.Errorf("Release on a missing interface = %v, want nil", err)
		}
	})
}

func grepLine(s, sub string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

// The first round, sent by Hold itself, moves a peer's existing entry for
// the vip to the holder's MAC.
func TestIntegrationAnnounceUpdatesStaleNeighbour(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			l := newLab(t)
			a := fam.prefix.Addr()
			l.setStale(t, a)
			b := newBackend(t, fam.settings())
			inNS(t, l.holder, func() {
				if err := b.Hold(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
			l.waitNeighbour(t, a, holderMAC, 2*time.Second)
		})
	}
}

func TestIntegrationProbe(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			l := newLab(t)
			a := fam.prefix.Addr()
			probe := func() (net.HardwareAddr, bool) {
				var owner net.HardwareAddr
				var answered bool
				inNS(t, l.holder, func() {
					sys := osSystem{}
					li, err := sys.link("eth0")
					if err != nil {
						t.Fatal(err)
					}
					owner, answered, err = sys.probe(context.Background(), li, a, 500*time.Millisecond)
					if err != nil {
						t.Fatal(err)
					}
				})
				return owner, answered
			}
			if owner, answered := probe(); answered {
				t.Fatalf("Probe with nobody holding %s: answered by %s", a, owner)
			}
			run(t, "ip", "-n", l.peer, "addr", "add", fam.prefix.String(), "dev", "eth0", "nodad")
			if owner, answered := probe(); !answered || owner.String() != peerMAC {
				t.Fatalf("Probe with the peer holding %s = %s, %t; want %s, true", a, owner, answered, peerMAC)
			}
		})
	}
}

// Hold waits while the peer holds the vip, and takes it once the peer
// lets go, well before the bound.
func TestIntegrationHoldWaitsForTheOldHolder(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			l := newLab(t)
			run(t, "ip", "-n", l.peer, "addr", "add", fam.prefix.String(), "dev", "eth0", "nodad")
			s := fam.settings()
			s.TakeoverWait = 10 * time.Second
			b := newBackend(t, s)
			released := make(chan time.Time, 1)
			go func() {
				time.Sleep(700 * time.Millisecond)
				exec.Command("ip", "-n", l.peer, "addr", "del", fam.prefix.String(), "dev", "eth0").Run()
				released <- time.Now()
			}()
			start := time.Now()
			inNS(t, l.holder, func() {
				if err := b.Hold(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
			done := time.Now()
			rel := <-released
			if done.Before(rel) {
				t.Fatalf("Hold returned %v after it started, before the peer released the vip (%v)", done.Sub(start), rel.Sub(start))
			}
			if wait := done.Sub(rel); wait > 2*time.Second {
				t.Errorf("Hold took %v after the peer released the vip", wait)
			}
			if !strings.Contains(l.addrShow(t), " "+fam.prefix.String()+" ") {
				t.Error("the vip is not on the holder")
			}
		})
	}
}

// Hold takes the vip anyway once TakeoverWait has passed.
func TestIntegrationHoldTakesOverAfterTheBound(t *testing.T) {
	l := newLab(t)
	fam := families[0]
	run(t, "ip", "-n", l.peer, "addr", "add", fam.prefix.String(), "dev", "eth0")
	b := newBackend(t, fam.settings()) // TakeoverWait 500ms
	start := time.Now()
	inNS(t, l.holder, func() {
		if err := b.Hold(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if took := time.Since(start); took < 500*time.Millisecond || took > 3*time.Second {
		t.Errorf("Hold took %v, want a little over the 500ms bound", took)
	}
	if !strings.Contains(l.addrShow(t), " "+fam.prefix.String()+" ") {
		t.Error("the vip is not on the holder")
	}
}

// An in-process announcer stops at its next round once the address is
// gone.
func TestIntegrationAnnounceStopsOnRelease(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			l := newLab(t)
			b := newBackend(t, fam.settings())
			inNS(t, l.holder, func() {
				if err := b.Hold(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
			done := make(chan error, 1)
			go func() {
				runtime.LockOSThread()
				orig, err := netns.Get()
				if err != nil {
					done <- err
					return
				}
				defer orig.Close()
				if err := enterNS(l.holder); err != nil {
					done <- err
					return
				}
				defer func() {
					if netns.Set(orig) == nil {
						runtime.UnlockOSThread()
					}
				}()
				r := AnnounceRequest{Interface: "eth0", Addr: fam.prefix.Addr(), Rounds: 1000, Interval: 100 * time.Millisecond}
				done <- Announce(context.Background(), r, testLogger(t))
			}()
			time.Sleep(300 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("Announce ended before the release: %v", err)
			default:
			}
			inNS(t, l.holder, func() {
				if err := b.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Announce still running 2s after the release")
			}
		})
	}
}

// Hold with a Spawner leaves a detached announcer in the holder's
// namespace that keeps announcing after Hold returned and exits once the
// vip is released.
func TestIntegrationDetachedAnnouncer(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			l := newLab(t)
			a := fam.prefix.Addr()
			self, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			pidfile := filepath.Join(t.TempDir(), "pid")
			t.Setenv(helperEnv, "announce")
			s := fam.settings()
			s.Announcements = MaxAnnouncements
			s.AnnounceInterval = 200 * time.Millisecond
			b := newBackend(t, s, WithAnnouncer(Spawner{Self: self, Command: []string{pidfile}}))
			inNS(t, l.holder, func() {
				if err := b.Hold(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
			var pid int
			testenv.WaitFor(t, 5*time.Second, "the announcer's pid file", func() error {
				b, err := os.ReadFile(pidfile)
				if err == nil {
					pid, err = strconv.Atoi(string(b))
				}
				return err
			})
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			if !alive(pid) {
				t.Fatalf("announcer %d is not running", pid)
			}
			if got, want := nsInode(t, fmt.Sprintf("/proc/%d/ns/net", pid)), nsInode(t, "/run/netns/"+l.holder); got != want {
				t.Fatalf("announcer %d runs in network namespace %d, want the holder's %d", pid, got, want)
			}
			// Hold has returned: later rounds come from the detached process.
			l.setStale(t, a)
			l.waitNeighbour(t, a, holderMAC, 3*time.Second)

			inNS(t, l.holder, func() {
				if err := b.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
			testenv.WaitFor(t, 3*time.Second, "the announcer to exit after the release", func() error {
				if alive(pid) {
					return fmt.Errorf("%d still running", pid)
				}
				return nil
			})
		})
	}
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func nsInode(t *testing.T, path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
