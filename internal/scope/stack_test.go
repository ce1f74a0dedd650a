package scope

import (
	"strings"
	"testing"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/exitcode"
	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/netvip/dnsvip"
	"github.com/pghook/pghook/netvip/execvip"
	"github.com/rs/zerolog"
)

func TestChooseRoute(t *testing.T) {
	full := Caller{Admin: true, Raw: true}
	tests := []struct {
		name    string
		backend string
		c       Caller
		want    Route
	}{
		{"no backend", "", Caller{}, RouteNone},
		{"backend none", "none", full, RouteNone},
		{"netlink with both capabilities (root)", "netlink", full, RouteDirect},
		{"netlink, postgres without capabilities: the watcher, else the helper", "netlink", Caller{}, RouteWatcher},
		{"netlink with NET_ADMIN only", "netlink", Caller{Admin: true}, RouteWatcher},
		{"netlink with NET_RAW only", "netlink", Caller{Raw: true}, RouteWatcher},
		{"netlink, the watcher without capabilities: the helper (the socket is its own)", "netlink", Caller{Watcher: true}, RouteHelper},
		{"netlink, the watcher as root", "netlink", Caller{Admin: true, Raw: true, Watcher: true}, RouteDirect},
		{"netlink in the helper", "netlink", Caller{Privileged: true}, RouteDirect},
		{"pcs needs no capabilities", "pcs", Caller{}, RouteDirect},
		{"dns needs no capabilities", "dns", Caller{}, RouteDirect},
		{"exec needs no capabilities", "exec", Caller{Watcher: true}, RouteDirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChooseRoute(tt.backend, tt.c); got != tt.want {
				t.Errorf("ChooseRoute(%q, %+v) = %v, want %v", tt.backend, tt.c, got, tt.want)
			}
		})
	}
}

