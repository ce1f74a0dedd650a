//go:build integration

package install

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pghook/pghook/internal/testenv"
	"github.com/pghook/pghook/replica"
)

// adoptOptions adopts p's cluster as scope "sa", every file relocated
// under dir.
func adoptOptions(e *testenv.Etcd, p *testenv.Postgres, dir string) Options {
	return Options{Scope: "sa", Name: "pg1", Interface: "lo", Address: "10.0.0.11", Network: "10.0.0.0/24",
		EtcdEndpoints: []string{e.Endpoint}, PGVersion: "15", NoValidate: true, Adopt: true,
		DataDir: p.DataDir, ConfigDir: filepath.Join(dir, "conf"), Port: 5433, RestPort: 8009,
		PatroniConfig: filepath.Join(dir, "patroni.yml"), PghookConfig: filepath.Join(dir, "pghook.yaml"),
		SecretsDir: filepath.Join(dir, "secrets"), StateFile: filepath.Join(dir, "state.json"),
		SystemdDir: filepath.Join(dir, "systemd"), SysctlDir: filepath.Join(dir, "sysctl"), Pgpass: filepath.Join(dir, "pgpass"),
		SocketDir: p.SocketDir}
}

func sysidOf(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "global", "pg_control"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := replica.ParseControl(b)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(c.SystemID, 10)
}

func psqlIT(t *testing.T, p *testenv.Postgres, q string) string {
	t.Helper()
	return strings.TrimSpace(testenv.AsPostgres(t, p.BinDir+"/psql", "-X", "-At", "-h", p.SocketDir, "-p", strconv.Itoa(p.Port), "-d", "postgres", "-c", q))
}

func nothingWritten(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"patroni.yml", "pghook.yaml", "secrets", "systemd"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s written before the refusal (%v)", f, err)
		}
	}
}

// Adopting a running PostgreSQL 15: refused while Patroni's roles are
// missing (nothing written); --create-roles creates them with the scope's
// passwords and pg_rewind's grants; a second run changes nothing; the DCS
// naming another cluster, or knowing this one while a server Patroni did
// not start runs on it, is refused.
func TestAdoptRunningCluster(t *testing.T) {
	testenv.RequireRoot(t)
	e := testenv.StartEtcd(t)
	p := testenv.StartPostgres(t)
	dir := t.TempDir()
	o := adoptOptions(e, p, dir)

	var out bytes.Buffer
	_, err := Run(o, &out)
	if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), "role replicator (replication) does not exist") ||
		!strings.Contains(err.Error(), "role rewind_user (rewind) does not exist") || !strings.Contains(err.Error(), "--create-roles") {
		t.Fatalf("missing roles: got %v, want a refusal naming them and --create-roles\n%s", err, out.String())
	}
	nothingWritten(t, dir)

	o.CreateRoles = true
	out.Reset()
	res, err := Run(o, &out)
	if err != nil {
		t.Fatalf("adopt --create-roles: %v\n%s", err, out.String())
	}
	log := out.String()
	for _, want := range []string{"role       create role replicator", "role       create role rewind_user", "the one step left is yours", "stop it: pg_ctl -D " + p.DataDir} {
		if !strings.Contains(log, want) {
			t.Errorf("output lacks %q:\n%s", want, log)
		}
	}
	secrets := map[string]string{}
	for _, k := range []string{"superuser", "replication", "rewind"} {
		b, err := os.ReadFile(filepath.Join(dir, "secrets", "sa", k))
		if err != nil {
			t.Fatal(err)
		}
		secrets[k] = strings.TrimSpace(string(b))
		if strings.Contains(log, secrets[k]) {
			t.Errorf("the %s password is in install's output", k)
		}
	}
	for role, kind := range map[string]string{"postgres": "superuser", "replicator": "replication", "rewind_user": "rewind"} {
		stored := psqlIT(t, p, "select rolpassword from pg_authid where rolname = '"+role+"'")
		if !passwordMatches(stored, role, secrets[kind]) {
			t.Errorf("%s's password is not the scope's %s secret", role, kind)
		}
	}
	if got := psqlIT(t, p, "select rolreplication::text || rolcanlogin::text from pg_roles where rolname = 'replicator'"); got != "truetrue" {
		t.Errorf("replicator: replication/login %q", got)
	}
	for _, fn := range rewindFunctions {
		if got := psqlIT(t, p, "select has_function_privilege('rewind_user', '"+fn+"', 'EXECUTE')"); got != "t" {
			t.Errorf("rewind_user lacks EXECUTE on %s", fn)
		}
	}
	// The server's own SCRAM verifier is read the same way.
	psqlIT(t, p, "set password_encryption = 'scram-sha-256'; create role probe password 'pencil'")
	if stored := psqlIT(t, p, "select rolpassword from pg_authid where rolname = 'probe'"); !passwordMatches(stored, "probe", "pencil") || passwordMatches(stored, "probe", "pencil2") {
		t.Errorf("PostgreSQL's own verifier %q not matched", stored)
	}
	yml, _ := os.ReadFile(o.PatroniConfig)
	for _, want := range []string{"config_dir: " + o.ConfigDir, "listen: 0.0.0.0:5433", "listen: 0.0.0.0:8009", "data_directory: " + p.DataDir, "pg_hba:\n    - local all all peer"} {
		if !strings.Contains(string(yml), want) {
			t.Errorf("patroni.yml lacks %q", want)
		}
	}
	if res.Changes == 0 {
		t.Error("no change counted")
	}

	out.Reset()
	res, err = Run(o, &out)
	if err != nil || res.Changes != 0 || strings.Contains(out.String(), "role   ") {
		t.Fatalf("second run: %v, %d changes:\n%s", err, res.Changes, out.String())
	}

	// The DCS names another cluster.
	e.Ctl(t, "put", "/service/sa/initialize", "7300000000000000002")
	_, err = Run(o, &out)
	if err == nil || !strings.Contains(err.Error(), "says the scope's cluster is 7300000000000000002: this is another cluster") {
		t.Fatalf("another cluster's system identifier: got %v", err)
	}
	// The DCS knows this cluster (Patroni took it over) while a server
	// Patroni did not start runs on it.
	e.Ctl(t, "put", "/service/sa/initialize", sysidOf(t, p.DataDir))
	_, err = Run(o, &out)
	if err == nil || !strings.Contains(err.Error(), "Patroni manages this cluster already") || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("standalone server on a cluster the DCS knows: got %v", err)
	}
}

// A data directory of another major version, or a stopped cluster the DCS
// does not know (its roles cannot be read), is refused; nothing written.
func TestAdoptRefusesVersionAndStopped(t *testing.T) {
	testenv.RequireRoot(t)
	e := testenv.StartEtcd(t)
	p := testenv.StartPostgres(t)
	testenv.AsPostgres(t, p.BinDir+"/pg_ctl", "-D", p.DataDir, "-w", "stop")
	for _, tt := range []struct {
		name, version, want string
	}{
		{"another major version", "14", "holds a PostgreSQL 14 cluster, but the scope would run PostgreSQL 15"},
		{"stopped", "15", "is stopped: install checks (and with --create-roles creates) Patroni's roles over its local socket, so start it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(p.DataDir, "PG_VERSION"), []byte(tt.version+"\n"), 0o600)
			dir := t.TempDir()
			o := adoptOptions(e, p, dir)
			o.CreateRoles = true
			_, err := Run(o, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			nothingWritten(t, dir)
		})
	}
}
