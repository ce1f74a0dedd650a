package dnsvip

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

const testReplicas = "replicas.pglab.test."

func replicaBackend(t *testing.T, z *zoneServer, addr string) (*ReplicaRecord, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	b, err := New(Settings{Name: testName, Zone: testZone, Server: z.addr, KeyFile: "/unused", ReplicaName: "Replicas.PGLab.test",
		Address: netip.MustParseAddr(addr), Timeout: time.Second}, zerolog.New(&buf))
	if err != nil {
		t.Fatal(err)
	}
	k := z.key
	b.key = &k
	r := b.Replicas()
	if r == nil || r.Name() != testReplicas {
		t.Fatalf("Replicas() = %v", r)
	}
	return r, &buf
}

// Each replica adds and removes only its own value: a leave never takes a
// neighbour out, and a join twice leaves one value.
func TestReplicaRecordJoinLeave(t *testing.T) {
	z := newZoneServer(t, testZone, testKey, "tcp")
	z.set(testName, dns.TypeA, 1, me)
	a, _ := replicaBackend(t, z, "198.51.100.21")
	b, _ := replicaBackend(t, z, "198.51.100.22")
	ctx := context.Background()
	steps := []struct {
		op   func(context.Context) error
		want []string
	}{
		{a.Join, []string{"198.51.100.21"}},
		{a.Join, []string{"198.51.100.21"}},
		{b.Join, []string{"198.51.100.21", "198.51.100.22"}},
		{a.Leave, []string{"198.51.100.22"}},
		{a.Leave, []string{"198.51.100.22"}},
		{b.Leave, nil},
	}
	for i, s := range steps {
		if err := s.op(ctx); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := z.get(testReplicas, dns.TypeA); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: replica record %v, want %v", i, got, s.want)
		}
		if got := z.get(testName, dns.TypeA); !slices.Equal(got, []string{me}) {
			t.Fatalf("step %d: the primary's record changed to %v", i, got)
		}
	}
	if err := b.Join(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		r    *ReplicaRecord
		want bool
	}{{a, false}, {b, true}} {
		in, all, err := tt.r.Member(ctx)
		if err != nil || in != tt.want || len(all) != 1 {
			t.Fatalf("Member: %v %v %v, want %v", in, all, err, tt.want)
		}
	}
}

func TestReplicaNameChecks(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"replicas.other.test", "not a name below zone"},
		{"primary.pglab.test.", "is the primary's name"},
		{"bad name.pglab.test", "not a name below zone"},
	} {
		_, err := New(Settings{Name: testName, Zone: testZone, Server: "192.0.2.53", KeyFile: "/k", ReplicaName: tt.name,
			Address: netip.MustParseAddr(me)}, zerolog.Nop())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("replica name %q: err %v, want %q", tt.name, err, tt.want)
		}
	}
	b, err := New(Settings{Name: testName, Zone: testZone, Server: "192.0.2.53", KeyFile: "/k", Address: netip.MustParseAddr(me)}, zerolog.Nop())
	if err != nil || b.Replicas() != nil {
		t.Fatalf("no replica_name: %v %v", b.Replicas(), err)
	}
}

func TestReplicaRecordRefusalIsAnError(t *testing.T) {
	z := newZoneServer(t, testZone, testKey, "tcp")
	z.rcode = dns.RcodeRefused
	r, _ := replicaBackend(t, z, "198.51.100.21")
	if err := r.Join(context.Background()); err == nil || !strings.Contains(err.Error(), "REFUSED") {
		t.Fatalf("join refused by the server: err %v", err)
	}
}
