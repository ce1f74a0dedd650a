package install

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixedSecrets pre-writes the scope's passwords so renders are stable.
func fixedSecrets(t *testing.T, root, dir, scope string, kinds ...string) {
	t.Helper()
	d := filepath.Join(root, dir, scope)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		if err := os.WriteFile(filepath.Join(d, k), []byte("pw-"+k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGolden compares every file install renders with testdata/<case>/…
// (go test -run TestGolden -update rewrites them).
func TestGolden(t *testing.T) {
	no := false
	cases := []struct {
		name string
		mod  func(*Options)
		// files to compare: path under root → golden name
		files map[string]string
	}{
		{"debian-vip", func(o *Options) {
			o.VIP, o.VIPLabel, o.BackupDir = VIPList{"10.0.0.100/24"}, "eth0:vip", "/mnt/shared/backup"
		}, map[string]string{"/etc/patroni/main.yml": "patroni.yml", PghookYAML: "pghook.yaml",
			"/etc/systemd/system/patroni@main.service": "patroni@main.service", "/etc/sysctl.d/60-pghook-eth0.conf": "sysctl.conf"}},
		{"seed-etcd2", func(o *Options) {
			o.Layout, o.DCS, o.Port, o.RestPort = "seed", "etcd", 5433, 8009
		}, map[string]string{"/etc/patroni/main.yml": "patroni.yml", PghookYAML: "pghook.yaml"}},
		// One node of several sharing a file system (the lab's way): every
		// path relocated, Patroni's timings, PostgreSQL settings split
		// between the DCS and the node, no watchdog, always restore.
		{"relocated", func(o *Options) {
			d := "/var/tmp/lab/n1"
			o.Layout, o.DCS, o.Name = "seed", "etcd3", "n1"
			o.PatroniConfig, o.PghookConfig, o.DataDir = d+"/patroni.yml", d+"/pghook.yaml", d+"/data"
			o.SecretsDir, o.StateFile, o.SystemdDir, o.SysctlDir = "/var/tmp/lab/secrets", d+"/install-state.json", d+"/systemd", d+"/sysctl.d"
			o.Pgpass, o.SocketDir, o.PghookBin, o.VIPHelper = d+"/pgpass", d+"/run", "/var/tmp/lab/bin/pghook", "/var/tmp/lab/bin/pghook-vip"
			o.TTL, o.LoopWait, o.RetryTimeout, o.Watchdog, o.KeepData = 10, 2, 4, "off", &no
			o.PGParameters = []string{"max_connections=50", "shared_buffers=32MB", "log_line_prefix=%m [%p] %q%u@%d ", "logging_collector=on"}
			o.VIP, o.VIPLabel, o.BackupDir = VIPList{"10.0.0.100/24"}, "vip", "/var/tmp/lab/backups"
		}, map[string]string{"/var/tmp/lab/n1/patroni.yml": "patroni.yml", "/var/tmp/lab/n1/pghook.yaml": "pghook.yaml",
			"/var/tmp/lab/n1/systemd/patroni@main.service": "patroni@main.service"}},
		{"vip-off-callback", func(o *Options) {
			o.VIPBackend, o.Callback = "none", "/usr/local/bin/vip.sh"
		}, map[string]string{"/etc/patroni/main.yml": "patroni.yml", PghookYAML: "pghook.yaml"}},
		{"etcd-user", func(o *Options) {
			o.EtcdUser, o.EtcdEndpoints = "patroni", []string{"127.0.0.1:1"}
		}, map[string]string{"/etc/patroni/main.yml": "patroni.yml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts(t)
			tc.mod(&o)
			sd := SecretsDir
			if o.SecretsDir != "" {
				sd = o.SecretsDir
			}
			fixedSecrets(t, o.Root, sd, o.Scope, "superuser", "replication", "rewind", "restapi", "etcd")
			run(t, o)
			for p, g := range tc.files {
				got := read(t, filepath.Join(o.Root, p))
				gp := filepath.Join("testdata", tc.name, g)
				if *update {
					os.MkdirAll(filepath.Dir(gp), 0o755)
					if err := os.WriteFile(gp, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(gp)
				if err != nil {
					t.Fatalf("%v (go test -run TestGolden -update writes it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s:\n%s", p, gp, unifiedDiff(gp, string(want), string(got)))
				}
				if strings.Contains(string(got), o.Root) {
					t.Errorf("%s names the --root directory", p)
				}
			}
		})
	}
}
