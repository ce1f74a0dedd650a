package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pghook/pghook/internal/logging"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/replica"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

const createReplicaHelp = `Patroni runs it as a create_replica method:

  postgresql:
    create_replica_methods: [pghook, basebackup]
    pghook:
      command: pghook create-replica
      backup_dir: /var/lib/pghook/backups   # optional, default shown
      keep_data: true                       # optional: adopt a copy of this cluster already there, else replace what is there
      tablespace_mapping: /srv/ts1=/srv/ts1-replica   # optional: OLD=NEW[,OLD=NEW…]

Patroni appends --key=value for every key of the section, then --scope,
--role, --datadir and --connstring; unknown keys are ignored. pghook picks
the newest published backup of the scope (pghook backup) and, before
touching the data directory, checks the manifest's checksum, that the
backup is of this cluster (DCS initialize key, leader's IDENTIFY_SYSTEM)
and that the leader still has the WAL after it. It extracts through an
os.Root with the manifest as allow-list, verifies sizes, CRC32C and
pg_control, syncs, and leaves PostgreSQL stopped.

Tablespaces go to the directory they had on the backed-up server unless
tablespace_mapping (the method section, or scopes.S.create_replica.
tablespace_mapping in pghook.yaml as a map) moves them; each directory
must be empty or absent. pghook links pg_tblspc/OID to it and rewrites
tablespace_map.

With keep_data, a stopped copy of this cluster (a standby's, or a base
backup never started) is adopted without copying; another data directory
(another cluster, a former primary) is removed once the checks above have
passed, and the backup restored; a running postmaster, or a directory that
is no data directory (no PG_VERSION and global/), is refused (exit 8). A
restore killed midway (its .pghook-restoring marker left) is never adopted:
the next attempt removes what it wrote and restores again.

When patroni.yml's postgresql.config_dir (or --config_dir) is not the data
directory and the backup saved a copy of it (pghook backup does), its files
are verified (SHA-256 in pghook.json) and laid there atomically with their
modes, once everything else succeeded. The password comes from
PGPASSFILE (Patroni sets it). Global flags go before the command name;
--patroni_config=FILE and --backup_dir=DIR are also read here
(PGHOOK_BACKUP_DIR too).

After a non-zero exit the data directory and the tablespace directories
are as Patroni left them (without keep_data: absent, or empty but for
dotfiles and lost+found), or empty once a keep_data restore had begun
replacing what was there; nothing pghook created remains.

Exit codes:
`

func (a *app) createReplicaCommand() *cli.Command {
	return &cli.Command{
		Name:            "create-replica",
		Usage:           "Patroni create_replica method: restore from a shared-storage backup",
		ArgsUsage:       "--scope=S --datadir=D --role=R --connstring=C [--k=v…]",
		Description:     createReplicaHelp + replica.ExitCodeHelp(),
		SkipFlagParsing: true, // Patroni passes --key=value for every key of the method section
		Action:          a.createReplica,
	}
}

func (a *app) createReplica(c *cli.Context) error {
	argv := c.Args().Slice()
	for _, arg := range argv {
		if arg == "--help" || arg == "-h" || arg == "help" {
			return cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name)
		}
	}
	args, err := replica.ParseArgs(argv)
	if err != nil {
		return cli.Exit("create-replica: "+err.Error()+" (see pghook create-replica --help)", int(replica.CodeOf(err)))
	}
	log := a.log
	if lv, lf := args.Extra["log_level"], args.Extra["log_format"]; lv != "" || lf != "" {
		if l, err := logging.New(logging.Options{Level: lv, Format: logging.Format(lf)}); err == nil {
			log = l
		}
	}
	log = log.With().Str("action", "create_replica").Logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	opts := replica.RestoreOptions{Args: args, BackupDir: os.Getenv("PGHOOK_BACKUP_DIR"), Log: log}
	configured := args.PatroniConfig
	if s, err := a.cfg.Scope(args.Scope); err == nil && s != nil {
		if configured == "" {
			configured = s.PatroniConfig
		}
		opts.TablespaceMapping = s.CreateReplica.TablespaceMapping
	}
	if pc := patroni.FindConfig(args.Scope, configured, os.Getppid()); pc != "" {
		cfg, err := patroni.Load(pc)
		switch {
		case err != nil:
			log.Warn().Err(err).Msg("reading Patroni config; the cluster identity comes from the leader alone")
		case cfg.Scope != args.Scope:
			log.Warn().Str("patroni_config", pc).Str("config_scope", cfg.Scope).Msg("Patroni config is for another scope: ignored")
		case cfg.DCS() == "etcd3" || cfg.DCS() == "etcd":
			opts.ConfigDir = cfg.Postgresql.ConfigDir
			opts.ClusterSystemID = func(ctx context.Context) (uint64, bool, error) {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				v, found, err := cfg.ReadKey(ctx, 3*time.Second, "initialize")
				if err != nil || !found {
					return 0, found, err
				}
				id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, false, fmt.Errorf("initialize key %q is not a system identifier", v)
				}
				return id, true, nil
			}
		default:
			opts.ConfigDir = cfg.Postgresql.ConfigDir
			log.Warn().Str("dcs", cfg.DCS()).Msg("pghook cannot read this DCS: the cluster identity comes from the leader alone")
		}
	}
	log.Info().Str("scope", args.Scope).Str("datadir", args.DataDir).Str("connstring", logging.Redact(args.ConnString)).
		Bool("keep_data", args.KeepData).Msg("create_replica starting")
	res, err := replica.Restore(ctx, opts)
	if err != nil {
		code := replica.CodeOf(err)
		log.Error().Err(err).Int("exit_code", int(code)).Str("cause", code.String()).Msg("create_replica failed; Patroni will try its next method")
		return cli.Exit("create-replica: "+err.Error(), int(code))
	}
	if res.Adopted {
		log.Info().Msg("create_replica done: existing data directory adopted")
	}
	return nil
}

