package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseHelperArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    helperArgs
		wantErr string
	}{
		{name: "up", args: []string{"up", "--scope", "s"}, want: helperArgs{op: "up", scope: "s", timeout: whoHasWindow}},
		{name: "vip prefix and = form", args: []string{"vip", "down", "--scope=s"}, want: helperArgs{op: "down", scope: "s", timeout: whoHasWindow}},
		{name: "status --json", args: []string{"status", "--json", "--scope", "s"}, want: helperArgs{op: "status", scope: "s", timeout: whoHasWindow}},
		{name: "who-has --timeout", args: []string{"who-has", "--json", "--timeout", "300ms", "--scope", "s"}, want: helperArgs{op: "who-has", scope: "s", timeout: 300 * time.Millisecond}},
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
			got, err := parseHelperArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseHelperArgs(%q) = %+v, %v; want error %q", tt.args, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseHelperArgs(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
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
	saved := helperConfig
	t.Cleanup(func() { helperConfig = saved })
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
			helperConfig = tt.config
			var out, errOut bytes.Buffer
			code := runHelper(tt.argv, &out, &errOut)
			if code != exitUsage || !strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("runHelper(%q) = %d, stderr %q; want exit 2 naming %q", tt.argv, code, errOut.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}
