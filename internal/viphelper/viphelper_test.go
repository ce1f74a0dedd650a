package viphelper

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/clusterstatus"
	"github.com/pghook/pghook/internal/exitcode"
)

func TestParseHelperArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Args
		wantErr string
	}{
		{name: "up", args: []string{"up", "--scope", "s"}, want: Args{Op: "up", Scope: "s", Timeout: clusterstatus.WhoHasWindow}},
		{name: "vip prefix and = form", args: []string{"vip", "down", "--scope=s"}, want: Args{Op: "down", Scope: "s", Timeout: clusterstatus.WhoHasWindow}},
		{name: "status --json", args: []string{"status", "--json", "--scope", "s"}, want: Args{Op: "status", Scope: "s", Timeout: clusterstatus.WhoHasWindow}},
		{name: "who-has --timeout", args: []string{"who-has", "--json", "--timeout", "300ms", "--scope", "s"}, want: Args{Op: "who-has", Scope: "s", Timeout: 300 * time.Millisecond}},
		{name: "no command", args: nil, wantErr: "no command"},
		{name: "not a VIP command", args: []string{"callback", "on_start", "master", "s"}, wantErr: `"callback" is not a VIP helper command`},
		{name: "install", args: []string{"install", "--scope", "s"}, wantErr: "not a VIP helper command"},
		{name: "no scope", args: []string{"up"}, wantErr: "--scope is required"},
		{name: "scope without value", args: []string{"up", "--scope"}, wantErr: "--scope needs a value"},
		{name: "config flag", args: []string{"up", "--scope", "s", "--config", "/proc/self/cmdline"}, wantErr: `"--config" is refused`},
		{name: "config = form", args: []string{"up", "--config=/tmp/x", "--scope", "s"}, wantErr: `"--config=/tmp/x" is refused`},
		{name: "address flag", args: []string{"up", "--scope", "s", "--vip-address", "10.0.0.1/24"}, wantErr: `"--vip-address" is refused`},
		{name: "patroni config", args: []string{"up", "--scope", "s", "--patroni-config", "/nonexistent"}, wantErr: "refused"},
		{name: "log level", args: []string{"up", "--scope", "s", "--log-level", "trace"}, wantErr: "refused"},
		{name: "json on up", args: []string{"up", "--scope", "s", "--json"}, wantErr: "refused"},
		{name: "timeout on up", args: []string{"up", "--scope", "s", "--timeout", "1s"}, wantErr: "refused"},
		{name: "unbounded timeout", args: []string{"who-has", "--scope", "s", "--timeout", "1h"}, wantErr: "want 1ms..10s"},
		{name: "announce flags", args: []string{"announce", "--scope", "s", "--rounds", "2000"}, wantErr: `"--rounds" is refused`},
		{name: "positional", args: []string{"up", "--scope", "s", "extra"}, wantErr: `"extra" is refused`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseArgs(%q) = %+v, %v; want error %q", tt.args, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseArgs(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
			}
		})
	}
}

// The helper reads no environment: PGHOOK_ variables that the full CLI
// honours change nothing, and an untrusted config file is refused before
// anything is done.
func TestRunHelperRefuses(t *testing.T) {
	dir := t.TempDir() // below a world-writable directory: never trusted
	conf := filepath.Join(dir, "pghook.yaml")
	if err := os.WriteFile(conf, []byte("scopes:\n  s:\n    vip: {backend: netlink, address: 192.0.2.10/24, interface: lo}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGHOOK_CONFIG", conf)
	t.Setenv("PGHOOK_VIP_ADDRESS", "192.0.2.99/24")
	tests := []struct {
		name   string
		config string
		argv   []string
		want   string
	}{
		{name: "untrusted config", config: conf, argv: []string{"pghook-vip", "up", "--scope", "s"}, want: "refusing pghook config"},
		{name: "procfs config", config: "/proc/self/cmdline", argv: []string{"pghook-vip", "up", "--scope", "s"}, want: "procfs"},
		{name: "missing config", config: "/etc/pghook-test-missing/pghook.yaml", argv: []string{"pghook", "up", "--scope", "s"}, want: "no such file"},
		{name: "flags refused before the config is read", config: conf, argv: []string{"pghook", "up", "--scope", "s", "--config", conf}, want: `"--config" is refused`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(tt.config, tt.argv, &out, &errOut)
			if code != exitcode.Usage || !strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("runHelper(%q) = %d, stderr %q; want exit 2 naming %q", tt.argv, code, errOut.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
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
	for _, vip := range []string{
		"{backend: dns, interface: lo, dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: /k}}",
		"{backend: exec, exec: {hold: [/bin/touch, " + marker + "], release: [/bin/touch, " + marker + "], check: [/bin/touch, " + marker + "]}}",
	} {
		conf := filepath.Join(dir, "pghook.yaml")
		if err := os.WriteFile(conf, []byte("scopes:\n  s:\n    vip: "+vip+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"up", "down", "status", "watch"} {
			var out, errOut bytes.Buffer
			code := Run(conf, []string{"pghook-vip", op, "--scope", "s"}, &out, &errOut)
			if code != exitcode.Usage || !strings.Contains(errOut.String(), "netlink backend only") {
				t.Fatalf("%s with %s: exit %d, stderr %q", op, vip, code, errOut.String())
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("%s: the helper ran an exec command", op)
			}
		}
	}
}
