// Package backupops runs the backup commands for the CLI: take (with the
// scheduled node choice), list, verify and import, and their output. The
// work itself is replica's; this package resolves where backups live
// (internal/scope), which backups a command means, and how each result is
// shown, with the exit codes create-replica documents.
package backupops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/exitcode"
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/scope"
	"github.com/pghook/pghook/replica"
	"github.com/rs/zerolog"
)

// DirHelp says where backups live; the commands' help ends with it.
const DirHelp = `Where backups live, first found: --backup-dir (PGHOOK_BACKUP_DIR);
pghook.yaml's scopes.SCOPE.backup_dir; ` + replica.DefaultBackupDir + `.
create-replica looks first at its method section's backup_dir, then
PGHOOK_BACKUP_DIR, scopes.SCOPE.create_replica.backup_dir,
scopes.SCOPE.backup_dir, the default. A backup is BACKUP_DIR/SCOPE/ID/.`

// Env is what every backup command is given.
type Env struct {
	Config *config.File
	Log    zerolog.Logger
	Out    io.Writer
	// BackupDirEnv is PGHOOK_BACKUP_DIR, for the commands that parse their
	// own flags.
	BackupDirEnv string
}

func exitWith(code replica.ExitCode, format string, a ...any) error {
	return exitcode.New(int(code), format, a...)
}

// TakeOptions are `pghook backup`'s flags.
type TakeOptions struct {
	Scope, BackupDir, Host, User, DBName, Compression, PgBaseBackup string
	Port, Keep                                                      int
	OlderThan                                                       time.Duration
	// ConfigDir: "" from patroni.yml, "-" none.
	ConfigDir     string
	PatroniConfig string
	Scheduled     bool
	SkipWithin    time.Duration
}

// Take runs `pghook backup` and prints the backup's directory.
func Take(ctx context.Context, e Env, o TakeOptions) error {
	if o.Scope == "" {
		return exitcode.Usagef("backup: --scope is required (see pghook backup --help)")
	}
	if strings.Contains(strings.ToLower(o.DBName), "password") {
		return exitcode.Usagef("backup: put the password in PGPASSFILE, not in --dbname")
	}
	log := e.Log.With().Str("action", "backup").Logger()
	r := &scope.Resolver{Config: e.Config, Log: e.Log}
	var ov scope.Overrides
	if o.PatroniConfig != "" {
		ov.PatroniConfig = &o.PatroniConfig
	}
	s := r.Resolve(o.Scope, ov)
	configDir := o.ConfigDir
	if configDir == "" {
		var other *scope.OtherScopeError
		if s.PatroniErr != nil && !errors.Is(s.PatroniErr, scope.ErrNoPatroniConfig) && !errors.As(s.PatroniErr, &other) {
			log.Warn().Err(s.PatroniErr).Msg("reading Patroni config for config_dir; no configuration files saved")
		}
		configDir = s.ConfigDir()
	}
	if configDir == "-" {
		configDir = ""
	}
	dir := scope.BackupDir(e.Config, o.Scope, o.BackupDir)
	host, port, user := o.Host, o.Port, o.User
	if o.Scheduled {
		if m, recent := replica.RecentBackup(dir, o.Scope, o.SkipWithin); recent {
			log.Info().Str("scope", o.Scope).Str("backup_id", m.ID).Msg("scheduled backup: the newest backup is recent enough; nothing to do")
			return nil
		}
		me, chosen, h, p, u, err := scheduledNode(ctx, e.Log, s)
		if err != nil {
			return exitWith(replica.ExitFailure, "backup --scheduled: %s", err)
		}
		if me != chosen {
			log.Info().Str("scope", o.Scope).Str("node", me).Str("chosen", chosen).Msg("scheduled backup: another node takes it")
			return nil
		}
		host, port, user = scope.FirstNonEmpty(host, h), max(port, p), scope.FirstNonEmpty(user, u)
	}
	m, err := replica.Backup(ctx, replica.BackupOptions{
		Dir: dir, Scope: o.Scope, ConnString: o.DBName,
		Host: host, Port: port, User: user,
		Compression: o.Compression, Keep: o.Keep, OlderThan: o.OlderThan,
		PgBaseBackup: o.PgBaseBackup, ConfigDir: configDir, Log: log,
	})
	if err != nil {
		metrics.Record(e.Config.MetricsTextfileDir, log, "backup_"+metrics.FileName(o.Scope)+"_failure", metrics.BackupFailure(o.Scope, time.Now()))
		return exitWith(replica.CodeOf(err), "backup: %s", err)
	}
	metrics.Record(e.Config.MetricsTextfileDir, log, "backup_"+metrics.FileName(o.Scope), metrics.Backup(o.Scope, m.Compression, time.Now(),
		time.Duration(m.TookSeconds*float64(time.Second)), m.StoredBytes))
	fmt.Fprintln(e.Out, m.Dir)
	return nil
}

