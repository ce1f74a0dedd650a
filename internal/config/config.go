// Package config reads pghook's own settings, /etc/pghook/pghook.yaml: a
// few global keys and one section per Patroni scope (a host can run several
// clusters). Every setting can also be given as a flag or a PGHOOK_…
// variable; those are applied by the CLI on top of what Load returns.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/pghook/pghook/internal/postinit"
	"github.com/pghook/pghook/internal/privilege"
	"github.com/pghook/pghook/netvip"
	"gopkg.in/yaml.v3"
)

// DefaultPath is where install writes the file.
const DefaultPath = "/etc/pghook/pghook.yaml"

// File is pghook.yaml.
type File struct {
	Path      string `yaml:"-"`
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
	Pgtab     string `yaml:"pgtab"`
	// VIPHelper is the file-capability copy of pghook that performs VIP
	// operations for an unprivileged callback.
	VIPHelper string `yaml:"vip_helper"`
	// RunDir holds the VIP watchers' control sockets (default /run/pghook,
	// created by the watcher's unit): a directory that only root and the
	// watcher's user may write.
	RunDir string `yaml:"run_dir"`
	// MetricsTextfileDir is node_exporter's textfile directory: callback,
	// backup and create-replica write their last run there (off when empty).
	MetricsTextfileDir string            `yaml:"metrics_textfile_dir"`
	Scopes             map[string]*Scope `yaml:"scopes"`
}

// DefaultRunDir is the default RunDir.
const DefaultRunDir = "/run/pghook"

// ControlDir is RunDir or its default.
func (f *File) ControlDir() string {
	if f.RunDir != "" {
		return f.RunDir
	}
	return DefaultRunDir
}

// DefaultVIPHelper is where the .deb installs the privileged VIP helper.
const DefaultVIPHelper = "/usr/lib/pghook/pghook-vip"

// Scope holds the settings of one Patroni cluster.
type Scope struct {
	// PatroniConfig is the path of this scope's patroni.yml.
	PatroniConfig string `yaml:"patroni_config"`
	// StandbyLeaderVIP makes a standby cluster's leader hold the VIP.
	StandbyLeaderVIP bool `yaml:"standby_leader_vip"`
	VIP              VIP  `yaml:"vip"`
	// PostInit is the one-time setup run by `pghook post-init`.
	PostInit PostInit `yaml:"post_init"`
	// CreateReplica configures `pghook create-replica`.
	CreateReplica CreateReplica `yaml:"create_replica"`
	// BackupDir is the shared-storage directory holding <scope>/<id>/
	// backups (`pghook backup`, create-replica, `backup list|verify|import`).
	BackupDir string `yaml:"backup_dir"`
}

// CreateReplica configures `pghook create-replica` for a scope.
type CreateReplica struct {
	// TablespaceMapping moves tablespaces when restoring: the backed-up
	// server's directory → this host's (like pg_basebackup's
	// --tablespace-mapping). The method section's tablespace_mapping wins.
	TablespaceMapping map[string]string `yaml:"tablespace_mapping"`
	// BackupDir is where create-replica looks for backups, when it differs
	// from the scope's backup_dir.
	BackupDir string `yaml:"backup_dir"`
}

// PostInit configures `pghook post-init`. Roles and databases are
// postinit's own types: one schema for each setting.
type PostInit struct {
	// RewindUser gets the grants pg_rewind needs; default: the rewind
	// user of patroni.yml. "-" skips it.
	RewindUser string `yaml:"rewind_user"`
	// Roles and Databases are made sure of, in this order (postinit's
	// types are their schema).
	Roles     []postinit.Role     `yaml:"roles"`
	Databases []postinit.Database `yaml:"databases"`
	// SQLDir holds *.sql files applied once each, in name order.
	SQLDir string `yaml:"sql_dir"`
}

// VIP configures the virtual IP of a scope: netvip's settings (backend,
// address or addresses, interface, label, pcs resource and node,
// announcements, announce_interval, takeover_wait, probe_timeout — their
// keys and defaults are documented on netvip.Settings) and what the
// reconciler and the dns/exec backends add.
type VIP struct {
	netvip.Settings `yaml:",inline"`

	// WatchInterval is the period of `pghook vip watch` (0: 300ms).
	WatchInterval time.Duration `yaml:"watch_interval"`
	// WatchGrace is how long `vip watch` keeps the VIP when neither
	// Patroni nor the DCS answers (0: 3s).
	WatchGrace time.Duration `yaml:"watch_grace"`
	// MetricsListen is where `vip watch` serves Prometheus metrics
	// (host:port, e.g. 127.0.0.1:9187; off when empty).
	MetricsListen string `yaml:"metrics_listen"`
	// DNS configures backend dns: an RFC 2136 record instead of an address.
	DNS DNS `yaml:"dns"`
	// Exec configures backend exec: commands that move the VIP (cloud APIs).
	Exec Exec `yaml:"exec"`
}

// Named reports whether the record of dns names a netlink VIP: backend
// netlink with dns settings. The VIP this node takes (its subnet's, with
// addresses) is held as usual and dns.name points at it.
func (v VIP) Named() bool { return v.Backend == "netlink" && v.DNS != (DNS{}) }

// ErrUnknownScope is returned by File.Scope for a scope with no section.
var ErrUnknownScope = errors.New("config: unknown scope")

// Load reads path. A missing file is an error only when required is true
// (the user named it); otherwise an empty configuration is returned, so a
// bare `pghook callback` still keeps the roster.
func Load(path string, required bool) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return &File{Path: path, Scopes: map[string]*Scope{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pghook config: %w", err)
	}
	return parseFile(path, b)
}

