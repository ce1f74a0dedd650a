// Package scope resolves a Patroni scope once per run: pghook's settings
// for it (pghook.yaml's section, then flags and PGHOOK_… variables), its
// patroni.yml (found once, and used only when it is for that scope), the
// view of its leader lock and its VIP backend stack (stack.go). The CLI
// turns flags into Overrides and hands the resulting Scope to the packages
// that act; no other package decides these.
package scope

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/dcs"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/replica"
	"github.com/rs/zerolog"
)

// Overrides are the per-scope settings given as flags or PGHOOK_…
// variables; nil means not given.
type Overrides struct {
	PatroniConfig    *string
	StandbyLeaderVIP *bool
	VIPBackend       *string
	VIPAddress       *string
	VIPInterface     *string
	VIPLabel         *string
	VIPResource      *string
	VIPNode          *string
}

// Merge is the one precedence rule of a scope's settings: a flag or
// variable (o) wins over pghook.yaml's section (sec), which wins over the
// defaults (the zero values). A VIP address given in o replaces the
// section's address list too.
func Merge(sec config.Scope, o Overrides) config.Scope {
	s := sec
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&s.PatroniConfig, o.PatroniConfig)
	if o.StandbyLeaderVIP != nil {
		s.StandbyLeaderVIP = *o.StandbyLeaderVIP
	}
	set(&s.VIP.Backend, o.VIPBackend)
	set(&s.VIP.Address, o.VIPAddress)
	set(&s.VIP.Interface, o.VIPInterface)
	set(&s.VIP.Label, o.VIPLabel)
	set(&s.VIP.Resource, o.VIPResource)
	set(&s.VIP.Node, o.VIPNode)
	if o.VIPAddress != nil {
		s.VIP.Addresses = nil // the flag names the VIP
	}
	return s
}

