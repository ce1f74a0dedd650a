package dnsvip

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

const (
	testName = "primary.pglab.test."
	testZone = "pglab.test."
	me       = "198.51.100.11"
	other    = "198.51.100.12"
	secretB  = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=" // base64 of 32 bytes
)

var testKey = Key{Name: "pglab-hook.", Algorithm: dns.HmacSHA256, secret: secretB}

// backend returns a dns backend for the node at addr, talking to z, with
// its log in the returned buffer.
func backend(t *testing.T, z *zoneServer, network, addr string) (*Backend, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	b, err := New(Settings{Name: testName, Zone: testZone, Server: z.addr, Transport: network, KeyFile: "/unused",
		Address: netip.MustParseAddr(addr), Timeout: time.Second}, zerolog.New(&buf))
	if err != nil {
		t.Fatal(err)
	}
	k := z.key
	b.key = &k
	return b, &buf
}

func TestHoldReleaseStatus(t *testing.T) {
	type step struct {
		node, op string
		want     []string // the A RRset after the step
		held     bool     // Status of node after the step
		log      string   // in node's log
	}
	tests := []struct {
		name    string
		initial []string
		steps   []step
	}{
		{"take an empty name", nil, []step{{me, "hold", []string{me}, true, "dns record points here"}}},
		{"take replaces the old primary's value", []string{other}, []step{{me, "hold", []string{me}, true, ""}}},
		{"take replaces several values", []string{other, "198.51.100.13"}, []step{{me, "hold", []string{me}, true, ""}}},
		{"holder releases", []string{me}, []step{{me, "release", nil, false, "dns record removed"}}},
		{"a former primary's release leaves the new primary's record", nil, []step{
			{other, "hold", []string{other}, false, ""},
			{me, "release", []string{other}, false, "release refused by the server's prerequisite (NXRRSET)"},
		}},
		{"switchover: new primary takes, old one's late release changes nothing", []string{me}, []step{
			{other, "hold", []string{other}, false, ""},
			{me, "release", []string{other}, false, `"record":"` + other + `"`},
		}},
		{"release of an empty name", nil, []step{{me, "release", nil, false, "NXRRSET"}}},
		{"release from a set naming several drops only this node", []string{me, other}, []step{{me, "release", []string{other}, false, "several"}}},
		{"hold twice", nil, []step{{me, "hold", []string{me}, true, ""}, {me, "hold", []string{me}, true, ""}}},
	}
	for _, network := range []string{"tcp", "udp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				z := newZoneServer(t, testZone, testKey, network)
				z.set(testName, dns.TypeA, 30, tt.initial...)
				ctx := context.Background()
				for i, s := range tt.steps {
					b, logbuf := backend(t, z, network, s.node)
					var err error
					if s.op == "hold" {
						err = b.Hold(ctx)
					} else {
						err = b.Release(ctx)
					}
					if err != nil {
						t.Fatalf("step %d (%s %s): %v", i, s.node, s.op, err)
					}
					if got := z.get(testName, dns.TypeA); !slices.Equal(got, s.want) {
						t.Fatalf("step %d (%s %s): record %v, want %v", i, s.node, s.op, got, s.want)
					}
					if s.log != "" && !strings.Contains(logbuf.String(), s.log) {
						t.Errorf("step %d: log %q lacks %q", i, logbuf.String(), s.log)
					}
					mb, _ := backend(t, z, network, me)
					st, err := mb.Status(ctx)
					if err != nil {
						t.Fatalf("step %d: status: %v", i, err)
					}
					if st.Held != s.held {
						t.Fatalf("step %d: status of %s: held %v (%s), want %v", i, me, st.Held, st.Detail, s.held)
					}
				}
			})
		}
	}
}