func TestChooseProbeRoute(t *testing.T) {
	tests := []struct {
		c    Caller
		want Route
	}{
		{Caller{}, RouteHelper},
		{Caller{Admin: true}, RouteHelper},
		{Caller{Raw: true}, RouteDirect},
		{Caller{Privileged: true}, RouteDirect},
	}
	for _, tt := range tests {
		if got := ChooseProbeRoute(tt.c); got != tt.want {
			t.Errorf("ChooseProbeRoute(%+v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}

func TestPrivilegeDecisions(t *testing.T) {
	tests := []struct {
		privileged bool
		wantCmd    string
		wantFixed  bool
		wantRefuse bool
	}{
		// An unprivileged announcer carries its request in its arguments.
		{false, "vip announce", false, false},
		// The helper's announcer takes the scope alone; without a DCS check
		// it refuses to take the VIP.
		{true, "announce --scope s", true, true},
	}
	for _, tt := range tests {
		cmd, fixed := AnnounceCommand("s", tt.privileged)
		if strings.Join(cmd, " ") != tt.wantCmd || fixed != tt.wantFixed {
			t.Errorf("AnnounceCommand(privileged %v) = %q, %v; want %q, %v", tt.privileged, cmd, fixed, tt.wantCmd, tt.wantFixed)
		}
		if got := RefuseWithoutDCS(Caller{Privileged: tt.privileged}); got != tt.wantRefuse {
			t.Errorf("RefuseWithoutDCS(privileged %v) = %v", tt.privileged, got)
		}
	}
	if got := strings.Join(HelperArgs("main"), " "); got != "--scope main" {
		t.Errorf("HelperArgs = %q: the helper takes the scope alone", got)
	}
}

// dns and exec run in this process whatever its capabilities, guarded like
// netlink; the VIP helper never builds them.
func TestVIPStackRoutesDNSAndExec(t *testing.T) {
	missing := "/nonexistent/patroni.yml"
	dnsVIP := config.VIP{Settings: netvip.Settings{Backend: "dns", Interface: "lo"},
		DNS: config.DNS{Name: "primary.pglab.test.", Zone: "pglab.test.", Server: "192.0.2.53", TSIGKeyFile: "/etc/pghook/tsig.key"}}
	execVIP := config.VIP{Settings: netvip.Settings{Backend: "exec"},
		Exec: config.Exec{Hold: []string{"/bin/true"}, Release: []string{"/bin/true"}, Check: []string{"/bin/false"}}}
	for _, tt := range []struct {
		name  string
		vip   config.VIP
		check func(any) bool
	}{
		{"dns", dnsVIP, func(b any) bool { _, ok := b.(*dnsvip.Backend); return ok }},
		{"exec", execVIP, func(b any) bool { _, ok := b.(*execvip.Backend); return ok }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.File{Scopes: map[string]*config.Scope{"s": {PatroniConfig: missing, VIP: tt.vip}}}
			r := &Resolver{Config: cfg, Log: zerolog.Nop()}
			s := r.Resolve("s", Overrides{})
			if s.Invalid != nil {
				t.Fatal(s.Invalid)
			}
			// Unguarded: the backend itself, in this process (no helper,
			// no watcher socket), even without capabilities.
			b, err := r.VIP(s, StackOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(b) {
				t.Fatalf("unguarded stack is %T", b)
			}
			// Guarded: the DCS guard wraps it (no patroni.yml here: the view
			// is nil, as for the netlink backend run by hand).
			g, err := r.VIP(s, StackOptions{Guard: true})
			if err != nil {
				t.Fatal(err)
			}
			gv, ok := g.(hooks.GuardedVIP)
			if !ok || !tt.check(gv.Backend) || gv.View != nil {
				t.Fatalf("guarded stack is %T %+v", g, g)
			}
			// The VIP helper never builds it.
			r.Privileged = true
			_, err = r.VIP(s, StackOptions{})
			if err == nil || !strings.Contains(err.Error(), "netlink only") {
				t.Fatalf("privileged: err %v", err)
			}
			if e, ok := err.(*exitcode.Error); !ok || e.Code != exitcode.Usage {
				t.Errorf("privileged: %#v, want a usage error", err)
			}
		})
	}
}

// The helper never takes the VIP without a DCS check; anyone else does,
// with a warning, when patroni.yml cannot be read.
func TestGuardWithoutPatroniConfig(t *testing.T) {
	cfg := &config.File{Path: "/etc/pghook/pghook.yaml", Scopes: map[string]*config.Scope{"s": {PatroniConfig: "/nonexistent/patroni.yml",
		VIP: config.VIP{Settings: netvip.Settings{Backend: "pcs", Resource: "vip"}}}}}
	for _, privileged := range []bool{false, true} {
		r := &Resolver{Config: cfg, Log: zerolog.Nop(), Privileged: privileged}
		s := r.Resolve("s", Overrides{})
		_, _, err := r.guardView(s, Caller{Privileged: privileged}, zerolog.Nop())
		if privileged && (err == nil || !strings.Contains(err.Error(), "takes the VIP only with a DCS check (set scopes.s.patroni_config in /etc/pghook/pghook.yaml)")) {
			t.Errorf("helper: err %v, want a refusal naming the key", err)
		}
		if !privileged && err != nil {
			t.Errorf("unprivileged: err %v, want the VIP taken without the check", err)
		}
	}
}

func TestNoneStack(t *testing.T) {
	r := &Resolver{Config: &config.File{Scopes: map[string]*config.Scope{}}, Log: zerolog.Nop()}
	b, err := r.VIP(r.Resolve("s", Overrides{}), StackOptions{Guard: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(netvip.None); !ok {
		t.Errorf("stack without a backend is %T, want netvip.None", b)
	}
}

// A netlink VIP with dns settings is named where the address is held: the
// record (this process) over the address backend, the record naming the
// VIP of this node's subnet — as root and in the VIP helper and its
// watcher alike. A node in none of the subnets gets one error naming the
// key.
func TestNamerWrapsNamedNetlink(t *testing.T) {
	dns := config.DNS{Name: "primary.pglab.test.", Zone: "pglab.test.", Server: "192.0.2.53", TSIGKeyFile: "/etc/pghook/tsig.key"}
	for _, tt := range []struct {
		name       string
		vip        config.VIP
		privileged bool
		wantNamed  bool
		wantErr    string
	}{
		{"per subnet named", config.VIP{Settings: netvip.Settings{Backend: "netlink", Interface: "lo", Addresses: []string{"192.0.2.100/24", "127.0.0.100/8"}}, DNS: dns}, false, true, ""},
		{"one address named", config.VIP{Settings: netvip.Settings{Backend: "netlink", Interface: "lo", Address: "192.0.2.100/24"}, DNS: dns}, false, true, ""},
		{"the helper names", config.VIP{Settings: netvip.Settings{Backend: "netlink", Interface: "lo", Addresses: []string{"127.0.0.100/8"}}, DNS: dns}, true, true, ""},
		{"netlink without dns", config.VIP{Settings: netvip.Settings{Backend: "netlink", Interface: "lo", Address: "192.0.2.100/24"}}, false, false, ""},
		{"no subnet of this node", config.VIP{Settings: netvip.Settings{Backend: "netlink", Interface: "lo", Addresses: []string{"192.0.2.100/24"}}, DNS: dns}, false, false, "none of the vip addresses"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.File{Scopes: map[string]*config.Scope{"s": {PatroniConfig: "/nonexistent/patroni.yml", VIP: tt.vip}}}
			r := &Resolver{Config: cfg, Log: zerolog.Nop(), Privileged: tt.privileged}
			s := r.Resolve("s", Overrides{})
			if s.Invalid != nil {
				t.Fatal(s.Invalid)
			}
			name, err := r.namer(s, zerolog.Nop())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				_, err := r.VIP(s, StackOptions{})
				if err == nil || !strings.Contains(err.Error(), "key scopes.s.vip.dns") || strings.Contains(err.Error(), "\n") {
					t.Fatalf("stack err %v: want one line naming the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b := name(netvip.None{})
			n, named := b.(*dnsvip.NamedVIP)
			if named != tt.wantNamed {
				t.Fatalf("stack %T, want named %v", b, tt.wantNamed)
			}
			if named && (n.VIP != netvip.None{} || !strings.Contains(b.Name(), "named by dns primary.pglab.test.")) {
				t.Fatalf("named stack %q over %T", b.Name(), n.VIP)
			}
		})
	}
}