// FirstNonEmpty returns the first of v that is not blank: the precedence
// of a setting given in several places, most specific first.
func FirstNonEmpty(v ...string) string {
	for _, s := range v {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// ErrNoPatroniConfig means no patroni.yml was found for the scope.
var ErrNoPatroniConfig = errors.New("no patroni.yml found")

// OtherScopeError is a patroni.yml found for a scope that is another
// scope's: it is not used.
type OtherScopeError struct {
	Path        string // the file
	ConfigScope string // the scope it configures
	Scope       string // the scope asked for
}

func (e *OtherScopeError) Error() string {
	return fmt.Sprintf("%s is for scope %s, not %s", e.Path, e.ConfigScope, e.Scope)
}

// Resolver resolves scopes for one run of pghook.
type Resolver struct {
	Config *config.File
	Log    zerolog.Logger
	// Privileged is set in the VIP helper: patroni.yml only from its
	// root-owned config or the fixed default paths, never from its caller
	// (a parent process's command line); the VIP only with a DCS check;
	// netlink only; announcements from its own config.
	Privileged bool
	// PPID is the calling process, whose command line may name patroni.yml
	// (Patroni running a callback or a create_replica method); 0: none.
	PPID int

	mu     sync.Mutex
	loaded map[string]loadResult // patroni.yml by path: read once per run
}

type loadResult struct {
	cfg *patroni.Config
	err error
}

// Scope is a resolved scope.
type Scope struct {
	Name string
	// Settings are the merged settings (Merge). When Invalid is set, their
	// VIP is empty: nothing moves the VIP on a guess.
	Settings config.Scope
	// Invalid says why the scope's settings are unusable: pghook.yaml
	// configures other scopes only (config.ErrUnknownScope), or the VIP
	// settings do not validate. The roster and patroni.yml are still
	// resolved from what was given.
	Invalid error
	// PatroniPath is the patroni.yml found ("" for none); Patroni is it,
	// read and for this scope, else nil and PatroniErr says why
	// (ErrNoPatroniConfig, *OtherScopeError, or the read or parse error).
	PatroniPath string
	Patroni     *patroni.Config
	PatroniErr  error
	// HelperPath is the VIP helper for this run (vip_helper, else the
	// package's).
	HelperPath string
	controlDir string
	configPath string
}

// Resolve resolves scope name with the overrides o.
func (r *Resolver) Resolve(name string, o Overrides) *Scope {
	s := &Scope{Name: name, configPath: r.Config.Path, controlDir: r.Config.ControlDir(),
		HelperPath: FirstNonEmpty(r.Config.VIPHelper, config.DefaultVIPHelper)}
	sec, err := r.Config.Scope(name)
	if err != nil {
		sec = &config.Scope{}
	}
	s.Settings = Merge(*sec, o)
	if verr := s.Settings.VIP.Validate(); verr != nil {
		s.Invalid = fmt.Errorf("VIP settings of scope %s: %w", name, verr)
	} else if err != nil {
		s.Invalid = err
	}
	if s.Invalid != nil {
		s.Settings.VIP = config.VIP{}
	}
	s.PatroniPath, s.Patroni, s.PatroniErr = r.patroniFor(name, s.Settings.PatroniConfig)
	return s
}

// patroniFor finds, reads and checks name's patroni.yml: the one place
// that decides whether a patroni.yml is this scope's.
func (r *Resolver) patroniFor(name, configured string) (string, *patroni.Config, error) {
	ppid := r.PPID
	if r.Privileged {
		ppid = 0
	}
	pc := patroni.FindConfig(name, configured, ppid)
	if pc == "" {
		return "", nil, fmt.Errorf("%w for scope %s", ErrNoPatroniConfig, name)
	}
	cfg, err := r.load(pc)
	if err != nil {
		return pc, nil, err
	}
	if name != "" && cfg.Scope != name {
		return pc, nil, &OtherScopeError{Path: pc, ConfigScope: cfg.Scope, Scope: name}
	}
	return pc, cfg, nil
}

// CallingPatroni returns the patroni.yml of the calling Patroni (or the
// one configured), whatever its scope: how post-init learns its scope.
func (r *Resolver) CallingPatroni(configured string) (*patroni.Config, error) {
	_, cfg, err := r.patroniFor("", configured)
	return cfg, err
}

// load reads patroni.yml at path once per run; status reads several
// scopes' at once.
func (r *Resolver) load(path string) (*patroni.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.loaded[path]; ok {
		return l.cfg, l.err
	}
	cfg, err := patroni.Load(path)
	if r.loaded == nil {
		r.loaded = map[string]loadResult{}
	}
	r.loaded[path] = loadResult{cfg, err}
	return cfg, err
}

// LeaderView is the view of s's leader lock, from its patroni.yml: the one
// place pghook builds it. The view is an interface (hooks.LeaderView) so
// that the DCS client behind it can change without its users.
func (s *Scope) LeaderView(timeout time.Duration) (hooks.LeaderView, error) {
	if s.Patroni == nil {
		return nil, s.PatroniErr
	}
	v, err := dcs.NewLeaderReader(s.Patroni, timeout)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// MemberName is this node's Patroni name (patroni.yml), else the host name.
func (s *Scope) MemberName() string {
	if s.Patroni != nil && s.Patroni.Name != "" {
		return s.Patroni.Name
	}
	h, _ := os.Hostname()
	return h
}

// ConfigDir is patroni.yml's postgresql.config_dir when it is set and is
// not the data directory, else "": what a backup saves beside the data.
func (s *Scope) ConfigDir() string {
	cfg := s.Patroni
	if cfg == nil || cfg.Postgresql.ConfigDir == "" {
		return ""
	}
	cd, dd := filepath.Clean(cfg.Postgresql.ConfigDir), filepath.Clean(cfg.Postgresql.DataDir)
	if cd == dd {
		return ""
	}
	return cd
}

// ClusterSystemID returns how a restore reads the cluster's system
// identifier from the DCS (Patroni's initialize key), or nil when pghook
// cannot read s's DCS (then the leader alone tells the cluster).
func (s *Scope) ClusterSystemID() func(ctx context.Context) (uint64, bool, error) {
	cfg := s.Patroni
	if cfg == nil || (cfg.DCS() != "etcd3" && cfg.DCS() != "etcd") {
		return nil
	}
	return func(ctx context.Context) (uint64, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, found, err := dcs.ReadKey(ctx, cfg, 3*time.Second, "initialize")
		if err != nil || !found {
			return 0, found, err
		}
		id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("initialize key %q is not a system identifier", v)
		}
		return id, true, nil
	}
}

// BackupDir resolves the backup root of scope for the backup commands:
// flag (--backup-dir or PGHOOK_BACKUP_DIR), pghook.yaml's
// scopes.S.backup_dir, the default.
func BackupDir(cfg *config.File, scope, flag string) string {
	var sec string
	if cfg != nil {
		if s, ok := cfg.Scopes[scope]; ok && s != nil {
			sec = s.BackupDir
		}
	}
	return FirstNonEmpty(flag, sec, replica.DefaultBackupDir)
}

// RestoreBackupDir resolves create-replica's backup root: the method
// section's backup_dir, PGHOOK_BACKUP_DIR (env),
// scopes.S.create_replica.backup_dir, scopes.S.backup_dir, the default.
func RestoreBackupDir(cfg *config.File, scope, method, env string) string {
	var sec string
	if cfg != nil {
		if s, ok := cfg.Scopes[scope]; ok && s != nil {
			sec = s.CreateReplica.BackupDir
		}
	}
	return FirstNonEmpty(method, env, sec, BackupDir(cfg, scope, ""))
}
