package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/netvip/dnsvip"
	"github.com/pghook/pghook/netvip/execvip"
	"github.com/rs/zerolog"
)

func TestVIPStackRoutesDNSAndExec(t *testing.T) {
	dnsScope := &config.Scope{PatroniConfig: "/nonexistent/patroni.yml", VIP: config.VIP{Backend: "dns", Interface: "lo",
		DNS: config.DNS{Name: "primary.pglab.test.", Zone: "pglab.test.", Server: "192.0.2.53", TSIGKeyFile: "/etc/pghook/tsig.key"}}}
	execScope := &config.Scope{PatroniConfig: "/nonexistent/patroni.yml", VIP: config.VIP{Backend: "exec",
		Exec: config.Exec{Hold: []string{"/bin/true"}, Release: []string{"/bin/true"}, Check: []string{"/bin/false"}}}}
	for _, tt := range []struct {
		name  string
		scope *config.Scope
		check func(any) bool
	}{
		{"dns", dnsScope, func(b any) bool { _, ok := b.(*dnsvip.Backend); return ok }},
		{"exec", execScope, func(b any) bool { _, ok := b.(*execvip.Backend); return ok }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{log: zerolog.Nop(), cfg: &config.File{Scopes: map[string]*config.Scope{"s": tt.scope}}}
			// Unguarded: the backend itself, in this process (no helper,
			// no watcher socket), even without capabilities.
			b, err := a.vipStack("s", tt.scope, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(b) {
				t.Fatalf("unguarded stack is %T", b)
			}
			// Guarded: the DCS guard wraps it (no patroni.yml here: the view
			// is nil, as for the netlink backend run by hand).
			g, err := a.vipStack("s", tt.scope, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			gv, ok := g.(hooks.GuardedVIP)
			if !ok || !tt.check(gv.Backend) {
				t.Fatalf("guarded stack is %T", g)
			}
			// The VIP helper never builds it.
			a.privileged = true
			if _, err := a.vipStack("s", tt.scope, false, nil); err == nil || !strings.Contains(err.Error(), "netlink only") {
				t.Fatalf("privileged: err %v", err)
			}
		})
	}
}

// The VIP helper serves netlink only: a trusted config that names dns or
// exec is refused before anything runs (the exec commands would otherwise
// run with the helper's capabilities).
func TestRunHelperRefusesDNSAndExec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the helper trusts only a root-owned config")
	}
	dir, err := os.MkdirTemp("/var/lib", "pghook-test-")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	marker := filepath.Join(dir, "ran")
	saved := helperConfig
	t.Cleanup(func() { helperConfig = saved })
	for _, vip := range []string{
		"{backend: dns, interface: lo, dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: /k}}",
		"{backend: exec, exec: {hold: [/bin/touch, " + marker + "], release: [/bin/touch, " + marker + "], check: [/bin/touch, " + marker + "]}}",
	} {
		helperConfig = filepath.Join(dir, "pghook.yaml")
		if err := os.WriteFile(helperConfig, []byte("scopes:\n  s:\n    vip: "+vip+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"up", "down", "status", "watch"} {
			var out, errOut bytes.Buffer
			code := runHelper([]string{"pghook-vip", op, "--scope", "s"}, &out, &errOut)
			if code != exitUsage || !strings.Contains(errOut.String(), "netlink backend only") {
				t.Fatalf("%s with %s: exit %d, stderr %q", op, vip, code, errOut.String())
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("%s: the helper ran an exec command", op)
			}
		}
	}
}
