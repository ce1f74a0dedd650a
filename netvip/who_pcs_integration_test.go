//go:build integration

package netvip

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestPcsLocateIntegration: what `pghook status` reads for the pcs
// backend — where the VIP resource runs and this node's name — from a real
// two-node Pacemaker cluster, asked on each node.
func TestPcsLocateIntegration(t *testing.T) {
	requirePacemaker(t)
	nodes := startPcsCluster(t)
	nodes[0].ctl(t, "pcs", "resource", "create", "vip", "ocf:heartbeat:IPaddr2", "ip="+pcsVIP, "cidr_netmask=24", "nic=eth0",
		"op", "monitor", "interval=10s", "--wait=30")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	backends := make([]*Pcs, len(nodes))
	for i, n := range nodes {
		b, err := NewPcs(Settings{Backend: "pcs", Resource: "vip"}, zerolog.New(zerolog.NewTestWriter(t)), WithPcsRunner(n.runner()))
		if err != nil {
			t.Fatal(err)
		}
		backends[i] = b
	}
	locateAll := func(want []string) {
		t.Helper()
		for i, n := range nodes {
			on, self, err := backends[i].Locate(ctx)
			if err != nil {
				t.Fatalf("Locate on %s: %v", n.name, err)
			}
			if self != n.name || !slices.Equal(on, want) {
				t.Fatalf("Locate on %s = %v, self %q; want %v, self %q", n.name, on, self, want, n.name)
			}
		}
	}
	for _, n := range []int{1, 0} {
		if err := backends[n].Hold(ctx); err != nil {
			t.Fatalf("Hold on %s: %v", nodes[n].name, err)
		}
		locateAll([]string{nodes[n].name})
	}
	nodes[0].ctl(t, "pcs", "resource", "disable", "vip", "--wait=30")
	locateAll(nil)

	missing, _ := NewPcs(Settings{Backend: "pcs", Resource: "novip"}, zerolog.Nop(), WithPcsRunner(nodes[0].runner()))
	if _, _, err := missing.Locate(ctx); err == nil {
		t.Fatal("Locate of a resource that does not exist succeeded")
	}
}
