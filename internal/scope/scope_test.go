package scope

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

func ptr[T any](v T) *T { return &v }

func TestMerge(t *testing.T) {
	file := config.Scope{PatroniConfig: "/etc/patroni/main.yml", StandbyLeaderVIP: true,
		VIP: config.VIP{Settings: netvip.Settings{Backend: "netlink", Addresses: []string{"10.0.0.100/24", "10.1.0.100/24"}, Interface: "eth0", Label: "vip"}}}
	tests := []struct {
		name string
		sec  config.Scope
		o    Overrides
		want config.Scope
	}{
		{"nothing given: the file", file, Overrides{}, file},
		{"empty file, nothing given: defaults", config.Scope{}, Overrides{}, config.Scope{}},
		{"a flag wins over the file", file, Overrides{PatroniConfig: ptr("/tmp/p.yml"), VIPInterface: ptr("eth1")},
			func() config.Scope {
				s := file
				s.PatroniConfig, s.VIP.Interface = "/tmp/p.yml", "eth1"
				return s
			}()},
		{"an address flag replaces the file's address list", file, Overrides{VIPAddress: ptr("10.0.0.7/24")},
			func() config.Scope {
				s := file
				s.VIP.Address, s.VIP.Addresses = "10.0.0.7/24", nil
				return s
			}()},
		{"a flag set to false wins over true", file, Overrides{StandbyLeaderVIP: ptr(false)},
			func() config.Scope { s := file; s.StandbyLeaderVIP = false; return s }()},
		{"a flag set empty clears the file's value", file, Overrides{VIPLabel: ptr("")},
			func() config.Scope { s := file; s.VIP.Label = ""; return s }()},
		{"flags alone", config.Scope{}, Overrides{VIPBackend: ptr("pcs"), VIPResource: ptr("vip"), VIPNode: ptr("n1")},
			config.Scope{VIP: config.VIP{Settings: netvip.Settings{Backend: "pcs", Resource: "vip", Node: "n1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Merge(tt.sec, tt.o); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Merge = %+v\nwant    %+v", got, tt.want)
			}
		})
	}
	if len(file.VIP.Addresses) != 2 {
		t.Errorf("Merge changed the file's section: %v", file.VIP.Addresses)
	}
}

