package install

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/patroni"
)

func baseOpts(t *testing.T) Options {
	t.Helper()
	return Options{
		Scope: "main", Name: "pg1", Interface: "eth0", Address: "10.0.0.11", Network: "10.0.0.0/24",
		Members: []string{"10.0.0.12", "192.168.5.13"}, EtcdEndpoints: []string{"127.0.0.1:1", "http://10.0.0.12:2379"},
		PGVersion: "15", Root: t.TempDir(), NoValidate: true,
	}
}

func run(t *testing.T, o Options) (*Result, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := Run(o, &out)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out.String())
	}
	return res, out.String()
}

// snapshot maps every path under root to its content/target and mode.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Lstat(p)
		v := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			v += " -> " + tg
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			v += "\n" + string(b)
		}
		m[strings.TrimPrefix(p, root)] = v
		return nil
	})
	return m
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// installedConfig parses the pghook.yml install wrote below root.
func installedConfig(t *testing.T, root string) *config.File {
	t.Helper()
	cfg, err := config.Parse(bytes.NewReader(read(t, filepath.Join(root, PghookYAML))))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkUnitsWithoutHelper checks the units install sets up for a VIP
// backend that pghook's own watcher drives, without the privileged helper
// (dns, exec): the watch unit enabled, its drop-in pghook-<backend>.conf
// running pghook vip watch, the Patroni unit's ExecStopPost running pghook
// vip down, and no arp_announce drop-in.
func checkUnitsWithoutHelper(t *testing.T, root, backend string) {
	t.Helper()
	wants := filepath.Join(root, SystemdEtc, "multi-user.target.wants")
	if tg, _ := os.Readlink(filepath.Join(wants, "pghook-vip-watch@main.service")); tg != VIPWatchUnit {
		t.Errorf("vip watch not enabled: %q", tg)
	}
	drop := string(read(t, filepath.Join(root, SystemdEtc, "pghook-vip-watch@main.service.d", "pghook-"+backend+".conf")))
	if !strings.Contains(drop, "ExecStart=\nExecStart=/usr/bin/pghook vip watch --scope %i\n") {
		t.Errorf("watch drop-in: %q", drop)
	}
	unit := string(read(t, filepath.Join(root, SystemdEtc, "patroni@main.service")))
	if !strings.Contains(unit, "ExecStopPost=-/usr/bin/pghook vip down --scope main") {
		t.Errorf("unit's ExecStopPost must not run the helper for %s:\n%s", backend, unit)
	}
	if _, err := os.Stat(filepath.Join(root, SysctlDir, "60-pghook-eth0.conf")); err == nil {
		t.Errorf("arp_announce drop-in written for a VIP with backend %s", backend)
	}
}

func secret(t *testing.T, root, scope, kind string) string {
	return strings.TrimSpace(string(read(t, filepath.Join(root, SecretsDir, scope, kind))))
}

func TestRenderDebianLayout(t *testing.T) {
	o := baseOpts(t)
	o.VIP, o.VIPLabel, o.BackupDir = VIPList{"10.0.0.100/24"}, "eth0:vip", "/mnt/shared/backup"
	run(t, o)
	root := o.Root
	raw := read(t, filepath.Join(root, "/etc/patroni/main.yml"))
	c, err := patroni.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Scope != "main" || c.Name != "pg1" || c.Namespace != "/service/" || c.DCS() != "etcd3" {
		t.Fatalf("identity: %+v", c)
	}
	eps, _ := c.Etcd3.Endpoints()
	if strings.Join(eps, ",") != "http://127.0.0.1:1,http://10.0.0.12:2379" {
		t.Fatalf("endpoints %v", eps)
	}
	pg := c.Postgresql
	if pg.DataDir != "/var/lib/postgresql/15/main" || pg.BinDir != "/usr/lib/postgresql/15/bin" ||
		pg.ConfigDir != "/etc/postgresql/15/main" || pg.ConnectAddress != "10.0.0.11:5432" || pg.Listen != "0.0.0.0:5432" {
		t.Fatalf("postgresql: %+v", pg)
	}
	if c.RestAPI.ConnectAddress != "10.0.0.11:8008" || c.RestAPI.Auth == nil || c.RestAPI.Auth.Password != secret(t, root, "main", "restapi") {
		t.Fatalf("restapi: %+v", c.RestAPI)
	}
	for kind, user := range map[string]string{"superuser": "postgres", "replication": "replicator", "rewind": "rewind_user"} {
		a := pg.Authentication[kind]
		if a == nil || a.Username != user || len(a.Password) < 20 || a.Password != secret(t, root, "main", kind) {
			t.Fatalf("authentication.%s: %+v", kind, a)
		}
	}
	// The keys Patroni 3.0.2's validator needs.
	b := c.Bootstrap
	if b.DCS.TTL.Value != "30" || !b.DCS.Postgresql.UsePgRewind || !b.DCS.Postgresql.UseSlots || len(b.Initdb) == 0 || b.PostInit != "/usr/bin/pghook post-init" {
		t.Fatalf("bootstrap: %+v", b)
	}
	hba := strings.Join(b.PgHBA, "\n")
	for _, want := range []string{"host replication replicator 127.0.0.1/32 scram-sha-256", "host replication replicator 10.0.0.0/24 scram-sha-256",
		"host all all 10.0.0.0/24 scram-sha-256", "host replication replicator 192.168.5.13/32 scram-sha-256"} {
		if !strings.Contains(hba, want) {
			t.Errorf("pg_hba lacks %q:\n%s", want, hba)
		}
	}
	if strings.Contains(hba, "10.0.0.12/32") {
		t.Errorf("a member inside --network got its own rule:\n%s", hba)
	}
	p := c.Postgresql
	for _, cb := range []string{"on_start", "on_stop", "on_restart", "on_reload", "on_role_change"} {
		if p.Callbacks[cb] != "/usr/bin/pghook callback" {
			t.Errorf("callback %s = %q", cb, p.Callbacks[cb])
		}
	}
	if strings.Join(p.CreateReplicaMethods, ",") != "pghook,basebackup" || p.Pghook["command"] != "/usr/bin/pghook create-replica" ||
		p.Pghook["keep_data"] != true || p.Pghook["backup_dir"] != "/mnt/shared/backup" || p.Basebackup.(map[string]any)["checkpoint"] != "fast" {
		t.Fatalf("create_replica: %+v", p)
	}

	// pghook.yaml loads with pghook's own strict parser.
	cfg, err := config.Load(filepath.Join(root, PghookYAML), true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Scope("main")
	if err != nil || s.PatroniConfig != "/etc/patroni/main.yml" || s.VIP.Backend != "netlink" || s.VIP.Address != "10.0.0.100/24" ||
		s.VIP.Interface != "eth0" || s.VIP.Label != "eth0:vip" || cfg.VIPHelper != VIPHelper {
		t.Fatalf("pghook.yaml: %+v %+v %v", cfg, s, err)
	}
	unit := string(read(t, filepath.Join(root, SystemdEtc, "patroni@main.service")))
	for _, want := range []string{"User=postgres", "KillMode=process", "ExecStopPost=-/usr/lib/pghook/pghook-vip down --scope main",
		"Restart=on-failure", "ExecStart=/usr/bin/patroni /etc/patroni/main.yml"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if strings.Contains(unit, "NoNewPrivileges") {
		t.Error("NoNewPrivileges would disable the helper's file capabilities")
	}
	wants := filepath.Join(root, SystemdEtc, "multi-user.target.wants")
	if tg, _ := os.Readlink(filepath.Join(wants, "pghook-vip-watch@main.service")); tg != VIPWatchUnit {
		t.Errorf("vip watch not enabled: %q", tg)
	}
	if tg, _ := os.Readlink(filepath.Join(wants, "patroni@main.service")); tg != "/etc/systemd/system/patroni@main.service" {
		t.Errorf("patroni unit not enabled: %q", tg)
	}
	sc := string(read(t, filepath.Join(root, SysctlDir, "60-pghook-eth0.conf")))
	if !strings.Contains(sc, "net.ipv4.conf.all.arp_announce = 2") || !strings.Contains(sc, "net.ipv4.conf.eth0.arp_announce = 2") ||
		!strings.Contains(sc, "net.ipv4.conf.all.arp_ignore = 1") || !strings.Contains(sc, "net.ipv4.conf.eth0.arp_ignore = 1") {
		t.Errorf("sysctl: %s", sc)
	}
	for _, d := range []string{"/var/lib/postgresql/15/main", "/etc/postgresql/15/main", "/mnt/shared/backup"} {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Errorf("directory %s: %v", d, err)
		}
	}
}

func TestSeedLayoutAndEtcdV2(t *testing.T) {
	o := baseOpts(t)
	o.Layout, o.DCS, o.DataDir, o.Port, o.RestPort = "seed", "etcd", "/srv/pg/main", 5433, 8009
	run(t, o)
	c, err := patroni.Load(filepath.Join(o.Root, "/etc/patroni/main.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DCS() != "etcd" || c.Postgresql.ConfigDir != "" || c.Postgresql.DataDir != "/srv/pg/main" ||
		c.Postgresql.ConnectAddress != "10.0.0.11:5433" || c.RestAPI.Listen != "0.0.0.0:8009" {
		t.Fatalf("%+v", c)
	}
	if _, err := os.Lstat(filepath.Join(o.Root, SysctlDir)); err == nil {
		t.Error("sysctl drop-in written without a VIP")
	}
}

func TestIdempotent(t *testing.T) {
	o := baseOpts(t)
	o.VIP = VIPList{"10.0.0.100/24"}
	res, _ := run(t, o)
	if res.Changes == 0 {
		t.Fatal("first run changed nothing")
	}
	before := snapshot(t, o.Root)
	res, out := run(t, o)
	if res.Changes != 0 || !strings.Contains(out, "scope main: unchanged") {
		t.Fatalf("second run changed %d:\n%s", res.Changes, out)
	}
	after := snapshot(t, o.Root)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed on the second run", p)
		}
	}
	if len(before) != len(after) {
		t.Errorf("second run created files: %d -> %d", len(before), len(after))
	}
}

func TestSecretsModeAndReuse(t *testing.T) {
	o := baseOpts(t)
	run(t, o)
	dir := filepath.Join(o.Root, SecretsDir, "main")
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("secrets dir: %v %v", fi.Mode(), err)
	}
	first := map[string]string{}
	for _, k := range secretKinds {
		fi, err := os.Stat(filepath.Join(dir, k))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", k, err, fi)
		}
		first[k] = secret(t, o.Root, "main", k)
	}
	if fi, _ := os.Stat(filepath.Join(o.Root, "/etc/patroni/main.yml")); fi.Mode().Perm() != 0o600 {
		t.Errorf("patroni.yml mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(o.Root, PghookYAML)); fi.Mode().Perm() != 0o640 {
		t.Errorf("pghook.yaml mode %v", fi.Mode())
	}
	// A changed setting re-renders with the same passwords.
	o.Port = 5440
	_, out := run(t, o)
	for k, v := range first {
		if secret(t, o.Root, "main", k) != v {
			t.Errorf("secret %s regenerated", k)
		}
		if strings.Contains(out, v) {
			t.Errorf("secret %s printed", k)
		}
	}
}

func TestAdoptsPasswordsOfExistingConfig(t *testing.T) {
	o := baseOpts(t)
	o.Force = true
	p := filepath.Join(o.Root, "/etc/patroni/main.yml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("scope: main\nname: pg1\npostgresql:\n  data_dir: /x\n  authentication:\n    superuser: {username: postgres, password: qaz1}\n"), 0o600)
	_, out := run(t, o)
	if got := secret(t, o.Root, "main", "superuser"); got != "qaz1" {
		t.Fatalf("superuser password not adopted: %q", got)
	}
	if !strings.Contains(out, "backup") {
		t.Errorf("no backup reported for a hand-written patroni.yml:\n%s", out)
	}
}

func TestUserEditRefused(t *testing.T) {
	o := baseOpts(t)
	run(t, o)
	p := filepath.Join(o.Root, "/etc/patroni/main.yml")
	edited := append(read(t, p), []byte("# my edit\n")...)
	os.WriteFile(p, edited, 0o600)
	o.Port = 5441 // a change pghook would make
	var out bytes.Buffer
	_, err := Run(o, &out)
	var ue *UsageError
	if !errors.As(err, &ue) || ue.Flag != "force" || !strings.Contains(err.Error(), p) {
		t.Fatalf("want a refusal naming %s, got %v", p, err)
	}
	if !bytes.Equal(read(t, p), edited) {
		t.Fatal("edited file overwritten without --force")
	}
	if _, err := os.Stat(filepath.Join(o.Root, "/etc/pghook/pghook.yaml")); err != nil {
		t.Fatal(err)
	}
	o.Port, o.Force = 5441, true
	_, outs := run(t, o)
	if !strings.Contains(outs, "backup") {
		t.Fatalf("--force did not report a backup:\n%s", outs)
	}
	baks, _ := filepath.Glob(p + ".pghook-backup-*")
	if len(baks) != 1 || !bytes.Equal(read(t, baks[0]), edited) {
		t.Fatalf("backup: %v", baks)
	}
	if bytes.Contains(read(t, p), []byte("# my edit")) {
		t.Fatal("--force did not overwrite")
	}
}

func TestDryRunChangesNothingAndMasks(t *testing.T) {
	o := baseOpts(t)
	o.DryRun = true
	res, out := run(t, o)
	if res.Changes == 0 || !strings.Contains(out, "+++ b"+o.Root+"/etc/patroni/main.yml") {
		t.Fatalf("dry run shows no diff:\n%s", out)
	}
	if entries, _ := os.ReadDir(o.Root); len(entries) != 0 {
		t.Fatalf("dry run wrote %v", entries)
	}
	if !strings.Contains(out, "password: ********") {
		t.Fatalf("passwords not masked:\n%s", out)
	}
	// On an installed node: a dry run of a change shows it, masked, and writes nothing.
	o.DryRun = false
	run(t, o)
	before := snapshot(t, o.Root)
	o.DryRun, o.VIP = true, VIPList{"10.0.0.100/24"}
	_, out = run(t, o)
	if !strings.Contains(out, "+      address: 10.0.0.100/24") {
		t.Fatalf("dry run diff lacks the VIP:\n%s", out)
	}
	for _, k := range secretKinds {
		if strings.Contains(out, secret(t, o.Root, "main", k)) {
			t.Fatalf("dry run shows the %s password", k)
		}
	}
	after := snapshot(t, o.Root)
	if len(before) != len(after) {
		t.Fatal("dry run created files")
	}
	for p, v := range before {
		if after[p] != v {
			t.Fatalf("dry run changed %s", p)
		}
	}
}

func TestTwoScopesOneHost(t *testing.T) {
	o := baseOpts(t)
	run(t, o)
	o2 := o
	o2.Scope, o2.Port, o2.RestPort = "standalondb", 5433, 8009
	run(t, o2)
	cfg, err := config.Load(filepath.Join(o.Root, PghookYAML), true)
	if err != nil || len(cfg.Scopes) != 2 || cfg.Scopes["main"].PatroniConfig != "/etc/patroni/main.yml" ||
		cfg.Scopes["standalondb"].PatroniConfig != "/etc/patroni/standalondb.yml" {
		t.Fatalf("%+v %v", cfg, err)
	}
	if secret(t, o.Root, "main", "superuser") == secret(t, o.Root, "standalondb", "superuser") {
		t.Fatal("scopes share a password")
	}
	if res, out := run(t, o); res.Changes != 0 {
		t.Fatalf("re-running the first scope changed things:\n%s", out)
	}
}

func TestPghookYAMLKeepsUserKeys(t *testing.T) {
	o := baseOpts(t)
	run(t, o)
	p := filepath.Join(o.Root, PghookYAML)
	b := read(t, p)
	b = append(b, []byte("log_level: debug # mine\n")...)
	b = bytes.Replace(b, []byte("    patroni_config: /etc/patroni/main.yml\n"), []byte("    patroni_config: /etc/patroni/main.yml\n    post_init:\n      sql_dir: /etc/pghook/sql\n"), 1)
	os.WriteFile(p, b, 0o640)
	if _, err := config.Load(p, true); err != nil {
		t.Fatal(err)
	}
	o.VIP = VIPList{"10.0.0.100/24"}
	run(t, o)
	got := string(read(t, p))
	for _, want := range []string{"log_level: debug # mine", "sql_dir: /etc/pghook/sql", "address: 10.0.0.100/24"} {
		if !strings.Contains(got, want) {
			t.Errorf("pghook.yaml lacks %q:\n%s", want, got)
		}
	}
	// A hand change of a key install manages is refused.
	os.WriteFile(p, []byte(strings.Replace(got, "address: 10.0.0.100/24", "address: 10.0.0.101/24", 1)), 0o640)
	o.VIP = VIPList{"10.0.0.102/24"}
	var out bytes.Buffer
	if _, err := Run(o, &out); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("managed-key edit not refused: %v", err)
	}
}

// badInput is a setting install must refuse with a usage error naming flag.
type badInput struct {
	flag string
	mod  func(*Options)
}

// checkBadInput runs install on each bad input: a usage error naming the
// flag, and nothing written.
func checkBadInput(t *testing.T, cases []badInput) {
	t.Helper()
	for _, tc := range cases {
		o := baseOpts(t)
		tc.mod(&o)
		var out bytes.Buffer
		_, err := Run(o, &out)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Flag != tc.flag {
			t.Errorf("%s: want a usage error naming --%s, got %v", tc.flag, tc.flag, err)
		}
		if entries, _ := os.ReadDir(o.Root); len(entries) != 0 {
			t.Errorf("%s: files written on bad input", tc.flag)
		}
	}
}

func TestBadInput(t *testing.T) {
	checkBadInput(t, []badInput{
		{"scope", func(o *Options) { o.Scope = "" }},
		{"scope", func(o *Options) { o.Scope = "bad/scope" }},
		{"etcd-endpoints", func(o *Options) { o.EtcdEndpoints = nil }},
		{"etcd-endpoints", func(o *Options) { o.EtcdEndpoints = []string{"ftp://x:1"} }},
		{"interface", func(o *Options) { o.Address, o.Network, o.Interface = "", "", "nosuch0" }},
		{"vip", func(o *Options) { o.VIP = VIPList{"10.0.0.100"} }},
		{"layout", func(o *Options) { o.Layout = "rpm" }},
		{"etcd-password-file", func(o *Options) { o.EtcdUser, o.DCS = "patroni", "etcd" }},
		{"dcs", func(o *Options) {
			o.EtcdUser, o.DCS, o.EtcdPasswordFile, o.EtcdRootPassword = "patroni", "etcd", "/etc/hostname", "x"
		}},
		{"etcd-user", func(o *Options) { o.EtcdRootPasswordFile = "/etc/hostname" }},
		{"etcd-user", func(o *Options) { o.EtcdUser = "bad user" }},
		{"ttl", func(o *Options) { o.TTL, o.LoopWait, o.RetryTimeout = 10, 4, 4 }},
		{"watchdog", func(o *Options) { o.Watchdog = "on" }},
		{"pg-parameter", func(o *Options) { o.PGParameters = []string{"shared_buffers"} }},
		{"pg-parameter", func(o *Options) { o.PGParameters = []string{"unix_socket_directories=/tmp"} }},
		{"secrets-dir", func(o *Options) { o.SecretsDir = "relative" }},
		{"pghook-config", func(o *Options) { o.PghookConfig = "/etc/pg hook.yaml" }},
		{"etcd-password-file", func(o *Options) { o.EtcdUser, o.EtcdPasswordFile = "patroni", "/nonexistent/pw" }},
		{"data-dir", func(o *Options) { o.DataDir = "relative/dir" }},
		{"rest-port", func(o *Options) { o.RestPort = 5432 }},
		{"pg-version", func(o *Options) { o.PGVersion = "fifteen" }},
	})
}

func TestDataDirOfAnotherVersion(t *testing.T) {
	o := baseOpts(t)
	dd := filepath.Join(o.Root, "/var/lib/postgresql/15/main")
	os.MkdirAll(dd, 0o700)
	os.WriteFile(filepath.Join(dd, "PG_VERSION"), []byte("14\n"), 0o600)
	var out bytes.Buffer
	_, err := Run(o, &out)
	var ue *UsageError
	if !errors.As(err, &ue) || ue.Flag != "data-dir" {
		t.Fatalf("want --data-dir refusal, got %v", err)
	}
}

func TestEtcdAuthAndFrom(t *testing.T) {
	o := baseOpts(t)
	pw := filepath.Join(t.TempDir(), "etcd.pw")
	os.WriteFile(pw, []byte("s3cr3t-etcd\n"), 0o600)
	from, err := ReadFrom(strings.NewReader("scope: main\netcd-user: patroni\netcd-password-file: " + pw + "\netcd-cacert: /etc/ssl/ca.pem\n"))
	if err != nil {
		t.Fatal(err)
	}
	o.EtcdUser, o.EtcdPasswordFile, o.EtcdCACert = from.EtcdUser, from.EtcdPasswordFile, from.EtcdCACert
	o.EtcdEndpoints = []string{"127.0.0.1:1"}
	res, out := run(t, o)
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "etcd user patroni not created or checked") {
		t.Errorf("an unreachable etcd is not reported for the etcd user:\n%s", out)
	}
	c, err := patroni.Load(filepath.Join(o.Root, "/etc/patroni/main.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Etcd3.Username != "patroni" || c.Etcd3.Password != "s3cr3t-etcd" || c.Etcd3.Protocol != "https" || c.Etcd3.CACert != "/etc/ssl/ca.pem" {
		t.Fatalf("%+v", c.Etcd3)
	}
	if _, err := ReadFrom(strings.NewReader("scope: main\netcd-password: x\n")); err == nil {
		t.Fatal("unknown key accepted in --from")
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nb\nX\nd\ne\nf\ng\nh\ni\nj\nk\n"
	d := unifiedDiff("/f", a, b)
	want := "--- a/f\n+++ b/f\n@@ -1,6 +1,6 @@\n a\n b\n-c\n+X\n d\n e\n f\n@@ -8,3 +8,4 @@\n h\n i\n j\n+k\n"
	if d != want {
		t.Fatalf("got:\n%s\nwant:\n%s", d, want)
	}
	if unifiedDiff("/f", a, a) != "" {
		t.Fatal("diff of equal files")
	}
}

// The examples shipped in /usr/share/doc/pghook/examples load.
func TestShippedExamples(t *testing.T) {
	if _, err := config.Load("../../packaging/deb/examples/pghook.yaml", true); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("../../packaging/deb/examples/install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o, err := ReadFrom(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.normalize(); err != nil || o.Scope != "main" || len(o.VIP) == 0 || len(o.Members) != 3 {
		t.Fatalf("%+v %v", o, err)
	}
}

// Keys install does not manage, written before the first install, are no
// hand edit of what install wrote.
func TestManagedSumIgnoresUnmanagedKeys(t *testing.T) {
	for _, tt := range []struct {
		yaml    string
		managed bool
	}{
		{"scopes:\n  main:\n    post_init: {sql_dir: /x}\n", false},
		{"scopes:\n  main:\n    vip: {metrics_listen: '127.0.0.1:9187', watch_interval: 1s}\n", false},
		{"scopes:\n  main:\n    vip: {backend: netlink, address: 10.0.0.1/24}\n", true},
		{"scopes:\n  main:\n    patroni_config: /etc/patroni/main.yml\n", true},
	} {
		if got := managedSum([]byte(tt.yaml), "main") != ""; got != tt.managed {
			t.Errorf("managedSum(%q) managed = %t, want %t", tt.yaml, got, tt.managed)
		}
	}
}
