package dnsvip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// addrVIP stands for the address backend (netlink or the VIP helper): it
// records each operation with the record the server served at that moment,
// so the tests see the order of the two updates.
type addrVIP struct {
	z                  *zoneServer
	held               bool
	holdErr, statusErr error
	ops                []string // "hold [record]", "release [record]"
}

func (a *addrVIP) Name() string { return "netlink" }
func (a *addrVIP) Hold(context.Context) error {
	a.ops = append(a.ops, "hold "+strings.Join(a.z.get(testName, dns.TypeA), ","))
	if a.holdErr != nil {
		return a.holdErr
	}
	a.held = true
	return nil
}
func (a *addrVIP) Release(context.Context) error {
	a.ops = append(a.ops, "release "+strings.Join(a.z.get(testName, dns.TypeA), ","))
	a.held = false
	return nil
}
func (a *addrVIP) Status(context.Context) (netvip.Status, error) {
	return netvip.Status{Held: a.held, Detail: "address"}, a.statusErr
}

type refusingAddr struct{ addrVIP }

func (r *refusingAddr) Refuse(context.Context) (bool, error) { return true, nil }
func (r *refusingAddr) Unrefuse(context.Context) error       { return nil }

const (
	vipA = "198.51.100.100" // subnet A's VIP
	vipB = "203.0.113.100"  // subnet B's VIP
)

func TestNamedVIP(t *testing.T) {
	failed := errors.New("refused by the guard")
	tests := []struct {
		name      string
		record    []string // the A RRset before
		held      bool     // the address is here before
		holdErr   error
		statusErr error
		op        string
		wantErr   string   // "" for success
		want      []string // the RRset after
		wantOps   []string // the address backend's operations, with the record at that moment
		wantHeld  bool     // Status after (when it has no error)
		statusBad bool     // Status after is an error
	}{
		{name: "take: address, then record", record: []string{vipB}, op: "hold",
			want: []string{vipA}, wantOps: []string{"hold " + vipB}, wantHeld: true},
		{name: "take of an empty name", op: "hold", want: []string{vipA}, wantOps: []string{"hold "}, wantHeld: true},
		{name: "refused address leaves the record", record: []string{vipB}, holdErr: failed, op: "hold", wantErr: "refused by the guard",
			want: []string{vipB}, wantOps: []string{"hold " + vipB}},
		{name: "holder releases: record first, then address", record: []string{vipA}, held: true, op: "release",
			want: nil, wantOps: []string{"release "}},
		{name: "replica of the same subnet leaves its primary's record", record: []string{vipA}, op: "release",
			want: []string{vipA}, wantOps: []string{"release " + vipA}},
		{name: "holder's release leaves another subnet's record", record: []string{vipB}, held: true, op: "release",
			want: []string{vipB}, wantOps: []string{"release " + vipB}},
		{name: "unknown address state: record kept, address released", record: []string{vipA}, held: true, statusErr: errors.New("helper failed"),
			op: "release", wantErr: "left as it is", want: []string{vipA}, wantOps: []string{"release " + vipA}},
		{name: "cut-off holder releases promptly: address, then record", record: []string{vipA}, held: true, op: "release promptly",
			want: nil, wantOps: []string{"release " + vipA}},
		{name: "cut-off replica of the same subnet leaves its primary's record", record: []string{vipA}, op: "release promptly",
			want: []string{vipA}, wantOps: []string{"release " + vipA}},
		{name: "cut-off holder's prompt release leaves another subnet's record", record: []string{vipB}, held: true, op: "release promptly",
			want: []string{vipB}, wantOps: []string{"release " + vipB}},
		{name: "prompt release, unknown address state: record kept", record: []string{vipA}, held: true, statusErr: errors.New("helper failed"),
			op: "release promptly", wantErr: "left as it is", want: []string{vipA}, wantOps: []string{"release " + vipA}},
		{name: "status: address and record", record: []string{vipA}, held: true, op: "status", want: []string{vipA}, wantHeld: true},
		{name: "status: address without record acts", record: []string{vipB}, held: true, op: "status", want: []string{vipB}, statusBad: true},
		{name: "status: record without address is the holder's", record: []string{vipA}, op: "status", want: []string{vipA}},
	}
	for _, tt := range tests {
		for _, here := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/here=%v", tt.name, here), func(t *testing.T) {
				z := newZoneServer(t, testZone, testKey, "tcp")
				z.set(testName, dns.TypeA, 1, tt.record...)
				rec, _ := backend(t, z, "tcp", me)
				rec.target = netip.MustParseAddr(vipA)
				a := &addrVIP{z: z, held: tt.held, holdErr: tt.holdErr, statusErr: tt.statusErr}
				var logbuf bytes.Buffer
				var hereF func() (bool, error)
				if here { // the address read from the interface, not asked of the backend
					hereF = func() (bool, error) { return a.held, a.statusErr }
				}
				n := NameVIP(a, rec, hereF, zerolog.New(&logbuf))
				ctx := context.Background()
				var err error
				switch tt.op {
				case "hold":
					err = n.Hold(ctx)
				case "release":
					err = n.Release(ctx)
				case "release promptly":
					err = n.(netvip.PromptReleaser).ReleasePromptly(ctx)
				}
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("%s: err %v, want %q", tt.op, err, tt.wantErr)
				}
				if got := z.get(testName, dns.TypeA); !slices.Equal(got, tt.want) {
					t.Fatalf("record %v, want %v", got, tt.want)
				}
				if !slices.Equal(a.ops, tt.wantOps) {
					t.Fatalf("address operations %q, want %q", a.ops, tt.wantOps)
				}
				a.statusErr = nil
				st, err := n.Status(ctx)
				if tt.statusBad != (err != nil) || err == nil && st.Held != tt.wantHeld {
					t.Fatalf("status %+v, %v; want held %v, error %v", st, err, tt.wantHeld, tt.statusBad)
				}
			})
		}
	}
}