// scheduledNode asks this node's Patroni for the cluster and returns this
// node's name, the node chosen to take the backup, and this node's
// PostgreSQL host, port and replication user.
func scheduledNode(ctx context.Context, log zerolog.Logger, s *scope.Scope) (me, chosen, host string, port int, user string, err error) {
	cfg := s.Patroni
	if errors.Is(s.PatroniErr, scope.ErrNoPatroniConfig) {
		return "", "", "", 0, "", fmt.Errorf("no patroni.yml for scope %s (--patroni-config, or pghook.yaml's scopes.%s.patroni_config)", s.Name, s.Name)
	}
	if cfg == nil {
		return "", "", "", 0, "", s.PatroniErr
	}
	rest, err := cfg.RestClient(5 * time.Second)
	if err != nil {
		return "", "", "", 0, "", err
	}
	defer rest.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := rest.Cluster(cctx)
	if err != nil {
		return "", "", "", 0, "", fmt.Errorf("asking Patroni (%s) for the cluster: %w", rest.Base(), err)
	}
	var ms []replica.Member
	for _, m := range cl.Members {
		ms = append(ms, replica.Member{Name: m.Name, Role: m.Role, State: m.State, Lag: m.Lag})
		if m.Name == cfg.Name {
			host, port = m.Host, m.Port
		}
	}
	chosen, why := replica.ChooseBackupNode(ms)
	if chosen == "" {
		return cfg.Name, "", "", 0, "", fmt.Errorf("no node can take the backup: %s", why)
	}
	log.Debug().Str("chosen", chosen).Str("why", why).Msg("scheduled backup")
	return cfg.Name, chosen, host, port, cfg.UserName("replication"), nil
}

// listedBackup is one line of backup list.
type listedBackup struct {
	Scope       string  `json:"scope"`
	ID          string  `json:"id"`
	Dir         string  `json:"dir"`
	CreatedAt   string  `json:"created_at"`
	AgeSeconds  float64 `json:"age_seconds"`
	StoredBytes int64   `json:"stored_bytes"`
	DataBytes   int64   `json:"data_bytes"`
	Compression string  `json:"compression"`
	SystemID    string  `json:"system_identifier"`
	Timeline    uint32  `json:"timeline"`
	StartLSN    string  `json:"start_lsn"`
	EndLSN      string  `json:"end_lsn"`
	Source      string  `json:"source,omitempty"`
	// LeaderHasWAL is "yes", "no" or "unknown" (no --connstring, or the
	// check failed: WALError says why).
	LeaderHasWAL string `json:"leader_has_wal"`
	WALError     string `json:"wal_error,omitempty"`
}

// ListOptions are `pghook backup list`'s flags.
type ListOptions struct {
	Scope, BackupDir, ConnString string
	JSON                         bool
}

