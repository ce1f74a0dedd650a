package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"empty", "", ""},
		{"two scopes like the seed", `
pgtab: /var/lib/postgresql/.pgtab
scopes:
  postgres:
    patroni_config: /etc/patroni/postgres.yml
    vip: {backend: netlink, address: 10.0.0.100/24, interface: eth0}
  standalondb:
    patroni_config: /etc/patroni/standalondb.yml
`, ""},
		{"typo is an error", "scopes:\n  s:\n    patroni_conf: x\n", "patroni_conf"},
		{"bad backend", "scopes:\n  s:\n    vip: {backend: keepalived}\n", "scopes.s.vip"},
		{"netlink without address", "scopes:\n  s:\n    vip: {backend: netlink, interface: eth0}\n", "address"},
		{"address without prefix", "scopes:\n  s:\n    vip: {backend: netlink, interface: eth0, address: 10.0.0.1}\n", "prefix"},
		{"pcs without resource", "scopes:\n  s:\n    vip: {backend: pcs}\n", "resource"},
		{"not yaml", "scopes: [", "yaml"},
		{"backup_dir per scope", "scopes:\n  s:\n    backup_dir: /srv/backups\n    create_replica: {backup_dir: /mnt/b}\n", ""},
		{"relative backup_dir", "scopes:\n  s:\n    backup_dir: backups\n", "key scopes.s.backup_dir"},
		// Errors name the key as written, never a Go type.
		{"unknown key names its path", "scopes:\n  main:\n    bakup_dir: /x\n", "line 3: unknown key scopes.main.bakup_dir (scopes.main has: backup_dir, create_replica,"},
		{"unknown nested key", "scopes:\n  main:\n    create_replica: {tablespace_map: {}}\n", "unknown key scopes.main.create_replica.tablespace_map"},
		{"unknown top-level key", "scope: {}\n", "unknown key scope (the top level has:"},
		{"wrong kind", "scopes:\n  main:\n    vip: [a]\n", "key scopes.main.vip: want keys (a mapping), got a list"},
		// vip's keys come from netvip.Settings (inline) and config's own.
		{"unknown vip key lists both", "scopes:\n  main:\n    vip: {adress: 10.0.0.1/24}\n", "unknown key scopes.main.vip.adress (scopes.main.vip has: address, addresses, announce_interval, announcements, backend, dns, exec, interface, label, metrics_listen, node, probe_timeout, resource, takeover_wait, watch_grace, watch_interval)"},
		{"netvip key type names its path", "scopes:\n  main:\n    vip: {takeover_wait: soon}\n", `key scopes.main.vip.takeover_wait: "soon" is not a duration`},
		{"post_init role from postinit's type", "scopes:\n  main:\n    post_init: {roles: [{name: app, login: yes please}]}\n", `key scopes.main.post_init.roles[0].login: "yes please" is not true or false`},
		{"unknown post_init role key", "scopes:\n  main:\n    post_init: {databases: [{name: app, ownr: app}]}\n", "unknown key scopes.main.post_init.databases[0].ownr (scopes.main.post_init.databases[0] has: name, owner)"},
		{"not a number", "scopes:\n  main:\n    vip: {announcements: many}\n", `key scopes.main.vip.announcements: "many" is not a whole number`},
		{"not a bool", "scopes:\n  main:\n    standby_leader_vip: perhaps\n", `"perhaps" is not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkParse(t, tt.in, tt.wantErr)
			if err == nil {
				return
			}
			if strings.Contains(err.Error(), "config.") || strings.Contains(err.Error(), "not found in type") {
				t.Fatalf("err = %v names a Go type", err)
			}
		})
	}
}

// checkParse parses in: it must succeed when wantErr is empty, else fail
// with an error mentioning wantErr, which it returns for further checks.
func checkParse(t *testing.T, in, wantErr string) error {
	t.Helper()
	_, err := Parse(strings.NewReader(in))
	if wantErr == "" {
		if err != nil {
			t.Fatal(err)
		}
		return nil
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("err = %v, want mention of %q", err, wantErr)
	}
	return err
}

func TestLoadMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.yaml")
	if f, err := Load(p, false); err != nil || len(f.Scopes) != 0 {
		t.Fatalf("optional missing file: %v", err)
	}
	if _, err := Load(p, true); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("required missing file: err %v should name %s", err, p)
	}
}

func TestLoadErrorNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pghook.yaml")
	os.WriteFile(p, []byte("scopes:\n  s:\n    vip: {backend: magic}\n"), 0o600)
	_, err := Load(p, true)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "scopes.s.vip") {
		t.Fatalf("err = %v", err)
	}
}

func TestScope(t *testing.T) {
	f, _ := Parse(strings.NewReader("scopes:\n  a: {patroni_config: /a.yml}\n  b:\n"))
	f.Path = "/etc/pghook/pghook.yaml"
	if s, err := f.Scope("a"); err != nil || s.PatroniConfig != "/a.yml" {
		t.Fatalf("a: %+v %v", s, err)
	}
	if _, err := f.Scope("b"); err != nil {
		t.Fatalf("empty section: %v", err)
	}
	s, err := f.Scope("zz")
	if s != nil {
		t.Errorf("unknown scope returned a section %+v with its error", s)
	}
	if !errors.Is(err, ErrUnknownScope) || !strings.Contains(err.Error(), "scopes.zz") || !strings.Contains(err.Error(), f.Path) {
		t.Fatalf("unknown scope: %v", err)
	}
	empty, _ := Parse(strings.NewReader(""))
	if _, err := empty.Scope("anything"); err != nil {
		t.Fatalf("an empty config accepts any scope: %v", err)
	}
}

func TestDurations(t *testing.T) {
	f, err := Parse(strings.NewReader("scopes:\n  s:\n    vip: {backend: netlink, address: 10.0.0.1/24, interface: eth0, takeover_wait: 1500ms, watch_interval: 200ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := f.Scopes["s"].VIP; v.TakeoverWait.Milliseconds() != 1500 || v.WatchInterval.Milliseconds() != 200 {
		t.Fatalf("%+v", v)
	}
	if _, err := Parse(strings.NewReader("scopes:\n  s:\n    vip: {watch_grace: soon}\n")); err == nil {
		t.Fatal("bad duration accepted")
	}
}