// A guard that refuses stops the take before the address or the record
// moves; one that allows runs before the address is added.
func TestNamedVIPHoldIf(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		z := newZoneServer(t, testZone, testKey, "tcp")
		z.set(testName, dns.TypeA, 1, vipB)
		rec, _ := backend(t, z, "tcp", me)
		rec.target = netip.MustParseAddr(vipA)
		a := &addrVIP{z: z}
		n := NameVIP(a, rec, nil, zerolog.Nop()).(netvip.GatedHolder)
		err := n.HoldIf(context.Background(), func(context.Context) error {
			if refuse {
				return errors.New("another leader")
			}
			return nil
		})
		want := []string{vipA}
		if refuse {
			want = []string{vipB}
		}
		if refuse != (err != nil) || !slices.Equal(z.get(testName, dns.TypeA), want) || a.held == refuse {
			t.Errorf("refuse %v: err %v, record %v, address held %v", refuse, err, z.get(testName, dns.TypeA), a.held)
		}
	}
}

// The refusal after letting go is passed on only when the address backend
// has one (netlink itself, not the VIP helper).
func TestNameVIPRefuser(t *testing.T) {
	type refuser interface {
		Refuse(context.Context) (bool, error)
	}
	z := newZoneServer(t, testZone, testKey, "tcp")
	rec, _ := backend(t, z, "tcp", me)
	if _, ok := NameVIP(&addrVIP{z: z}, rec, nil, zerolog.Nop()).(refuser); ok {
		t.Error("a named helper claims a refusal")
	}
	r, ok := NameVIP(&refusingAddr{addrVIP{z: z}}, rec, nil, zerolog.Nop()).(refuser)
	if !ok {
		t.Fatal("a named netlink VIP lost its refusal")
	}
	if done, err := r.Refuse(context.Background()); !done || err != nil {
		t.Errorf("Refuse: %v %v", done, err)
	}
}

