package replica

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// debianConfig lays a Debian-style /etc/postgresql/15/main.
func debianConfig(t *testing.T, d string) {
	t.Helper()
	files := []struct {
		name string
		mode os.FileMode
		body string
	}{
		{"postgresql.conf", 0o644, "data_directory = '/var/lib/postgresql/15/main'\ninclude_dir = 'conf.d'\n"},
		{"pg_hba.conf", 0o640, "local all postgres peer\n"},
		{"pg_ident.conf", 0o640, ""},
		{"start.conf", 0o644, "auto\n"},
		{"conf.d/50-tuning.conf", 0o600, "shared_buffers = '1GB'\n"},
	}
	for _, f := range files {
		p := filepath.Join(d, f.name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
	}
	os.Symlink("/etc/ssl/certs/ssl-cert-snakeoil.pem", filepath.Join(d, "server.crt")) // not saved
}

// withConfigCopy saves src into the backup bdir the way Backup does.
func withConfigCopy(t *testing.T, bdir, src string, edit func(m *Meta)) {
	t.Helper()
	files, err := saveConfigDir(src, filepath.Join(bdir, ConfigSubdir), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	m, err := readMeta(bdir)
	if err != nil {
		t.Fatal(err)
	}
	m.ConfigDir, m.ConfigFiles = src, files
	if edit != nil {
		edit(&m)
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(bdir, MetaFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSaveConfigDir(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	debianConfig(t, src)
	files, err := saveConfigDir(src, dst, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name+" "+f.Mode.String())
	}
	want := "conf.d/50-tuning.conf -rw-------,pg_hba.conf -rw-r-----,pg_ident.conf -rw-r-----,postgresql.conf -rw-r--r--,start.conf -rw-r--r--"
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("saved %s\nwant  %s", got, want)
	}
	if _, err := os.Lstat(filepath.Join(dst, "server.crt")); err == nil {
		t.Fatal("a symlink was saved")
	}
}

func TestRestoreConfigDir(t *testing.T) {
	const sysid = 7712150698949318755
	tests := []struct {
		name      string
		edit      func(m *Meta)                   // pghook.json's list
		tamper    func(t *testing.T, bdir string) // the saved copy
		configDir func(data, conf string) string  // RestoreOptions.ConfigDir
		prepare   func(t *testing.T, conf string) // the node's config_dir before
		want      ExitCode
		laid      bool
	}{
		{name: "laid into an existing config_dir, modes kept", laid: true,
			prepare: func(t *testing.T, conf string) {
				os.MkdirAll(conf, 0o755)
				os.WriteFile(filepath.Join(conf, "pg_hba.conf"), []byte("old\n"), 0o644)
				os.WriteFile(filepath.Join(conf, "local-only.conf"), []byte("mine\n"), 0o644)
			}},
		{name: "laid into an absent config_dir", laid: true},
		{name: "config_dir is the data directory: not laid", configDir: func(data, conf string) string { return data }},
		{name: "no config_dir on this node: not laid", configDir: func(data, conf string) string { return "" }},
		{name: "copy tampered", want: ExitVerify, tamper: func(t *testing.T, bdir string) {
			os.WriteFile(filepath.Join(bdir, ConfigSubdir, "pg_hba.conf"), []byte("host all all 0.0.0.0/0 trust\n"), 0o640)
		}},
		{name: "copy missing a file", want: ExitVerify, tamper: func(t *testing.T, bdir string) {
			os.Remove(filepath.Join(bdir, ConfigSubdir, "conf.d", "50-tuning.conf"))
		}},
		{name: "name escapes config_dir", want: ExitVerify, edit: func(m *Meta) {
			m.ConfigFiles[0].Name = "../../etc/cron.d/x"
		}},
		{name: "config_dir unwritable after extraction: data directory undone", want: ExitIO,
			prepare: func(t *testing.T, conf string) {
				os.MkdirAll(filepath.Dir(conf), 0o755)
				os.WriteFile(conf, []byte("a file where the directory should be"), 0o644)
			}},
		{name: "absolute name", want: ExitVerify, edit: func(m *Meta) {
			m.ConfigFiles[0].Name = "/etc/passwd"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, parent, src := t.TempDir(), t.TempDir(), t.TempDir()
			data, conf := filepath.Join(parent, "data"), filepath.Join(parent, "etc", "main")
			debianConfig(t, src)
			bdir := newSynth(sysid).write(t, dir, "s", "b1")
			withConfigCopy(t, bdir, src, tc.edit)
			if tc.tamper != nil {
				tc.tamper(t, bdir)
			}
			if tc.prepare != nil {
				tc.prepare(t, conf)
			}
			before := treeOf(t, parent)
			cd := conf
			if tc.configDir != nil {
				cd = tc.configDir(data, conf)
			}
			leader := &fakeLeader{sysid: sysid}
			_, err := Restore(context.Background(), RestoreOptions{Args: Args{Scope: "s", DataDir: data, ConnString: "host=x"}, BackupDir: dir,
				ConfigDir: cd, Dial: func(context.Context, string) (Leader, error) { return leader, nil }, Log: zerolog.Nop()})
			t.Logf("exit %d: %v", CodeOf(err), err)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.want)
			}
			if tc.want != 0 {
				if after := treeOf(t, parent); after != before {
					t.Fatalf("changed:\nbefore\n%s\nafter\n%s", before, after)
				}
				return
			}
			if _, err := os.Stat(filepath.Join(data, "global", "pg_control")); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(treeOf(t, parent), stageSuffix) {
				t.Fatal("a staged file was left behind")
			}
			_, err = os.Stat(filepath.Join(conf, "postgresql.conf"))
			if laid := err == nil; laid != tc.laid {
				t.Fatalf("laid %v, want %v", laid, tc.laid)
			}
			if !tc.laid {
				return
			}
			for _, name := range []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf", "start.conf", "conf.d/50-tuning.conf"} {
				want, _ := os.ReadFile(filepath.Join(src, name))
				wfi, _ := os.Stat(filepath.Join(src, name))
				got, err := os.ReadFile(filepath.Join(conf, name))
				gfi, _ := os.Stat(filepath.Join(conf, name))
				if err != nil || string(got) != string(want) || gfi.Mode() != wfi.Mode() {
					t.Fatalf("%s: %q %v %v, want %q %v", name, got, gfi.Mode(), err, want, wfi.Mode())
				}
			}
			if tc.prepare != nil {
				if b, _ := os.ReadFile(filepath.Join(conf, "local-only.conf")); string(b) != "mine\n" {
					t.Fatal("a file of config_dir not in the backup was touched")
				}
			}
		})
	}
}