// List prints the published backups, newest first.
func List(ctx context.Context, e Env, o ListOptions) error {
	if strings.Contains(strings.ToLower(o.ConnString), "password") {
		return exitcode.Usagef("backup list: put the password in PGPASSFILE, not in --connstring")
	}
	scopes := []string{o.Scope}
	if scopes[0] == "" {
		var err error
		dirs := map[string]bool{}
		root := scope.BackupDir(e.Config, "", o.BackupDir)
		if scopes, err = replica.Scopes(root); err != nil {
			return exitWith(replica.ExitIO, "backup list: %s", err)
		}
		for _, s := range scopes {
			dirs[s] = true
		}
		if e.Config != nil {
			for s := range e.Config.Scopes {
				if !dirs[s] {
					scopes = append(scopes, s)
				}
			}
		}
		sort.Strings(scopes)
	}
	var out []listedBackup
	var skipped []replica.Skipped
	for _, sc := range scopes {
		backups, sk, err := replica.Scan(scope.BackupDir(e.Config, sc, o.BackupDir), sc)
		if err != nil {
			return exitWith(replica.CodeOf(err), "backup list: %s", err)
		}
		skipped = append(skipped, sk...)
		for _, m := range backups {
			l := listedBackup{Scope: sc, ID: m.ID, Dir: m.Dir, CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339),
				AgeSeconds: time.Since(m.CreatedAt).Round(time.Second).Seconds(), StoredBytes: m.StoredBytes, DataBytes: m.DataBytes,
				Compression: m.Compression, SystemID: strconv.FormatUint(m.SystemID, 10), Timeline: m.Timeline,
				StartLSN: m.StartLSN, EndLSN: m.EndLSN, Source: m.Source, LeaderHasWAL: "unknown"}
			if cs := o.ConnString; cs != "" {
				wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				ok, err := replica.LeaderHasWAL(wctx, cs, m)
				cancel()
				switch {
				case err != nil:
					l.WALError = err.Error()
				case ok:
					l.LeaderHasWAL = "yes"
				default:
					l.LeaderHasWAL = "no"
				}
			}
			out = append(out, l)
		}
	}
	for _, s := range skipped {
		e.Log.Warn().Str("dir", s.Dir).Str("reason", s.Reason).Msg("not a published backup")
	}
	if o.JSON {
		if out == nil {
			out = []listedBackup{}
		}
		b, _ := json.MarshalIndent(map[string]any{"backups": out, "skipped": skippedJSON(skipped)}, "", "  ")
		fmt.Fprintln(e.Out, string(b))
		return nil
	}
	printBackups(e.Out, out)
	return nil
}

func skippedJSON(sk []replica.Skipped) []map[string]string {
	out := []map[string]string{}
	for _, s := range sk {
		out = append(out, map[string]string{"dir": s.Dir, "reason": s.Reason})
	}
	return out
}

func printBackups(w io.Writer, list []listedBackup) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tID\tAGE\tSIZE\tCOMPRESSION\tSYSTEM ID\tTL\tLSN RANGE\tLEADER HAS WAL")
	for _, l := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s-%s\t%s\n", l.Scope, l.ID, age(time.Duration(l.AgeSeconds)*time.Second),
			humanBytes(l.StoredBytes), l.Compression, l.SystemID, l.Timeline, l.StartLSN, l.EndLSN, l.LeaderHasWAL)
	}
	tw.Flush()
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", v, "kMGTP"[i-1])
}

// Verify runs `pghook backup verify` on its arguments (flags may follow
// the ID).
func Verify(ctx context.Context, e Env, argv []string) error {
	fl, args, err := interleaved(argv, map[string]bool{"all": true}, map[string]bool{"scope": true, "backup-dir": true})
	if err != nil || len(args) > 1 || (fl["all"] != "" && len(args) > 0) {
		return exitcode.Usagef("backup verify: %s (want [ID|DIR|--all] [--scope S]; see pghook backup verify --help)", firstErr(err, "too many arguments"))
	}
	flagDir := scope.FirstNonEmpty(fl["backup-dir"], e.BackupDirEnv)
	sc := fl["scope"]
	log := e.Log.With().Str("action", "backup_verify").Logger()

	var targets []replica.Meta
	switch {
	case len(args) == 1 && strings.Contains(args[0], "/"):
		targets = append(targets, replica.Meta{ID: args[0], Dir: args[0]})
	default:
		scopes := []string{sc}
		if sc == "" {
			if fl["all"] == "" && len(args) == 0 {
				return exitcode.Usagef("backup verify: name a backup ID, --all, or --scope S for its newest backup")
			}
			if scopes, err = replica.Scopes(scope.BackupDir(e.Config, "", flagDir)); err != nil {
				return exitWith(replica.ExitIO, "backup verify: %s", err)
			}
		}
		for _, s := range scopes {
			all, err := replica.List(scope.BackupDir(e.Config, s, flagDir), s)
			if err != nil {
				return exitWith(replica.CodeOf(err), "backup verify: %s", err)
			}
			for i, m := range all {
				if (len(args) == 1 && m.ID == args[0]) || fl["all"] != "" || (len(args) == 0 && i == 0) {
					targets = append(targets, m)
				}
			}
		}
		if len(targets) == 0 {
			what := "no published backup"
			if len(args) == 1 {
				what = "no published backup " + args[0]
			}
			return exitWith(replica.ExitNoBackup, "backup verify: %s (see pghook backup list)", what)
		}
	}
	first := replica.ExitOK
	var firstErrMsg string
	for _, m := range targets {
		res, err := replica.VerifyBackup(ctx, m.Dir, nil, log.With().Str("backup", m.Dir).Logger())
		if err != nil {
			code := replica.CodeOf(err)
			log.Error().Err(err).Str("backup_id", m.ID).Int("exit_code", int(code)).Str("cause", code.String()).Msg("backup failed verification")
			fmt.Fprintf(e.Out, "%s\texit %d (%s): %v\n", m.ID, code, code, err)
			if first == replica.ExitOK {
				first, firstErrMsg = code, err.Error()
			}
			continue
		}
		fmt.Fprintf(e.Out, "%s\tok: %d WAL records %s..%s, %s read in %.1fs\n", m.ID, res.WALRecords, res.Backup.StartLSN, res.Backup.EndLSN,
			humanBytes(res.Bytes), res.Took.Seconds())
	}
	if first != replica.ExitOK {
		return exitWith(first, "backup verify: %s", firstErrMsg)
	}
	return nil
}