// parseFile parses the content b of the file at path.
func parseFile(path string, b []byte) (*File, error) {
	f, err := Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("pghook config %s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// LoadTrusted reads path as a process running with privileges its caller
// did not give it (the VIP helper) must: only when root alone can have
// written it and every directory above it (privilege.ReadTrusted), never
// through a symbolic link, never from procfs or sysfs, at most
// privilege.MaxTrustedSize bytes. The file must exist.
func LoadTrusted(path string) (*File, error) {
	b, err := privilege.ReadTrusted(path, 0)
	if err != nil {
		if errors.Is(err, privilege.ErrUntrusted) {
			return nil, fmt.Errorf("refusing pghook config: %w (it and every directory above it must be owned by root and writable by root alone: chown root:postgres, chmod 0640)", err)
		}
		return nil, fmt.Errorf("reading pghook config: %w", err)
	}
	return parseFile(path, b)
}

// Parse decodes pghook.yaml and checks it; unknown keys are errors (a typo
// must not silently disable the VIP).
func Parse(r io.Reader) (*File, error) {
	var f File
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var generic any
	if err := doc.Decode(&generic); err != nil && doc.Kind != 0 { // yaml.v3's limits on aliases, before the walk follows them
		return nil, err
	}
	if err := checkKeys(&doc, reflect.TypeOf(f), ""); err != nil {
		return nil, err
	}
	if err := doc.Decode(&f); err != nil && doc.Kind != 0 {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// One line: "yaml: line 3: cannot unmarshal …; …".
			return nil, fmt.Errorf("yaml: %s", strings.Join(te.Errors, "; "))
		}
		return nil, err
	}
	if f.Scopes == nil {
		f.Scopes = map[string]*Scope{}
	}
	if f.MetricsTextfileDir != "" && !filepath.IsAbs(f.MetricsTextfileDir) {
		return nil, fmt.Errorf("key metrics_textfile_dir: %q must be an absolute path, e.g. /var/lib/prometheus/node-exporter", f.MetricsTextfileDir)
	}
	if f.RunDir != "" && (!filepath.IsAbs(f.RunDir) || filepath.Clean(f.RunDir) != f.RunDir) {
		return nil, fmt.Errorf("key run_dir: %q must be a clean absolute path, e.g. %s", f.RunDir, DefaultRunDir)
	}
	for name, s := range f.Scopes {
		if s == nil {
			f.Scopes[name] = &Scope{}
			continue
		}
		for key, dir := range map[string]string{"backup_dir": s.BackupDir, "create_replica.backup_dir": s.CreateReplica.BackupDir} {
			if dir != "" && (!filepath.IsAbs(dir) || filepath.Clean(dir) != dir) {
				return nil, fmt.Errorf("key scopes.%s.%s: %q must be a clean absolute path, e.g. /var/lib/pghook/backups", name, key, dir)
			}
		}
		if err := s.VIP.Validate(); err != nil {
			return nil, fmt.Errorf("key scopes.%s.vip: %w", name, err)
		}
	}
	return &f, nil
}

// Validate checks the VIP settings for the chosen backend.
func (v VIP) Validate() error {
	switch v.Backend {
	case "", "none":
	case "netlink":
		if (v.Address == "" && len(v.Addresses) == 0) || v.Interface == "" {
			return errors.New("backend netlink needs address (CIDR) or addresses (one CIDR per subnet) and interface")
		}
		if v.Address != "" && !strings.Contains(v.Address, "/") {
			return fmt.Errorf("address %q needs a prefix length, e.g. %s/24", v.Address, v.Address)
		}
		if v.Named() {
			if err := v.DNS.validate(v); err != nil {
				return err
			}
		}
	case "pcs":
		if v.Resource == "" {
			return errors.New("backend pcs needs resource (the Pacemaker IPaddr2 resource name)")
		}
	case "dns":
		if err := v.DNS.validate(v); err != nil {
			return err
		}
	case "exec":
		if err := v.Exec.validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("backend %q: want none, netlink, pcs, dns or exec", v.Backend)
	}
	if err := v.checkAddresses(); err != nil {
		return err
	}
	if v.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(v.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen %q: want host:port, e.g. 127.0.0.1:9187", v.MetricsListen)
		}
	}
	if v.Announcements < 0 || v.Announcements > netvip.MaxAnnouncements {
		return fmt.Errorf("announcements %d: want 0 (the default, 5) to %d", v.Announcements, netvip.MaxAnnouncements)
	}
	if v.AnnounceInterval != 0 && (v.AnnounceInterval < netvip.MinAnnounceInterval || v.AnnounceInterval > netvip.MaxAnnounceInterval) {
		return fmt.Errorf("announce_interval %v: want %v to %v (0: the default, 1s)", v.AnnounceInterval, netvip.MinAnnounceInterval, netvip.MaxAnnounceInterval)
	}
	if v.AnnounceInterval < 0 || v.WatchInterval < 0 || v.WatchGrace < 0 {
		return errors.New("announce_interval, watch_interval and watch_grace must be >= 0")
	}
	return nil
}

// Scope returns the section of name. With no section for it, a File that
// configures other scopes returns nil and ErrUnknownScope naming the file
// and the key; an empty File returns an empty Scope (all defaults).
func (f *File) Scope(name string) (*Scope, error) {
	if s, ok := f.Scopes[name]; ok {
		return s, nil
	}
	if len(f.Scopes) == 0 {
		return &Scope{}, nil
	}
	known := make([]string, 0, len(f.Scopes))
	for k := range f.Scopes {
		known = append(known, k)
	}
	sort.Strings(known)
	return nil, fmt.Errorf("%w %q: %s has no key scopes.%s (it configures %s)", ErrUnknownScope, name, f.Path, name, strings.Join(known, ", "))
}