func (a *app) backupCommand() *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "take a pg_basebackup into shared storage, published atomically",
		Description: "Runs pg_basebackup -F t -X stream -c fast with a CRC32C manifest and client-side\n" +
			"compression into BACKUP_DIR/SCOPE/ID.partial, checks it, writes pghook.json,\n" +
			"fsyncs and renames it to BACKUP_DIR/SCOPE/ID, then applies retention (the newest\n" +
			"backup and any backup a restore is reading are never removed). The password comes\n" +
			"from PGPASSFILE or ~/.pgpass. Prints the backup's directory.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scope", Usage: "Patroni scope the backup belongs to", Required: true},
			&cli.StringFlag{Name: "backup-dir", Usage: "backup root `DIR`", Value: replica.DefaultBackupDir, EnvVars: []string{"PGHOOK_BACKUP_DIR"}},
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
		},
		Action: func(c *cli.Context) error {
			if strings.Contains(strings.ToLower(c.String("dbname")), "password") {
				return usageErr("backup: put the password in PGPASSFILE, not in --dbname")
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			log := a.log.With().Str("action", "backup").Logger()
			configDir := c.String("config-dir")
			if configDir == "" {
				configDir = a.patroniConfigDir(c.String("scope"), c.String("patroni-config"), log)
			}
			if configDir == "-" {
				configDir = ""
			}
			m, err := replica.Backup(ctx, replica.BackupOptions{
				Dir: c.String("backup-dir"), Scope: c.String("scope"), ConnString: c.String("dbname"),
				Host: c.String("host"), Port: c.Int("port"), User: c.String("user"),
				Compression: c.String("compression"), Keep: c.Int("keep"), OlderThan: c.Duration("older-than"),
				PgBaseBackup: c.String("pg-basebackup"), ConfigDir: configDir, Log: log,
			})
			if err != nil {
				return cli.Exit("backup: "+err.Error(), int(replica.CodeOf(err)))
			}
			fmt.Fprintln(c.App.Writer, m.Dir)
			return nil
		},
	}
}

// patroniConfigDir returns postgresql.config_dir of the scope's patroni.yml
// when it is set and is not the data directory, else "".
func (a *app) patroniConfigDir(scope, configured string, log zerolog.Logger) string {
	if configured == "" {
		if s, err := a.cfg.Scope(scope); err == nil && s != nil {
			configured = s.PatroniConfig
		}
	}
	pc := patroni.FindConfig(scope, configured, 0)
	if pc == "" {
		return ""
	}
	cfg, err := patroni.Load(pc)
	if err != nil {
		log.Warn().Err(err).Msg("reading Patroni config for config_dir; no configuration files saved")
		return ""
	}
	if cfg.Scope != scope {
		return ""
	}
	cd, dd := filepath.Clean(cfg.Postgresql.ConfigDir), filepath.Clean(cfg.Postgresql.DataDir)
	if cfg.Postgresql.ConfigDir == "" || cd == dd {
		return ""
	}
	return cd
}