func TestFirstNonEmpty(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"", "b"}, "b"},
		{[]string{"  ", "b"}, "b"},
		{[]string{"a", "b"}, "a"},
		{[]string{"", ""}, ""},
	}
	for _, tt := range tests {
		if got := FirstNonEmpty(tt.in...); got != tt.want {
			t.Errorf("FirstNonEmpty(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// writePatroni writes a patroni.yml of scope (and name n1) into dir.
func writePatroni(t *testing.T, dir, file, scope string) string {
	t.Helper()
	p := filepath.Join(dir, file)
	body := fmt.Sprintf("scope: %s\nname: n1\npostgresql: {data_dir: /d, config_dir: /etc/pg}\n", scope)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	mine := writePatroni(t, dir, "main.yml", "main")
	other := writePatroni(t, dir, "other.yml", "other")
	broken := filepath.Join(dir, "broken.yml")
	os.WriteFile(broken, []byte("scope: main\n"), 0o600)
	netlink := config.VIP{Settings: netvip.Settings{Backend: "netlink", Address: "192.0.2.10/24", Interface: "lo"}}
	file := &config.File{Path: "/etc/pghook/pghook.yaml", Scopes: map[string]*config.Scope{
		"main": {PatroniConfig: mine, VIP: netlink},
		"mis":  {PatroniConfig: other},
		"bad":  {PatroniConfig: broken},
	}}
	tests := []struct {
		name        string
		file        *config.File
		scope       string
		o           Overrides
		wantInvalid error  // errors.Is target; nil: valid
		invalidText string // substring of Invalid
		wantPatroni bool
		patroniErr  func(error) bool
		wantBackend string
	}{
		{name: "configured and for the scope", file: file, scope: "main", wantPatroni: true, wantBackend: "netlink"},
		{name: "another scope's patroni.yml is not used", file: file, scope: "mis",
			patroniErr: func(err error) bool {
				var o *OtherScopeError
				return errors.As(err, &o) && o.ConfigScope == "other" && o.Scope == "mis" && strings.Contains(err.Error(), "is for scope other, not mis")
			}},
		{name: "an unreadable patroni.yml says why", file: file, scope: "bad",
			patroniErr: func(err error) bool { return err != nil && strings.Contains(err.Error(), "name") }},
		{name: "no patroni.yml", file: &config.File{Scopes: map[string]*config.Scope{}}, scope: "nowhere-" + t.Name(),
			patroniErr: func(err error) bool { return errors.Is(err, ErrNoPatroniConfig) }},
		{name: "unknown scope: invalid, VIP empty, patroni.yml from the flag", file: file, scope: "x", o: Overrides{PatroniConfig: &other},
			wantInvalid: config.ErrUnknownScope, invalidText: "has no key scopes.x",
			patroniErr: func(err error) bool { var o *OtherScopeError; return errors.As(err, &o) }},
		{name: "flags make the VIP invalid: VIP left empty, the rest resolved", file: file, scope: "main", o: Overrides{VIPBackend: ptr("bogus")},
			invalidText: `VIP settings of scope main: backend "bogus"`, wantPatroni: true},
		{name: "an empty file: defaults, valid", file: &config.File{Scopes: map[string]*config.Scope{}}, scope: "main", o: Overrides{PatroniConfig: &mine},
			wantPatroni: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Resolver{Config: tt.file, Log: zerolog.Nop()}
			s := r.Resolve(tt.scope, tt.o)
			switch {
			case tt.wantInvalid == nil && tt.invalidText == "" && s.Invalid != nil:
				t.Fatalf("Invalid = %v, want none", s.Invalid)
			case tt.wantInvalid != nil && !errors.Is(s.Invalid, tt.wantInvalid):
				t.Fatalf("Invalid = %v, want %v", s.Invalid, tt.wantInvalid)
			case tt.invalidText != "" && (s.Invalid == nil || !strings.Contains(s.Invalid.Error(), tt.invalidText)):
				t.Fatalf("Invalid = %v, want it to say %q", s.Invalid, tt.invalidText)
			}
			if s.Invalid != nil && !reflect.DeepEqual(s.Settings.VIP, config.VIP{}) {
				t.Errorf("invalid scope keeps VIP settings %+v", s.Settings.VIP)
			}
			if got := s.Patroni != nil; got != tt.wantPatroni {
				t.Fatalf("Patroni read = %v (err %v), want %v", got, s.PatroniErr, tt.wantPatroni)
			}
			if s.Patroni != nil && (s.Patroni.Scope != tt.scope || s.PatroniErr != nil) {
				t.Errorf("Patroni of scope %q with err %v", s.Patroni.Scope, s.PatroniErr)
			}
			if tt.patroniErr != nil && !tt.patroniErr(s.PatroniErr) {
				t.Errorf("PatroniErr = %v", s.PatroniErr)
			}
			if s.Settings.VIP.Backend != tt.wantBackend {
				t.Errorf("backend %q, want %q", s.Settings.VIP.Backend, tt.wantBackend)
			}
		})
	}
}

func TestScopeFacts(t *testing.T) {
	dir := t.TempDir()
	sameDir := filepath.Join(dir, "same.yml")
	os.WriteFile(sameDir, []byte("scope: s\nname: n1\npostgresql: {data_dir: /d, config_dir: /d/}\n"), 0o600)
	etcd := filepath.Join(dir, "etcd.yml")
	os.WriteFile(etcd, []byte("scope: s\nname: n2\netcd3: {hosts: 127.0.0.1:1}\npostgresql: {data_dir: /d, config_dir: /etc/pg}\n"), 0o600)
	host, _ := os.Hostname()
	tests := []struct {
		name          string
		path          string
		wantConfigDir string
		wantMember    string
		wantSysID     bool
	}{
		{"config_dir outside the data directory, no DCS pghook reads", writePatroni(t, dir, "s.yml", "s"), "/etc/pg", "n1", false},
		{"config_dir is the data directory", sameDir, "", "n1", false},
		{"etcd3: the initialize key is read", etcd, "/etc/pg", "n2", true},
		{"no patroni.yml: the host name", filepath.Join(dir, "missing.yml"), "", host, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Resolver{Config: &config.File{Scopes: map[string]*config.Scope{}}, Log: zerolog.Nop()}
			s := r.Resolve("s", Overrides{PatroniConfig: &tt.path})
			if got := s.ConfigDir(); got != tt.wantConfigDir {
				t.Errorf("ConfigDir = %q, want %q", got, tt.wantConfigDir)
			}
			if got := s.MemberName(); got != tt.wantMember {
				t.Errorf("MemberName = %q, want %q", got, tt.wantMember)
			}
			if got := s.ClusterSystemID() != nil; got != tt.wantSysID {
				t.Errorf("ClusterSystemID set = %v, want %v", got, tt.wantSysID)
			}
		})
	}
}

func TestBackupDirs(t *testing.T) {
	cfg := &config.File{Scopes: map[string]*config.Scope{
		"a": {BackupDir: "/srv/a", CreateReplica: config.CreateReplica{BackupDir: "/srv/a-restore"}},
		"b": {BackupDir: "/srv/b"},
	}}
	tests := []struct {
		name                      string
		scope, flag, method, env  string
		wantBackup, wantRestoreOf string
	}{
		{"section", "a", "", "", "", "/srv/a", "/srv/a-restore"},
		{"flag and method win", "a", "/f", "/m", "/e", "/f", "/m"},
		{"env before the section for restore", "a", "", "", "/e", "/srv/a", "/e"},
		{"restore falls back to backup_dir", "b", "", "", "", "/srv/b", "/srv/b"},
		{"default", "c", "", "", "", "/var/lib/pghook/backups", "/var/lib/pghook/backups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BackupDir(cfg, tt.scope, tt.flag); got != tt.wantBackup {
				t.Errorf("BackupDir = %q, want %q", got, tt.wantBackup)
			}
			if got := RestoreBackupDir(cfg, tt.scope, tt.method, tt.env); got != tt.wantRestoreOf {
				t.Errorf("RestoreBackupDir = %q, want %q", got, tt.wantRestoreOf)
			}
		})
	}
}

// status resolves several scopes at once: the per-run cache of patroni.yml
// must take that (a concurrent map write is a fatal error).
func TestLoadConcurrently(t *testing.T) {
	dir := t.TempDir()
	r := &Resolver{}
	var wg sync.WaitGroup
	for i := range 64 {
		p := writePatroni(t, dir, fmt.Sprintf("p%d.yml", i), fmt.Sprintf("s%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := r.load(p); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(r.loaded) != 64 {
		t.Errorf("%d cached, want 64", len(r.loaded))
	}
}
