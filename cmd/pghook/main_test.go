package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bin is the pghook binary built once for these tests: the contract is
// about argv[0], exit codes and stderr, so tests run the real program.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pghook-cli")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "pghook")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func runBin(t *testing.T, argv0 string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(argv0, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, o.String(), e.String()}
}

func TestCLIContract(t *testing.T) {
	dir := t.TempDir()
	links := map[string]string{}
	for _, name := range []string{"callback.sh", "create_replica.sh", "post_init.sh", "pghook-callback"} {
		p := filepath.Join(dir, name)
		if err := os.Symlink(bin, p); err != nil {
			t.Fatal(err)
		}
		links[name] = p
	}
	tests := []struct {
		name     string
		argv0    string
		args     []string
		code     int
		inStderr string
		inStdout string
	}{
		{"version", bin, []string{"version"}, 0, "", "pghook "},
		{"callback bare form", bin, []string{"callback", "on_start", "master", "s"}, 0, `"roster_role":"primary"`, ""},
		{"callback via callback.sh, legacy form", links["callback.sh"], []string{"s", "n9", "/d", "0.0.0.0:5432", "/b", "topsecret", "on_role_change", "replica", "s"}, 0, `"node":"n9"`, ""},
		{"pghook-callback name", links["pghook-callback"], []string{"on_stop", "master", "s"}, 0, `"roster_role":"stopped"`, ""},
		{"unknown role leaves state", bin, []string{"callback", "on_start", "boss", "s"}, 0, "unknown role", ""},
		{"callback usage", bin, []string{"callback", "on_start"}, 2, "ACTION ROLE SCOPE", ""},
		{"unknown flag is usage", bin, []string{"callback", "--nope", "on_start", "master", "s"}, 2, "nope", ""},
		{"unknown command", bin, []string{"frobnicate"}, 2, "frobnicate", ""},
		{"create_replica.sh usage: non-zero so Patroni falls back", links["create_replica.sh"], []string{"--role=replica", "--keep_data=True"}, 2, "missing --scope", ""},
		{"create_replica.sh without identity: exit 5, never a guess", links["create_replica.sh"], []string{"--scope=s", "--role=replica", "--datadir=" + filepath.Join(dir, "pgdata"), "--connstring=", "--keep_data=True", "--backup_dir=" + filepath.Join(dir, "nobackups")}, 5, "which cluster", ""},
		{"post_init.sh needs a DSN", links["post_init.sh"], nil, 2, "DSN", ""},
		{"post_init.sh failure names the step", links["post_init.sh"], []string{"--scope", "s", "host=/nonexistent-socket-dir port=1 dbname=postgres user=postgres password=topsecret"}, 1, "connect", ""},
		{"missing named config", bin, []string{"--config", filepath.Join(dir, "absent.yaml"), "pgtab"}, 2, "absent.yaml", ""},
		{"vip without scope", bin, []string{"vip", "status"}, 2, "--scope", ""},
		{"vip status none", bin, []string{"vip", "status", "--scope", "s"}, 0, "", "backend=none"},
		{"env unknown scope", bin, []string{"env", "zz"}, 2, `no cluster "zz"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roster := filepath.Join(t.TempDir(), ".pgtab")
			r := runBin(t, tt.argv0, []string{"PGHOOK_PGTAB=" + roster}, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.inStderr) {
				t.Fatalf("stderr lacks %q:\n%s", tt.inStderr, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.inStdout) {
				t.Fatalf("stdout lacks %q:\n%s", tt.inStdout, r.stdout)
			}
			b, _ := os.ReadFile(roster)
			if strings.Contains(r.stderr+r.stdout+string(b), "topsecret") {
				t.Fatal("the legacy password leaked into a log line or the roster")
			}
		})
	}
}

// TestCallbackUsesPatroniConfig checks that the roster row carries the
// facts of patroni.yml and that a config for another scope is ignored.
func TestCallbackUsesPatroniConfig(t *testing.T) {
	dir := t.TempDir()
	pyml := filepath.Join(dir, "patroni.yml")
	os.WriteFile(pyml, []byte("name: node-a\nscope: main\npostgresql:\n  listen: 0.0.0.0:5433\n  data_dir: /srv/pg\n  bin_dir: /usr/lib/postgresql/15/bin\n  authentication: {superuser: {username: dba, password: hush}}\n"), 0o600)
	conf := filepath.Join(dir, "pghook.yaml")
	roster := filepath.Join(dir, ".pgtab")
	os.WriteFile(conf, []byte("pgtab: "+roster+"\nscopes:\n  main:\n    patroni_config: "+pyml+"\n    vip: {backend: none}\n"), 0o640)

	r := runBin(t, bin, nil, "callback", "--config", conf, "on_role_change", "master", "main")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	out := runBin(t, bin, nil, "pgtab", "--config", conf, "--json")
	var rows []map[string]string
	if err := json.Unmarshal([]byte(out.stdout), &rows); err != nil {
		t.Fatalf("%v: %s", err, out.stdout)
	}
	if len(rows) != 1 || rows[0]["node"] != "node-a" || rows[0]["data_dir"] != "/srv/pg" || rows[0]["listen"] != "0.0.0.0:5433" ||
		rows[0]["role"] != "primary" || rows[0]["patroni_config"] != pyml {
		t.Fatalf("rows %v", rows)
	}
	env := runBin(t, bin, nil, "env", "--config", conf, "--no-query", "main")
	for _, want := range []string{"export PGDATA='/srv/pg'", "export PGPORT='5433'", "export PGUSER='dba'", "export PATRONICTL_CONFIG_FILE='" + pyml + "'"} {
		if !strings.Contains(env.stdout, want) {
			t.Errorf("env lacks %q:\n%s", want, env.stdout)
		}
	}
	if strings.Contains(env.stdout+env.stderr, "hush") {
		t.Fatal("password printed by env")
	}

	// An unknown scope is named with the file and key; the roster is still kept.
	r = runBin(t, bin, nil, "callback", "--config", conf, "on_start", "replica", "other")
	if !strings.Contains(r.stderr, "scopes.other") || !strings.Contains(r.stderr, conf) {
		t.Fatalf("unknown scope not named: %s", r.stderr)
	}
	b, _ := os.ReadFile(roster)
	if !strings.Contains(string(b), "\nother,") {
		t.Fatalf("roster not kept for an unknown scope:\n%s", b)
	}
}

// With metrics_textfile_dir set, a callback leaves its last run there for
// node_exporter; without it, nothing is written.
func TestCallbackTextfile(t *testing.T) {
	dir := t.TempDir()
	prom := filepath.Join(dir, "textfiles")
	os.Mkdir(prom, 0o755)
	conf := filepath.Join(dir, "pghook.yaml")
	roster := filepath.Join(dir, ".pgtab")
	os.WriteFile(conf, []byte("pgtab: "+roster+"\nmetrics_textfile_dir: "+prom+"\nscopes:\n  main:\n    vip: {backend: none}\n"), 0o640)
	if r := runBin(t, bin, nil, "callback", "--config", conf, "on_role_change", "master", "main"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(prom, "pghook_callback_main_on_role_change.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`pghook_callback_success{scope="main",action="on_role_change"} 1`,
		`pghook_callback_last_run_timestamp_seconds{scope="main",action="on_role_change",role="master"} `,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("textfile lacks %q:\n%s", want, b)
		}
	}
	os.WriteFile(conf, []byte("pgtab: "+roster+"\nscopes:\n  main:\n    vip: {backend: none}\n"), 0o640)
	os.RemoveAll(prom)
	os.Mkdir(prom, 0o755)
	runBin(t, bin, nil, "callback", "--config", conf, "on_start", "replica", "main")
	if left, _ := filepath.Glob(filepath.Join(prom, "*")); len(left) != 0 {
		t.Errorf("written without metrics_textfile_dir: %v", left)
	}
}

// create-replica leaves its result for node_exporter: the exit code Patroni
// fell back on, and why.
func TestCreateReplicaTextfile(t *testing.T) {
	dir := t.TempDir()
	prom := filepath.Join(dir, "textfiles")
	backups := filepath.Join(dir, "backups")
	os.Mkdir(prom, 0o755)
	os.Mkdir(backups, 0o755)
	conf := filepath.Join(dir, "pghook.yaml")
	os.WriteFile(conf, []byte("metrics_textfile_dir: "+prom+"\nscopes:\n  main:\n    backup_dir: "+backups+"\n"), 0o640)
	r := runBin(t, bin, nil, "--config", conf, "create-replica", "--scope=main", "--datadir="+filepath.Join(dir, "data"),
		"--role=replica", "--connstring=host=127.0.0.1 port=1 user=replicator")
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 (no backup): %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(prom, "pghook_create_replica_main.prom"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `pghook_create_replica_last_exit_code{scope="main",cause="no backup"} 3`) {
		t.Errorf("textfile:\n%s", b)
	}
}
