package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/replica"
	"github.com/urfave/cli/v2"
)

const backupDirHelp = `Where backups live, first found: --backup-dir (PGHOOK_BACKUP_DIR);
pghook.yaml's scopes.SCOPE.backup_dir; ` + replica.DefaultBackupDir + `.
create-replica looks first at its method section's backup_dir, then
PGHOOK_BACKUP_DIR, scopes.SCOPE.create_replica.backup_dir,
scopes.SCOPE.backup_dir, the default. A backup is BACKUP_DIR/SCOPE/ID/.`

// backupDir resolves the backup root of scope for the backup commands:
// the flag (or PGHOOK_BACKUP_DIR), pghook.yaml's scopes.S.backup_dir, the
// default.
func (a *app) backupDir(scope, flag string) string {
	if flag != "" {
		return flag
	}
	if a.cfg != nil {
		if s, ok := a.cfg.Scopes[scope]; ok && s != nil && s.BackupDir != "" {
			return s.BackupDir
		}
	}
	return replica.DefaultBackupDir
}

// restoreBackupDir resolves create-replica's backup root: the method
// section's backup_dir, PGHOOK_BACKUP_DIR, scopes.S.create_replica.backup_dir,
// scopes.S.backup_dir, the default.
func (a *app) restoreBackupDir(scope, method string) string {
	if method != "" {
		return method
	}
	if env := os.Getenv("PGHOOK_BACKUP_DIR"); env != "" {
		return env
	}
	if a.cfg != nil {
		if s, ok := a.cfg.Scopes[scope]; ok && s != nil && s.CreateReplica.BackupDir != "" {
			return s.CreateReplica.BackupDir
		}
	}
	return a.backupDir(scope, "")
}

func (a *app) backupCommand() *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "take a pg_basebackup into shared storage, published atomically (list, verify, import: see below)",
		Description: "Runs pg_basebackup -F t -X stream -c fast with a CRC32C manifest and client-side\n" +
			"compression into BACKUP_DIR/SCOPE/ID.partial, checks it, writes pghook.json,\n" +
			"fsyncs and renames it to BACKUP_DIR/SCOPE/ID, then applies retention (the newest\n" +
			"backup and any backup a restore is reading are never removed). The password comes\n" +
			"from PGPASSFILE or ~/.pgpass. Prints the backup's directory.\n\n" + backupDirHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scope", Usage: "Patroni scope the backup belongs to (required)"},
			&cli.StringFlag{Name: "backup-dir", Usage: "backup root `DIR` (default: pghook.yaml's scopes.SCOPE.backup_dir, else " + replica.DefaultBackupDir + ")", EnvVars: []string{"PGHOOK_BACKUP_DIR"}},
			&cli.StringFlag{Name: "host", Usage: "server host or socket directory (default: libpq's)"},
			&cli.IntFlag{Name: "port", Usage: "server port (default: libpq's)"},
			&cli.StringFlag{Name: "user", Usage: "replication user (default: libpq's)"},
			&cli.StringFlag{Name: "dbname", Usage: "libpq connection `STRING` (no password: use PGPASSFILE)"},
			&cli.StringFlag{Name: "compression", Usage: "zstd, lz4, gzip or none (client-side)", Value: "zstd"},
			&cli.IntFlag{Name: "keep", Usage: "keep the `N` newest backups of the scope (0: all)"},
			&cli.DurationFlag{Name: "older-than", Usage: "also remove backups older than this (0: no limit)"},
			&cli.StringFlag{Name: "pg-basebackup", Usage: "pg_basebackup binary", Value: replica.DefaultPgBaseBackup},
			&cli.StringFlag{Name: "config-dir", Usage: "PostgreSQL's configuration `DIR` outside the data directory, saved with the backup (default: patroni.yml's postgresql.config_dir when it is not the data directory; \"-\": none)"},
			&cli.StringFlag{Name: "patroni-config", Usage: "patroni.yml `FILE` to read config_dir from (default: pghook.yaml's, else /etc/patroni/SCOPE.yml…)"},
			&cli.BoolFlag{Name: "scheduled", Usage: "as the backup timer runs it on every node: only the node chosen from Patroni's /cluster (the streaming replica with the least lag, else the leader) takes the backup, from itself, as patroni.yml's replication user; the others exit 0"},
			&cli.DurationFlag{Name: "skip-within", Usage: "with --scheduled: do nothing when the newest backup is younger than this (another node took this round's)", Value: 10 * time.Minute},
		},
		Subcommands: []*cli.Command{a.backupListCommand(), a.backupVerifyCommand(), a.backupImportCommand()},
		Action:      a.backupTake,
	}
}

