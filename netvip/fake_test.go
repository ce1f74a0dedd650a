package netvip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeSystem is a recording system: links and addresses in memory, and
// every operation that changes or sends something as a line of text.
type fakeSystem struct {
	mu     sync.Mutex
	links  map[string]linkInfo
	addrsM map[string][]addrInfo // by interface name
	ops    []string

	probeFn    func(n int) (net.HardwareAddr, bool, error) // nil: nobody answers
	probes     int
	hideAdds   bool  // addrReplace succeeds but the address does not appear
	addFlags   int   // flags the "kernel" gives added addresses
	delErr     error // returned by addrDel after deleting
	announces  int
	onAnnounce func(f *fakeSystem) // called with mu held after each round
	arpIgn     int                 // arp_ignore the "kernel" reports
	routes     map[netip.Addr]bool // local routes on lo
}

func (f *fakeSystem) localRoute(addr netip.Addr, add bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routes == nil {
		f.routes = map[netip.Addr]bool{}
	}
	if add {
		f.record("route add local %s dev lo", addr)
		f.routes[addr] = true
	} else {
		f.record("route del local %s dev lo", addr)
		delete(f.routes, addr)
	}
	return nil
}

func (f *fakeSystem) arpIgnore(string) int { return f.arpIgn }

var fakeMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}

func newFake() *fakeSystem {
	return &fakeSystem{
		links:  map[string]linkInfo{"eth0": {Name: "eth0", Index: 2, MAC: fakeMAC, Up: true}},
		addrsM: map[string][]addrInfo{},
	}
}

func (f *fakeSystem) record(format string, args ...any) {
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

func (f *fakeSystem) Ops() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.ops, "\n")
}

func (f *fakeSystem) setAddr(dev string, a addrInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrsM[dev] = append(f.addrsM[dev], a)
}

func (f *fakeSystem) dropAddr(dev string, p netip.Prefix) {
	var keep []addrInfo
	for _, a := range f.addrsM[dev] {
		if a.Prefix != p {
			keep = append(keep, a)
		}
	}
	f.addrsM[dev] = keep
}

func (f *fakeSystem) link(name string) (linkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	li, ok := f.links[name]
	if !ok {
		return linkInfo{}, fmt.Errorf("interface %s: %w", name, errNoLink)
	}
	return li, nil
}

func (f *fakeSystem) addrs(li linkInfo, af netip.Addr) ([]addrInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []addrInfo
	for _, a := range f.addrsM[li.Name] {
		if a.Prefix.Addr().Is4() == af.Is4() {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fakeSystem) addrReplace(li linkInfo, a addrSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("addr replace %s", a)
	if f.hideAdds {
		return nil
	}
	f.dropAddr(li.Name, a.Prefix)
	f.addrsM[li.Name] = append(f.addrsM[li.Name], addrInfo{Prefix: a.Prefix, Label: a.Label, Flags: a.Flags | f.addFlags})
	return nil
}

func (f *fakeSystem) addrDel(li linkInfo, a addrSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("addr del %s", a)
	f.dropAddr(li.Name, a.Prefix)
	return f.delErr
}

func (f *fakeSystem) announce(li linkInfo, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("announce %s dev %s", addr, li.Name)
	f.announces++
	if f.onAnnounce != nil {
		f.onAnnounce(f)
	}
	return nil
}

func (f *fakeSystem) probe(ctx context.Context, li linkInfo, addr netip.Addr, timeout time.Duration) (net.HardwareAddr, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("probe %s dev %s", addr, li.Name)
	f.probes++
	if f.probeFn == nil {
		return nil, false, nil
	}
	return f.probeFn(f.probes)
}

// recAnnouncer records the requests Hold hands over into the fake's ops.
type recAnnouncer struct{ f *fakeSystem }

func (r recAnnouncer) Announce(_ context.Context, q AnnounceRequest) error {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	r.f.record("announcer %s", strings.Join(q.Args(), " "))
	return nil
}

// testLogger returns a logger that writes to the test log.
func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: zerolog.TestWriter{T: t}, NoColor: true})
}

var errEADDRNOTAVAIL = syscall.EADDRNOTAVAIL
