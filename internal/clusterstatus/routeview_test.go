package clusterstatus

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestDNSView(t *testing.T) {
	ms := []Member{{Name: "n1", Host: "10.0.0.1", Local: true}, {Name: "n2", Host: "10.0.0.2"}}
	tests := []struct {
		name     string
		addrs    []string
		self     string
		want     []Holder
		heldHere bool
	}{
		{"the new primary", []string{"10.0.0.2"}, "10.0.0.1", []Holder{{Member: "n2", IP: "10.0.0.2"}}, false},
		{"this host", []string{"10.0.0.1"}, "10.0.0.1", []Holder{{Member: "n1", IP: "10.0.0.1", Local: true}}, true},
		{"a stranger", []string{"10.0.0.9"}, "10.0.0.1", []Holder{{IP: "10.0.0.9"}}, false},
		{"nobody", nil, "10.0.0.1", []Holder{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DNSView{Name: "p.z.", Self: netip.MustParseAddr(tt.self), Resolve: func(context.Context) ([]netip.Addr, error) {
				var out []netip.Addr
				for _, a := range tt.addrs {
					out = append(out, netip.MustParseAddr(a))
				}
				return out, nil
			}}
			v, err := d.Look(context.Background(), ms)
			if err != nil {
				t.Fatal(err)
			}
			if v.Backend != "dns" || v.Address != "p.z." || v.HeldLocally != tt.heldHere || len(v.Holders) != len(tt.want) {
				t.Fatalf("%+v", v)
			}
			for i := range tt.want {
				if v.Holders[i] != tt.want[i] {
					t.Fatalf("holder %d: %+v, want %+v", i, v.Holders[i], tt.want[i])
				}
			}
		})
	}
	if _, err := (DNSView{Resolve: func(context.Context) ([]netip.Addr, error) { return nil, errors.New("down") }}).Look(context.Background(), ms); err == nil {
		t.Fatal("a failed lookup is not an error")
	}
}

func TestExecView(t *testing.T) {
	for _, held := range []bool{true, false} {
		v, err := ExecView{Address: "203.0.113.10", Held: func(context.Context) (bool, error) { return held, nil }}.Look(context.Background(), nil)
		if err != nil || v.HeldLocally != held || (len(v.Holders) == 1) != held {
			t.Fatalf("held %v: %+v %v", held, v, err)
		}
	}
}