func (a *app) backupTake(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("backup: unknown subcommand %q (list, verify, import)", c.Args().First())
	}
	scope := c.String("scope")
	if scope == "" {
		return usageErr("backup: --scope is required (see pghook backup --help)")
	}
	if strings.Contains(strings.ToLower(c.String("dbname")), "password") {
		return usageErr("backup: put the password in PGPASSFILE, not in --dbname")
	}
	ctx, stop := signalContext()
	defer stop()
	log := a.log.With().Str("action", "backup").Logger()
	configDir := c.String("config-dir")
	if configDir == "" {
		configDir = a.patroniConfigDir(scope, c.String("patroni-config"), log)
	}
	if configDir == "-" {
		configDir = ""
	}
	dir := a.backupDir(scope, c.String("backup-dir"))
	host, port, user := c.String("host"), c.Int("port"), c.String("user")
	if c.Bool("scheduled") {
		if m, recent := replica.RecentBackup(dir, scope, c.Duration("skip-within")); recent {
			log.Info().Str("scope", scope).Str("backup_id", m.ID).Msg("scheduled backup: the newest backup is recent enough; nothing to do")
			return nil
		}
		me, chosen, h, p, u, err := a.scheduledNode(ctx, scope, c.String("patroni-config"))
		if err != nil {
			return cli.Exit("backup --scheduled: "+err.Error(), int(replica.ExitFailure))
		}
		if me != chosen {
			log.Info().Str("scope", scope).Str("node", me).Str("chosen", chosen).Msg("scheduled backup: another node takes it")
			return nil
		}
		host, port, user = firstNonEmpty(host, h), max(port, p), firstNonEmpty(user, u)
	}
	m, err := replica.Backup(ctx, replica.BackupOptions{
		Dir: dir, Scope: scope, ConnString: c.String("dbname"),
		Host: host, Port: port, User: user,
		Compression: c.String("compression"), Keep: c.Int("keep"), OlderThan: c.Duration("older-than"),
		PgBaseBackup: c.String("pg-basebackup"), ConfigDir: configDir, Log: log,
	})
	if err != nil {
		a.textfile(log, "backup_"+metrics.FileName(scope)+"_failure", metrics.BackupFailure(scope, time.Now()))
		return cli.Exit("backup: "+err.Error(), int(replica.CodeOf(err)))
	}
	a.textfile(log, "backup_"+metrics.FileName(scope), metrics.Backup(scope, m.Compression, time.Now(),
		time.Duration(m.TookSeconds*float64(time.Second)), m.StoredBytes))
	fmt.Fprintln(c.App.Writer, m.Dir)
	return nil
}

