// Package archtest holds tests of the package boundaries: the folders say
// who decides and who acts, and these tests keep it true.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

func deps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "github.com/pghook/pghook/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	m := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		m[l] = true
	}
	return m
}

// TestDirectImports: deciding packages reach the OS only through the
// acting packages' interfaces.
func TestDirectImports(t *testing.T) {
	for _, pkg := range []string{"hooks", "pgtab"} {
		out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", "github.com/pghook/pghook/"+pkg).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range strings.Fields(string(out)) {
			if imp == "github.com/vishvananda/netlink" || imp == "golang.org/x/sys/unix" && pkg == "hooks" {
				t.Errorf("%s imports %s directly", pkg, imp)
			}
		}
	}
}

// TestCLIReachesVIPThroughScope: the command line (cmd/pghook and its
// definition, internal/app) imports no VIP backend, no watcher client and
// no netlink: the VIP stack, and the privilege decisions in it, are built
// in one place (internal/scope) and reached through it.
func TestCLIReachesVIPThroughScope(t *testing.T) {
	for _, pkg := range []string{"cmd/pghook", "cmd/pghook-gendocs", "internal/app"} {
		out, err := exec.Command("go", "list", "-tags", "urfave_cli_no_docs", "-f", "{{join .Imports \" \"}}", "github.com/pghook/pghook/"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, imp := range strings.Fields(string(out)) {
			if isVIPBackend(imp) {
				t.Errorf("%s imports %s: reach the VIP through internal/scope", pkg, imp)
			}
		}
	}
}

// isVIPBackend reports whether import path imp is a VIP backend or what
// drives one.
func isVIPBackend(imp string) bool {
	const mod = "github.com/pghook/pghook/"
	switch {
	case imp == mod+"netvip" || strings.HasPrefix(imp, mod+"netvip/"):
		return true
	case imp == mod+"internal/vipctl":
		return true
	case imp == "github.com/vishvananda/netlink" || strings.HasPrefix(imp, "github.com/vishvananda/netlink/"):
		return true
	}
	return false
}

func TestIsVIPBackend(t *testing.T) {
	tests := []struct {
		imp  string
		want bool
	}{
		{"github.com/pghook/pghook/netvip", true},
		{"github.com/pghook/pghook/netvip/dnsvip", true},
		{"github.com/pghook/pghook/netvip/execvip", true},
		{"github.com/pghook/pghook/internal/vipctl", true},
		{"github.com/vishvananda/netlink", true},
		{"github.com/vishvananda/netlink/nl", true},
		{"github.com/pghook/pghook/internal/scope", false},
		{"github.com/pghook/pghook/netvipx", false},
		{"github.com/pghook/pghook/hooks", false},
	}
	for _, tt := range tests {
		if got := isVIPBackend(tt.imp); got != tt.want {
			t.Errorf("isVIPBackend(%q) = %v, want %v", tt.imp, got, tt.want)
		}
	}
}

func TestPackageBoundaries(t *testing.T) {
	tests := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{"pgtab", []string{"github.com/vishvananda/netlink", "github.com/urfave/cli/v2", "github.com/jackc/pgx/v5"}, "the roster is plain files"},
		{"hooks", []string{"github.com/urfave/cli/v2"}, "hooks decides; the CLI wires"},
		{"netvip", []string{"github.com/urfave/cli/v2", "github.com/jackc/pgx/v5"}, "the VIP backends know no CLI or SQL"},
		// The etcd v3 client (and the gRPC under it) is internal/dcs's: the
		// view of Patroni's files, keys and REST API stays plain Go.
		{"internal/patroni", []string{"github.com/urfave/cli/v2", "github.com/vishvananda/netlink",
			"go.etcd.io/etcd/client/v3", "google.golang.org/grpc"}, "a read-only view of Patroni; the etcd v3 client is internal/dcs's"},
		// Start-up cost of every callback: klauspost/compress's zstd costs
		// 0.2–0.3 ms of init per callback (docs/BENCHMARKS.md §3), so the
		// binary must not link it. (pierrec/lz4 is linked: ~0.03 ms of init,
		// and it halves an lz4 restore — replica/lz4.go. The etcd client is
		// linked for internal/dcs; its init cost is measured in
		// docs/ARCHITECTURE.md.)
		{"cmd/pghook", []string{"github.com/russross/blackfriday/v2",
			"github.com/klauspost/compress/zstd",
			// Metrics libraries register collectors or read /proc at init
			// (VictoriaMetrics/metrics also logs a line on every start);
			// pghook writes the exposition format itself (internal/metrics).
			"github.com/prometheus/client_golang/prometheus", "github.com/VictoriaMetrics/metrics",
			"github.com/prometheus/common/expfmt"}, "callback start-up time"},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			var d map[string]bool
			if tt.pkg == "cmd/pghook" {
				out, err := exec.Command("go", "list", "-tags", "urfave_cli_no_docs", "-deps", "github.com/pghook/pghook/cmd/pghook").Output()
				if err != nil {
					t.Fatal(err)
				}
				d = map[string]bool{}
				for _, l := range strings.Fields(string(out)) {
					d[l] = true
				}
			} else {
				d = deps(t, tt.pkg)
			}
			for _, f := range tt.forbidden {
				if d[f] {
					t.Errorf("%s imports %s (%s)", tt.pkg, f, tt.why)
				}
			}
		})
	}
}