func TestHoldSetsTTL(t *testing.T) {
	z := newZoneServer(t, testZone, testKey, "tcp")
	z.set(testName, dns.TypeA, 300, other)
	b, _ := backend(t, z, "tcp", me)
	if err := b.Hold(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ttl := z.ttl[key(testName, dns.TypeA)]; ttl != 1 {
		t.Fatalf("ttl %d, want the default 1", ttl)
	}
	st, err := b.Status(context.Background())
	if err != nil || !strings.Contains(st.Detail, "(ttl 1)") {
		t.Fatalf("status %+v %v: want the served ttl", st, err)
	}
}

func TestIPv6UsesAAAA(t *testing.T) {
	z := newZoneServer(t, testZone, testKey, "tcp")
	z.set(testName, dns.TypeA, 30, other)
	b, _ := backend(t, z, "tcp", "2001:db8::11")
	if err := b.Hold(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := z.get(testName, dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8::11"}) {
		t.Fatalf("AAAA %v", got)
	}
	if got := z.get(testName, dns.TypeA); !slices.Equal(got, []string{other}) {
		t.Fatalf("A %v: the A RRset must be left alone", got)
	}
}

func TestStatusSeveralValuesIsAnError(t *testing.T) {
	z := newZoneServer(t, testZone, testKey, "tcp")
	z.set(testName, dns.TypeA, 30, me, other)
	b, _ := backend(t, z, "tcp", me)
	if _, err := b.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "several") {
		t.Fatalf("err %v: a set naming this node among others must make a reconciler act", err)
	}
	z.set(testName, dns.TypeA, 30, other, "198.51.100.13")
	if st, err := b.Status(context.Background()); err != nil || st.Held {
		t.Fatalf("%+v %v: others only is plainly not held", st, err)
	}
}

func TestServerRcodes(t *testing.T) {
	for _, tt := range []struct {
		rcode int
		want  string
	}{
		{dns.RcodeRefused, "REFUSED"},
		{dns.RcodeNotAuth, "NOTAUTH"},
		{dns.RcodeServerFailure, "SERVFAIL"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			z := newZoneServer(t, testZone, testKey, "tcp")
			z.rcode = tt.rcode
			b, _ := backend(t, z, "tcp", me)
			for _, op := range []func(context.Context) error{b.Hold, b.Release} {
				err := op(context.Background())
				var rc *RcodeError
				if !errors.As(err, &rc) || rc.Rcode != tt.rcode || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err %v, want rcode %s", err, tt.want)
				}
			}
		})
	}
}

func TestWrongKeyIsRefused(t *testing.T) {
	z := newZoneServer(t, testZone, testKey, "tcp")
	b, _ := backend(t, z, "tcp", me)
	b.key = &Key{Name: "pglab-hook.", Algorithm: dns.HmacSHA256, secret: "b3RoZXItb3RoZXItb3RoZXItb3RoZXItMTIzNDU2Nzg="}
	err := b.Hold(context.Background())
	if err == nil {
		t.Fatal("an update signed with the wrong secret succeeded")
	}
	if strings.Contains(err.Error(), b.key.secret) || strings.Contains(err.Error(), secretB) {
		t.Fatalf("the error carries a secret: %v", err)
	}
	if got := z.get(testName, dns.TypeA); got != nil {
		t.Fatalf("record %v changed", got)
	}
}