// scheduledNode asks this node's Patroni for the cluster and returns this
// node's name, the node chosen to take the backup, and this node's
// PostgreSQL host, port and replication user.
func (a *app) scheduledNode(ctx context.Context, scope, configured string) (me, chosen, host string, port int, user string, err error) {
	if configured == "" && a.cfg != nil {
		if s, ok := a.cfg.Scopes[scope]; ok && s != nil {
			configured = s.PatroniConfig
		}
	}
	pc := patroni.FindConfig(scope, configured, 0)
	if pc == "" {
		return "", "", "", 0, "", fmt.Errorf("no patroni.yml for scope %s (--patroni-config, or pghook.yaml's scopes.%s.patroni_config)", scope, scope)
	}
	cfg, err := patroni.Load(pc)
	if err != nil {
		return "", "", "", 0, "", err
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
	a.log.Debug().Str("chosen", chosen).Str("why", why).Msg("scheduled backup")
	return cfg.Name, chosen, host, port, cfg.UserName("replication"), nil
}

func (a *app) backupListCommand() *cli.Command {
	return &cli.Command{
		Name:      "list",
		Usage:     "the published backups, newest first, and the directories beside them that are not",
		ArgsUsage: "[--scope S] [--json] [--connstring C]",
		Description: "Shows each backup's id, age, size on disk, compression, system identifier,\n" +
			"timeline and LSN range; with --connstring (a replication connection to the\n" +
			"leader, password from PGPASSFILE) also whether the leader still has the WAL\n" +
			"right after it (what create-replica needs). Without --scope, every scope.\n\n" + backupDirHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scope", Usage: "only this scope"},
			&cli.StringFlag{Name: "backup-dir", Usage: "backup root `DIR`", EnvVars: []string{"PGHOOK_BACKUP_DIR"}},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object"},
			&cli.StringFlag{Name: "connstring", Usage: "libpq `STRING` of the leader, to check its WAL (no password)"},
		},
		Action: a.backupList,
	}
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

func (a *app) backupList(c *cli.Context) error {
	if strings.Contains(strings.ToLower(c.String("connstring")), "password") {
		return usageErr("backup list: put the password in PGPASSFILE, not in --connstring")
	}
	ctx, stop := signalContext()
	defer stop()
	scopes := []string{c.String("scope")}
	if scopes[0] == "" {
		var err error
		dirs := map[string]bool{}
		root := a.backupDir("", c.String("backup-dir"))
		if scopes, err = replica.Scopes(root); err != nil {
			return cli.Exit("backup list: "+err.Error(), int(replica.ExitIO))
		}
		for _, s := range scopes {
			dirs[s] = true
		}
		if a.cfg != nil {
			for s := range a.cfg.Scopes {
				if !dirs[s] {
					scopes = append(scopes, s)
				}
			}
		}
		sort.Strings(scopes)
	}
	var out []listedBackup
	var skipped []replica.Skipped
	for _, scope := range scopes {
		backups, sk, err := replica.Scan(a.backupDir(scope, c.String("backup-dir")), scope)
		if err != nil {
			return cli.Exit("backup list: "+err.Error(), int(replica.CodeOf(err)))
		}
		skipped = append(skipped, sk...)
		for _, m := range backups {
			l := listedBackup{Scope: scope, ID: m.ID, Dir: m.Dir, CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339),
				AgeSeconds: time.Since(m.CreatedAt).Round(time.Second).Seconds(), StoredBytes: m.StoredBytes, DataBytes: m.DataBytes,
				Compression: m.Compression, SystemID: strconv.FormatUint(m.SystemID, 10), Timeline: m.Timeline,
				StartLSN: m.StartLSN, EndLSN: m.EndLSN, Source: m.Source, LeaderHasWAL: "unknown"}
			if cs := c.String("connstring"); cs != "" {
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
		a.log.Warn().Str("dir", s.Dir).Str("reason", s.Reason).Msg("not a published backup")
	}
	if c.Bool("json") {
		if out == nil {
			out = []listedBackup{}
		}
		b, _ := json.MarshalIndent(map[string]any{"backups": out, "skipped": skippedJSON(skipped)}, "", "  ")
		fmt.Fprintln(c.App.Writer, string(b))
		return nil
	}
	printBackups(c.App.Writer, out)
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

func (a *app) backupVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a backup as a restore would, WAL records included, writing nothing",
		ArgsUsage: "[ID|DIR|--all] [--scope S]",
		Description: "Checks the manifest's checksum, every archive entry (name, type, size, CRC32C\n" +
			"against the manifest, none missing), the tablespace archives against\n" +
			"tablespace_map, pg_control, that the WAL covers the backup, and that every WAL\n" +
			"record from the backup's start LSN to its end LSN parses and has a matching\n" +
			"CRC32C. Without ID, the newest backup of --scope; --all every backup (of\n" +
			"--scope, or of every scope); a DIR (a path) is checked where it is. The\n" +
			"leader is not asked (see backup list --connstring). Exit codes: create-replica's\n" +
			"(4 verification failed, 7 I/O error, 3 no such backup); with several, the first\n" +
			"failure's.\n\n" + backupDirHelp,
		SkipFlagParsing: true, // flags may follow the ID
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scope", Usage: "the backups of this scope"},
			&cli.BoolFlag{Name: "all", Usage: "every backup"},
			&cli.StringFlag{Name: "backup-dir", Usage: "backup root `DIR`", EnvVars: []string{"PGHOOK_BACKUP_DIR"}},
		},
		Action: a.backupVerify,
	}
}

