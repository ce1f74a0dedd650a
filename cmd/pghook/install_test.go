package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The install flags reach the rendered files: --from for the cluster,
// flags winning over it, paths relocated, a comma inside a parameter.
func TestInstallFlags(t *testing.T) {
	root := t.TempDir()
	from := filepath.Join(t.TempDir(), "install.yaml")
	os.WriteFile(from, []byte("scope: main\netcd-endpoints: [127.0.0.1:1]\nttl: 10\nloop-wait: 2\nretry-timeout: 4\nkeep-data: false\nwatchdog: required\n"), 0o644)
	r := runBin(t, bin, nil, "install", "--root", root, "--from", from, "--name", "pg1", "--interface", "eth0",
		"--address", "10.0.0.11", "--network", "10.0.0.0/24", "--pg-version", "15", "--watchdog", "off",
		"--pg-parameter", "shared_preload_libraries=pg_stat_statements,auto_explain", "--pg-parameter", "max_connections=50",
		"--pghook-config", "/srv/n1/pghook.yaml", "--secrets-dir", "/srv/secrets", "--state-file", "/srv/n1/state.json",
		"--systemd-dir", "/srv/n1/systemd", "--socket-dir", "/srv/n1/run", "--pgpass", "/srv/n1/pgpass")
	if r.code != 0 {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(root, "/etc/patroni/main.yml"))
	if err != nil {
		t.Fatal(err)
	}
	y := string(b)
	for _, want := range []string{"ttl: 10", "loop_wait: 2", "retry_timeout: 4", "keep_data: false", "mode: \"off\"",
		"shared_preload_libraries: pg_stat_statements,auto_explain", "max_connections: 50", "unix_socket_directories: /srv/n1/run",
		"pgpass: /srv/n1/pgpass", "on_start: /usr/bin/pghook callback --config /srv/n1/pghook.yaml",
		"post_init: /usr/bin/pghook --config /srv/n1/pghook.yaml post-init"} {
		if !strings.Contains(y, want) {
			t.Errorf("patroni.yml lacks %q:\n%s", want, y)
		}
	}
	for _, p := range []string{"/srv/n1/pghook.yaml", "/srv/secrets/main/superuser", "/srv/n1/state.json", "/srv/n1/systemd/patroni@main.service"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s not written: %v", p, err)
		}
	}
	// A usage error names the flag and exits 2.
	if r := runBin(t, bin, nil, "install", "--root", root, "--from", from, "--ttl", "5"); r.code != 2 || !strings.Contains(r.stderr, "--ttl") {
		t.Errorf("--ttl 5 with loop_wait 2 and retry_timeout 4: exit %d: %s", r.code, r.stderr)
	}
}