func TestServerDownAndSilent(t *testing.T) {
	// A closed port: refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// A UDP socket that never answers: the timeout ends the exchange.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, tt := range []struct{ network, addr string }{{"tcp", addr}, {"udp", silent.LocalAddr().String()}} {
		b, err := New(Settings{Name: testName, Zone: testZone, Server: tt.addr, Transport: tt.network, KeyFile: "/unused",
			Address: netip.MustParseAddr(me), Timeout: 200 * time.Millisecond}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		k := testKey
		b.key = &k
		start := time.Now()
		err = b.Hold(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.addr) {
			t.Fatalf("%s: err %v, want a failure naming the server", tt.network, err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("%s: took %v, want the 200ms timeout to bound it", tt.network, took)
		}
		if _, err := b.Status(context.Background()); err == nil {
			t.Fatalf("%s: status of an unreachable server succeeded", tt.network)
		}
	}
}

func TestContextDeadlineBoundsExchange(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	b, err := New(Settings{Name: testName, Zone: testZone, Server: silent.LocalAddr().String(), Transport: "udp", KeyFile: "/unused",
		Address: netip.MustParseAddr(me), Timeout: 10 * time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	k := testKey
	b.key = &k
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := b.Release(ctx); err == nil {
		t.Fatal("release against a silent server succeeded")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("took %v: the caller's deadline must end the exchange", took)
	}
}

func TestMessages(t *testing.T) {
	b, err := New(Settings{Name: "Primary.PGLab.test", Zone: "pglab.test", Server: "192.0.2.53", KeyFile: "/k", Address: netip.MustParseAddr(me)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if b.server != "192.0.2.53:53" || b.name != "primary.pglab.test." || b.net != "tcp" {
		t.Fatalf("defaults: server %s name %s net %s", b.server, b.name, b.net)
	}
	a := netip.MustParseAddr(me)
	// What the backend sends, as it goes on the wire and is read back.
	wire := func(m *dns.Msg) *dns.Msg {
		t.Helper()
		raw, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out := new(dns.Msg)
		if err := out.Unpack(raw); err != nil {
			t.Fatal(err)
		}
		if out.Opcode != dns.OpcodeUpdate || len(out.Question) != 1 || out.Question[0].Name != "pglab.test." || out.Question[0].Qtype != dns.TypeSOA {
			t.Fatalf("header or zone section:\n%v", out)
		}
		return out
	}
	h := wire(b.holdMsg(a))
	if len(h.Answer) != 0 || len(h.Ns) != 2 || h.Ns[0].Header().Class != dns.ClassANY || h.Ns[0].Header().Rrtype != dns.TypeA ||
		h.Ns[1].Header().Class != dns.ClassINET || h.Ns[1].Header().Ttl != 1 || h.Ns[1].(*dns.A).A.String() != me {
		t.Fatalf("hold message:\n%v", h)
	}
	r := wire(b.releaseMsg(a, true))
	if len(r.Answer) != 1 || r.Answer[0].Header().Class != dns.ClassINET || r.Answer[0].(*dns.A).A.String() != me ||
		len(r.Ns) != 1 || r.Ns[0].Header().Class != dns.ClassNONE || r.Ns[0].Header().Ttl != 0 {
		t.Fatalf("release message (prerequisite class IN with the value, delete class NONE):\n%v", r)
	}
	if u := wire(b.releaseMsg(a, false)); len(u.Answer) != 0 || len(u.Ns) != 1 {
		t.Fatalf("unguarded release:\n%v", u)
	}
	if q := queryMsg(b.name, dns.TypeAAAA); q.RecursionDesired || q.Question[0].Qtype != dns.TypeAAAA {
		t.Fatalf("query:\n%v", q)
	}
	for _, s := range []Settings{
		{Name: "p.other.", Zone: "pglab.test", Server: "x", KeyFile: "/k", Interface: "eth0"},
		{Name: "pglab.test", Zone: "pglab.test", Server: "x", KeyFile: "/k", Interface: "eth0"},
		{Name: "p.pglab.test", Zone: "pglab.test", Server: "x", Interface: "eth0"},
		{Name: "p.pglab.test", Zone: "pglab.test", Server: "x", KeyFile: "/k", Interface: "eth0", Transport: "tls"},
	} {
		if _, err := New(s, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v) accepted", s)
		}
	}
}

// A reply without the server's signature is not believed: over UDP anyone
// on the path can send "NOERROR".
func TestUnsignedReplyIsAnError(t *testing.T) {
	z := newZoneServer(t, testZone, testKey, "udp")
	z.mu.Lock()
	z.unsigned = true
	z.mu.Unlock()
	b, _ := backend(t, z, "udp", me)
	if err := b.Hold(context.Background()); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("err %v", err)
	}
}