func (a *app) backupVerify(c *cli.Context) error {
	if helpAsked(c) {
		return cli.ShowSubcommandHelp(c)
	}
	fl, args, err := interleaved(c.Args().Slice(), map[string]bool{"all": true}, map[string]bool{"scope": true, "backup-dir": true})
	if err != nil || len(args) > 1 || (fl["all"] != "" && len(args) > 0) {
		return usageErr("backup verify: %s (want [ID|DIR|--all] [--scope S]; see pghook backup verify --help)", firstErr(err, "too many arguments"))
	}
	flagDir := firstNonEmpty(fl["backup-dir"], os.Getenv("PGHOOK_BACKUP_DIR"))
	scope := fl["scope"]
	log := a.log.With().Str("action", "backup_verify").Logger()
	ctx, stop := signalContext()
	defer stop()

	var targets []replica.Meta
	switch {
	case len(args) == 1 && strings.Contains(args[0], "/"):
		targets = append(targets, replica.Meta{ID: args[0], Dir: args[0]})
	default:
		scopes := []string{scope}
		if scope == "" {
			if fl["all"] == "" && len(args) == 0 {
				return usageErr("backup verify: name a backup ID, --all, or --scope S for its newest backup")
			}
			if scopes, err = replica.Scopes(a.backupDir("", flagDir)); err != nil {
				return cli.Exit("backup verify: "+err.Error(), int(replica.ExitIO))
			}
		}
		for _, s := range scopes {
			all, err := replica.List(a.backupDir(s, flagDir), s)
			if err != nil {
				return cli.Exit("backup verify: "+err.Error(), int(replica.CodeOf(err)))
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
			return cli.Exit(fmt.Sprintf("backup verify: %s (see pghook backup list)", what), int(replica.ExitNoBackup))
		}
	}
	first := replica.ExitOK
	var firstErrMsg string
	for _, m := range targets {
		res, err := replica.VerifyBackup(ctx, m.Dir, nil, log.With().Str("backup", m.Dir).Logger())
		if err != nil {
			code := replica.CodeOf(err)
			log.Error().Err(err).Str("backup_id", m.ID).Int("exit_code", int(code)).Str("cause", code.String()).Msg("backup failed verification")
			fmt.Fprintf(c.App.Writer, "%s\texit %d (%s): %v\n", m.ID, code, code, err)
			if first == replica.ExitOK {
				first, firstErrMsg = code, err.Error()
			}
			continue
		}
		fmt.Fprintf(c.App.Writer, "%s\tok: %d WAL records %s..%s, %s read in %.1fs\n", m.ID, res.WALRecords, res.Backup.StartLSN, res.Backup.EndLSN,
			humanBytes(res.Bytes), res.Took.Seconds())
	}
	if first != replica.ExitOK {
		return cli.Exit("backup verify: "+firstErrMsg, int(first))
	}
	return nil
}

func (a *app) backupImportCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "adopt a hand-made pg_basebackup -F t directory as a published backup",
		ArgsUsage: "DIR --scope S [--move] [--connstring C]",
		Description: "DIR is what pg_basebackup -D DIR -F t wrote (any compression, with or without\n" +
			"tablespaces; backup_manifest required; -X stream so that pg_wal.tar exists).\n" +
			"Runs every check a restore runs (see backup verify), refuses a backup of another\n" +
			"cluster than the scope's other backups (or than the leader of --connstring),\n" +
			"derives pghook.json from the files and publishes a copy in BACKUP_DIR/SCOPE/ID\n" +
			"atomically (ID from backup_label's START TIME). --move renames the files\n" +
			"instead (same file system only). Exit codes: create-replica's.\n\n" + backupDirHelp,
		SkipFlagParsing: true, // flags may follow DIR
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scope", Usage: "Patroni scope the backup belongs to (required)"},
			&cli.BoolFlag{Name: "move", Usage: "move the files instead of copying them"},
			&cli.StringFlag{Name: "backup-dir", Usage: "backup root `DIR`", EnvVars: []string{"PGHOOK_BACKUP_DIR"}},
			&cli.StringFlag{Name: "connstring", Usage: "libpq `STRING` of the leader: refuse a backup of another cluster (no password)"},
		},
		Action: a.backupImport,
	}
}

func (a *app) backupImport(c *cli.Context) error {
	if helpAsked(c) {
		return cli.ShowSubcommandHelp(c)
	}
	fl, args, err := interleaved(c.Args().Slice(), map[string]bool{"move": true}, map[string]bool{"scope": true, "backup-dir": true, "connstring": true})
	switch {
	case err != nil:
		return usageErr("backup import: %v (see pghook backup import --help)", err)
	case len(args) != 1:
		return usageErr("backup import: want one DIR, got %d arguments (see pghook backup import --help)", len(args))
	case fl["scope"] == "":
		return usageErr("backup import: --scope is required")
	case strings.Contains(strings.ToLower(fl["connstring"]), "password"):
		return usageErr("backup import: put the password in PGPASSFILE, not in --connstring")
	}
	ctx, stop := signalContext()
	defer stop()
	log := a.log.With().Str("action", "backup_import").Logger()
	var sysid uint64
	if cs := fl["connstring"]; cs != "" {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		si, err := replica.IdentifyLeader(dctx, cs)
		cancel()
		if err != nil {
			return cli.Exit("backup import: "+err.Error(), int(replica.ExitOtherCluster))
		}
		sysid = si.SystemID
	}
	m, err := replica.Import(ctx, replica.ImportOptions{
		Dir: a.backupDir(fl["scope"], firstNonEmpty(fl["backup-dir"], os.Getenv("PGHOOK_BACKUP_DIR"))), Scope: fl["scope"],
		Source: args[0], Move: fl["move"] != "", SystemID: sysid, Log: log,
	})
	if err != nil {
		return cli.Exit("backup import: "+err.Error(), int(replica.CodeOf(err)))
	}
	fmt.Fprintln(c.App.Writer, m.Dir)
	return nil
}

// helpAsked reports whether a command that parses its own flags was asked
// for help.
func helpAsked(c *cli.Context) bool {
	for _, a := range c.Args().Slice() {
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