// The record names the target; the replica record this node's own address.
func TestTargetNamesTheVIP(t *testing.T) {
	z := newZoneServer(t, testZone, testKey, "tcp")
	b, err := New(Settings{Name: testName, Zone: testZone, Server: z.addr, KeyFile: "/unused", Address: netip.MustParseAddr(me),
		Target: netip.MustParseAddr(vipA), ReplicaName: "replicas.pglab.test.", Timeout: time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	k := z.key
	b.key = &k
	ctx := context.Background()
	if err := b.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Replicas().Join(ctx); err != nil {
		t.Fatal(err)
	}
	if got := z.get(testName, dns.TypeA); !slices.Equal(got, []string{vipA}) {
		t.Errorf("primary record %v, want the VIP", got)
	}
	if got := z.get("replicas.pglab.test.", dns.TypeA); !slices.Equal(got, []string{me}) {
		t.Errorf("replica record %v, want the node's own address", got)
	}
}

// A primary cut off from the network cannot reach the DNS server either:
// its release lets the address go after RecordWait, while the record's
// exchange still waits for an answer that never comes, not after the
// exchange's timeout.
func TestNamedVIPReleaseDoesNotWaitForAnUnansweredRecord(t *testing.T) {
	z, rec := silentRecord(t)
	released := make(chan time.Time, 1)
	a := &timedAddr{addrVIP: addrVIP{z: z, held: true}, released: released}
	n := &NamedVIP{VIP: a, Record: rec, RecordWait: 20 * time.Millisecond, Log: zerolog.Nop()}
	done := make(chan error, 1)
	go func() { done <- n.Release(context.Background()) }()
	select {
	case <-released:
	case err := <-done:
		t.Fatalf("release returned (%v) before the address was released", err)
	case <-time.After(1500 * time.Millisecond):
		t.Fatal("the address waited for the record's exchange")
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "removing this node's value") {
		t.Errorf("release: %v, want the record's error", err)
	}
	if a.held {
		t.Error("address still held")
	}
}

// A node that cannot read the DCS releases promptly: the address goes
// before the record's exchange begins, however long that exchange waits.
func TestNamedVIPReleasePromptlyDoesNotWaitForTheRecord(t *testing.T) {
	z, rec := silentRecord(t)
	released := make(chan time.Time, 1)
	a := &timedAddr{addrVIP: addrVIP{z: z, held: true}, released: released}
	n := &NamedVIP{VIP: a, Record: rec, RecordWait: time.Second, Log: zerolog.Nop()}
	start := time.Now()
	err := n.ReleasePromptly(context.Background())
	if err == nil || !strings.Contains(err.Error(), "removing this node's value") {
		t.Errorf("release: %v, want the record's error", err)
	}
	if a.held {
		t.Fatal("address still held")
	}
	if took := (<-released).Sub(start); took > 100*time.Millisecond {
		t.Errorf("the address went %s after the release began, want at once", took)
	}
}

// silentRecord returns a zone server whose record names vipA, and a record
// backend for that VIP whose server never answers (2 s timeout).
func silentRecord(t *testing.T) (*zoneServer, *Backend) {
	t.Helper()
	z := newZoneServer(t, testZone, testKey, "tcp")
	z.set(testName, dns.TypeA, 1, vipA)
	rec, _ := backend(t, z, "tcp", me)
	rec.target = netip.MustParseAddr(vipA)
	rec.server = silentServer(t)
	rec.timeout = 2 * time.Second
	return z, rec
}

// timedAddr is an addrVIP that tells when its release ran.
type timedAddr struct {
	addrVIP
	released chan time.Time
}

func (s *timedAddr) Release(ctx context.Context) error {
	err := s.addrVIP.Release(ctx)
	s.released <- time.Now()
	return err
}

// silentServer returns the address of a TCP server that accepts
// connections and holds them open, but never reads or answers: a DNS
// server cut off behind a live-looking connection.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// The address here, its record seen naming the VIP by this process (its
// own update, or a read: a restarted watcher), and a DNS server that stops
// answering: Status reports held with the record unknown after
// RecordWait, so a watcher cut off from the network neither waits out the
// exchange's timeout at each step nor re-takes an address it holds. A
// record not seen lately (or whose update failed) is an error, so that the
// update is retried; so is a record that names another VIP.
func TestNamedVIPStatusUnansweredRecord(t *testing.T) {
	silent := silentServer(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name    string
		seenBy  string        // "hold", "status": how the record was seen naming the VIP before the server went away
		seenAgo time.Duration // and how long ago
		server  string        // "" for the zone server
		record  string
		wantErr bool
		want    string // in Detail
	}{
		{name: "silent server", seenBy: "hold", server: silent, record: vipA, want: "its dns record unknown: dns record primary.pglab.test. on 127.0.0.1"},
		{name: "connection refused", seenBy: "hold", server: refusing, record: vipA, want: "dns record unknown"},
		{name: "silent server, record read by a restarted watcher", seenBy: "status", server: silent, record: vipA, want: "dns record unknown"},
		{name: "silent server, record never seen here", server: silent, record: vipA, wantErr: true},
		{name: "silent server, record seen too long ago", seenBy: "hold", seenAgo: TrustUnanswered + time.Second, server: silent, record: vipA, wantErr: true},
		{name: "answering server, another VIP", seenBy: "hold", record: vipB, wantErr: true},
		{name: "answering server, this VIP", record: vipA, want: "this node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := newZoneServer(t, testZone, testKey, "tcp")
			rec, _ := backend(t, z, "tcp", me)
			rec.target = netip.MustParseAddr(vipA)
			rec.timeout = 2 * time.Second
			n := &NamedVIP{VIP: &addrVIP{z: z}, Record: rec, RecordWait: 100 * time.Millisecond, Log: zerolog.Nop()}
			ctx := context.Background()
			switch tt.seenBy {
			case "hold":
				if err := n.Hold(ctx); err != nil {
					t.Fatal(err)
				}
			case "status":
				n.VIP.(*addrVIP).held = true
				z.set(testName, dns.TypeA, 1, vipA)
				if st, err := n.Status(ctx); err != nil || !st.Held {
					t.Fatalf("status before the cut: %+v, %v", st, err)
				}
			default:
				n.VIP.(*addrVIP).held = true
			}
			n.seen = n.seen.Add(-tt.seenAgo)
			z.set(testName, dns.TypeA, 1, tt.record)
			if tt.server != "" {
				rec.server = tt.server
			}
			start := time.Now()
			st, err := n.Status(ctx)
			if took := time.Since(start); took > time.Second {
				t.Errorf("status took %s, want about RecordWait", took)
			}
			if tt.wantErr {
				if err == nil {
					t.Fatalf("status %+v, want an error", st)
				}
				return
			}
			if err != nil || !st.Held || !strings.Contains(st.Detail, tt.want) {
				t.Fatalf("status %+v, %v; want held, detail with %q", st, err, tt.want)
			}
		})
	}
}
