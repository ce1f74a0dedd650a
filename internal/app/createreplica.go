package app

import (
	"errors"
	"os"
	"time"

	"github.com/pghook/pghook/internal/interrupt"
	"github.com/pghook/pghook/internal/logging"
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/scope"
	"github.com/pghook/pghook/replica"
	"github.com/urfave/cli/v2"
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
	ctx, stop := interrupt.Context()
	defer stop()

	opts := replica.RestoreOptions{Args: args, Log: log}
	opts.BeforeWrite = func() error {
		uid, err := replica.BecomeDataOwner(args.DataDir)
		if uid >= 0 {
			log.Info().Int("uid", uid).Msg("running as root: switched to the data directory's owner, so that PostgreSQL can use what is written")
		}
		return err
	}
	opts.Args.BackupDir = scope.RestoreBackupDir(a.cfg, args.Scope, args.BackupDir, os.Getenv("PGHOOK_BACKUP_DIR"))
	var o scope.Overrides
	if args.PatroniConfig != "" {
		o.PatroniConfig = &args.PatroniConfig
	}
	sc := a.resolver(os.Getppid()).Resolve(args.Scope, o)
	opts.TablespaceMapping = sc.Settings.CreateReplica.TablespaceMapping
	var other *scope.OtherScopeError
	switch {
	case errors.As(sc.PatroniErr, &other):
		log.Warn().Str("patroni_config", other.Path).Str("config_scope", other.ConfigScope).Msg("Patroni config is for another scope: ignored")
	case errors.Is(sc.PatroniErr, scope.ErrNoPatroniConfig):
	case sc.PatroniErr != nil:
		log.Warn().Err(sc.PatroniErr).Msg("reading Patroni config; the cluster identity comes from the leader alone")
	default:
		opts.ConfigDir = sc.Patroni.Postgresql.ConfigDir
		if opts.ClusterSystemID = sc.ClusterSystemID(); opts.ClusterSystemID == nil {
			log.Warn().Str("dcs", sc.Patroni.DCS()).Msg("pghook cannot read this DCS: the cluster identity comes from the leader alone")
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
	metrics.Record(a.cfg.MetricsTextfileDir, log, "create_replica_"+metrics.FileName(args.Scope),
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