// Import runs `pghook backup import` on its arguments (flags may follow
// DIR) and prints the published backup's directory.
func Import(ctx context.Context, e Env, argv []string) error {
	fl, args, err := interleaved(argv, map[string]bool{"move": true}, map[string]bool{"scope": true, "backup-dir": true, "connstring": true})
	switch {
	case err != nil:
		return exitcode.Usagef("backup import: %v (see pghook backup import --help)", err)
	case len(args) != 1:
		return exitcode.Usagef("backup import: want one DIR, got %d arguments (see pghook backup import --help)", len(args))
	case fl["scope"] == "":
		return exitcode.Usagef("backup import: --scope is required")
	case strings.Contains(strings.ToLower(fl["connstring"]), "password"):
		return exitcode.Usagef("backup import: put the password in PGPASSFILE, not in --connstring")
	}
	log := e.Log.With().Str("action", "backup_import").Logger()
	var sysid uint64
	if cs := fl["connstring"]; cs != "" {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		si, err := replica.IdentifyLeader(dctx, cs)
		cancel()
		if err != nil {
			return exitWith(replica.ExitOtherCluster, "backup import: %s", err)
		}
		sysid = si.SystemID
	}
	m, err := replica.Import(ctx, replica.ImportOptions{
		Dir: scope.BackupDir(e.Config, fl["scope"], scope.FirstNonEmpty(fl["backup-dir"], e.BackupDirEnv)), Scope: fl["scope"],
		Source: args[0], Move: fl["move"] != "", SystemID: sysid, Log: log,
	})
	if err != nil {
		return exitWith(replica.CodeOf(err), "backup import: %s", err)
	}
	fmt.Fprintln(e.Out, m.Dir)
	return nil
}

// HelpAsked reports whether a command that parses its own flags was asked
// for help.
func HelpAsked(args []string) bool {
	for _, a := range args {
		if a == "--help" || a == "-h" {
			return true
		}
	}
	return false
}

// interleaved parses args in which flags may come after positional
// arguments: --name=value, --name value (names in values), --name (names
// in bools). "--" ends the flags.
func interleaved(args []string, bools, values map[string]bool) (map[string]string, []string, error) {
	fl := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			pos = append(pos, arg)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch {
		case bools[name]:
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					return nil, nil, fmt.Errorf("--%s=%s: want true or false", name, val)
				}
				if !b {
					continue
				}
			}
			fl[name] = "true"
		case values[name]:
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, fmt.Errorf("--%s needs a value", name)
				}
				i++
				val = args[i]
			}
			fl[name] = val
		default:
			return nil, nil, fmt.Errorf("unknown flag %s", arg)
		}
	}
	return fl, pos, nil
}

func firstErr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}
