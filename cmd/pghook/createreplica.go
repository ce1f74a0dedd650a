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
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/replica"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

const createReplicaHelp = `Patroni runs it as a create_replica method:

  postgresql:
    create_replica_methods: [pghook, basebackup]
    pghook:
      command: pghook create-replica
      backup_dir: /var/lib/pghook/backups   # optional (lookup order below)
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
--patroni_config=FILE is also read here. Backups are looked for in the
method section's backup_dir, else PGHOOK_BACKUP_DIR, else pghook.yaml's
scopes.S.create_replica.backup_dir, else scopes.S.backup_dir, else
/var/lib/pghook/backups. When the newest backup fails verification (4)
or the leader no longer has its WAL (6), the next older backup of the
cluster is tried; the exit code is then that of the attempt that got
furthest, and the log lists every attempt. Run as root, it first becomes
the owner of the data directory (or of its nearest existing parent), and
refuses (2) when that is root.

After a non-zero exit the data directory and the tablespace directories
are as Patroni left them (without keep_data: absent, or empty but for
dotfiles and lost+found), or empty once a keep_data restore had begun
replacing what was there; nothing pghook created remains.

Exit codes:
`

// signalContext is cancelled by SIGTERM (how Patroni cancels a method) or
// SIGINT, with the signal as its cause, so that the error says so.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case s := <-ch:
			name := s.String()
			if sig, ok := s.(syscall.Signal); ok {
				name = unix.SignalName(sig)
			}
			cancel(fmt.Errorf("interrupted by %s; what was written is removed", name))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

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
	ctx, stop := signalContext()
	defer stop()

	opts := replica.RestoreOptions{Args: args, Log: log}
	opts.BeforeWrite = func() error {
		uid, err := replica.BecomeDataOwner(args.DataDir)
		if uid >= 0 {
			log.Info().Int("uid", uid).Msg("running as root: switched to the data directory's owner, so that PostgreSQL can use what is written")
		}
		return err
	}
	opts.Args.BackupDir = a.restoreBackupDir(args.Scope, args.BackupDir)
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
	start := time.Now()
	res, err := replica.Restore(ctx, opts)
	code := replica.ExitCode(0)
	if err != nil {
		code = replica.CodeOf(err)
	}
	cause := "restored"
	if err != nil {
		cause = code.String()
	} else if res.Adopted {
		cause = "adopted"
	}
	var age time.Duration
	if !res.Backup.CreatedAt.IsZero() {
		age = time.Since(res.Backup.CreatedAt)
	}
	a.textfile(log, "create_replica_"+metrics.FileName(args.Scope),
		metrics.CreateReplica(args.Scope, int(code), cause, time.Now(), time.Since(start), res.Bytes, age))
	if err != nil {
		log.Error().Err(err).Int("exit_code", int(code)).Str("cause", code.String()).Msg("create_replica failed; Patroni will try its next method")
		return cli.Exit("create-replica: "+err.Error(), int(code))
	}
	if res.Adopted {
		log.Info().Msg("create_replica done: existing data directory adopted")
	}
	return nil
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
