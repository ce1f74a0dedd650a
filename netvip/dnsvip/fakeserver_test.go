package dnsvip

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// zoneServer is a small in-process RFC 2136 server for one zone, enough
// to check what the backend sends and how it reads the answers: value-
// dependent prerequisites (2.4.2), RRset and RR deletes, adds. The
// integration tests run the same cases against BIND.
type zoneServer struct {
	t    *testing.T
	zone string
	addr string
	key  Key

	mu       sync.Mutex
	sets     map[string][]netip.Addr // "name/type" → values
	ttl      map[string]uint32
	updates  int
	rcode    int  // forced rcode for updates (0: none)
	unsigned bool // answer updates without TSIG (a spoofed reply)
}

func newZoneServer(t *testing.T, zone string, key Key, network string) *zoneServer {
	t.Helper()
	z := &zoneServer{t: t, zone: dns.CanonicalName(zone), key: key, sets: map[string][]netip.Addr{}, ttl: map[string]uint32{}}
	srv := &dns.Server{Net: network, Handler: z, TsigSecret: map[string]string{key.Name: key.secret},
		MsgAcceptFunc: func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept }}
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.PacketConn, z.addr = pc, pc.LocalAddr().String()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.Listener, z.addr = l, l.Addr().String()
	}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

func key(name string, t uint16) string { return strings.ToLower(name) + "/" + dns.TypeToString[t] }

func (z *zoneServer) set(name string, t uint16, ttl uint32, vals ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	var as []netip.Addr
	for _, v := range vals {
		as = append(as, netip.MustParseAddr(v))
	}
	z.sets[key(dns.CanonicalName(name), t)], z.ttl[key(dns.CanonicalName(name), t)] = as, ttl
}

func (z *zoneServer) get(name string, t uint16) []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []string
	for _, a := range z.sets[key(dns.CanonicalName(name), t)] {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func addrOf(rr dns.RR) netip.Addr {
	switch v := rr.(type) {
	case *dns.A:
		a, _ := netip.AddrFromSlice(v.A)
		return a.Unmap()
	case *dns.AAAA:
		a, _ := netip.AddrFromSlice(v.AAAA)
		return a
	}
	return netip.Addr{}
}

func (z *zoneServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg).SetReply(r)
	defer func() {
		z.mu.Lock()
		unsigned := z.unsigned
		z.mu.Unlock()
		if t := r.IsTsig(); t != nil && w.TsigStatus() == nil && !unsigned {
			m.SetTsig(t.Hdr.Name, t.Algorithm, 300, int64(t.TimeSigned))
		}
		_ = w.WriteMsg(m)
	}()
	z.mu.Lock()
	defer z.mu.Unlock()
	if r.Opcode == dns.OpcodeQuery {
		q := r.Question[0]
		k := key(q.Name, q.Qtype)
		for _, a := range z.sets[k] {
			h := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: z.ttl[k]}
			if a.Is4() {
				m.Answer = append(m.Answer, &dns.A{Hdr: h, A: a.AsSlice()})
			} else {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: h, AAAA: a.AsSlice()})
			}
		}
		return
	}
	if r.IsTsig() == nil || w.TsigStatus() != nil {
		m.Rcode = dns.RcodeRefused
		return
	}
	if dns.CanonicalName(r.Question[0].Name) != z.zone {
		m.Rcode = dns.RcodeNotAuth
		return
	}
	if z.rcode != 0 {
		m.Rcode = z.rcode
		return
	}
	// Prerequisites: value-dependent sets must match exactly.
	want := map[string][]netip.Addr{}
	for _, rr := range r.Answer {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			z.t.Errorf("unexpected prerequisite class %d in %v", h.Class, rr)
			m.Rcode = dns.RcodeFormatError
			return
		}
		k := key(h.Name, h.Rrtype)
		want[k] = append(want[k], addrOf(rr))
	}
	for k, vals := range want {
		have := slices.Clone(z.sets[k])
		slices.SortFunc(have, netip.Addr.Compare)
		slices.SortFunc(vals, netip.Addr.Compare)
		if !slices.Equal(have, vals) {
			m.Rcode = dns.RcodeNXRrset
			return
		}
	}
	for _, rr := range r.Ns {
		h := rr.Header()
		k := key(h.Name, h.Rrtype)
		switch h.Class {
		case dns.ClassANY:
			delete(z.sets, k)
		case dns.ClassNONE:
			a := addrOf(rr)
			z.sets[k] = slices.DeleteFunc(z.sets[k], func(b netip.Addr) bool { return b == a })
		case dns.ClassINET:
			if a := addrOf(rr); !slices.Contains(z.sets[k], a) {
				z.sets[k] = append(z.sets[k], a)
			}
			z.ttl[k] = h.Ttl
		}
	}
	z.updates++
}
