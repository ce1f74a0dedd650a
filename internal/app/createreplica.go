package app

import (
	"os"
	"time"

	"github.com/pghook/pghook/internal/interrupt"
	"github.com/pghook/pghook/internal/logging"
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/scope"
	"github.com/pghook/pghook/replica"
	"github.com/urfave/cli/v2"
)

func (a *app) createReplicaCommand() *cli.Command {
	return &cli.Command{
		Name:            "create-replica",
		Usage:           "Patroni create_replica method: restore from a shared-storage backup",
		ArgsUsage:       "--scope=S --datadir=D --role=R --connstring=C [--k=v…]",
		Description:     replica.MethodHelp + replica.ExitCodeHelp(),
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
	opts.ConfigDir, opts.ClusterSystemID = sc.RestoreFacts(log)
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
