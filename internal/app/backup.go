package app

import (
	"os"
	"time"

	"github.com/pghook/pghook/internal/backupops"
	"github.com/pghook/pghook/internal/interrupt"
	"github.com/pghook/pghook/replica"
	"github.com/urfave/cli/v2"
)

func (a *app) backupCommand() *cli.Command {
	return &cli.Command{
		Name:        "backup",
		Usage:       "take a pg_basebackup into shared storage, published atomically (list, verify, import: see below)",
		Description: backupops.TakeHelp,
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

func (a *app) backupEnv(c *cli.Context) backupops.Env {
	return backupops.Env{Config: a.cfg, Log: a.log, Out: c.App.Writer, BackupDirEnv: os.Getenv("PGHOOK_BACKUP_DIR")}
}

func (a *app) backupTake(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("backup: unknown subcommand %q (list, verify, import)", c.Args().First())
	}
	ctx, stop := interrupt.Context()
	defer stop()
	return backupops.Take(ctx, a.backupEnv(c), backupops.TakeOptions{
		Scope: c.String("scope"), BackupDir: c.String("backup-dir"), Host: c.String("host"), Port: c.Int("port"), User: c.String("user"),
		DBName: c.String("dbname"), Compression: c.String("compression"), Keep: c.Int("keep"), OlderThan: c.Duration("older-than"),
		PgBaseBackup: c.String("pg-basebackup"), ConfigDir: c.String("config-dir"), PatroniConfig: c.String("patroni-config"),
		Scheduled: c.Bool("scheduled"), SkipWithin: c.Duration("skip-within"),
	})
}

func (a *app) backupListCommand() *cli.Command {
	return &cli.Command{
		Name:        "list",
		Usage:       "the published backups, newest first, and the directories beside them that are not",
		ArgsUsage:   "[--scope S] [--json] [--connstring C]",
		Description: backupops.ListHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scope", Usage: "only this scope"},
			&cli.StringFlag{Name: "backup-dir", Usage: "backup root `DIR`", EnvVars: []string{"PGHOOK_BACKUP_DIR"}},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object"},
			&cli.StringFlag{Name: "connstring", Usage: "libpq `STRING` of the leader, to check its WAL (no password)"},
		},
		Action: a.backupList,
	}
}

func (a *app) backupList(c *cli.Context) error {
	ctx, stop := interrupt.Context()
	defer stop()
	return backupops.List(ctx, a.backupEnv(c), backupops.ListOptions{Scope: c.String("scope"), BackupDir: c.String("backup-dir"),
		ConnString: c.String("connstring"), JSON: c.Bool("json")})
}

func (a *app) backupVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:            "verify",
		Usage:           "check a backup as a restore would, WAL records included, writing nothing",
		ArgsUsage:       "[ID|DIR|--all] [--scope S]",
		Description:     backupops.VerifyHelp,
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
	if backupops.HelpAsked(c.Args().Slice()) {
		return cli.ShowSubcommandHelp(c)
	}
	ctx, stop := interrupt.Context()
	defer stop()
	return backupops.Verify(ctx, a.backupEnv(c), c.Args().Slice())
}

func (a *app) backupImportCommand() *cli.Command {
	return &cli.Command{
		Name:            "import",
		Usage:           "adopt a hand-made pg_basebackup -F t directory as a published backup",
		ArgsUsage:       "DIR --scope S [--move] [--connstring C]",
		Description:     backupops.ImportHelp,
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
	if backupops.HelpAsked(c.Args().Slice()) {
		return cli.ShowSubcommandHelp(c)
	}
	ctx, stop := interrupt.Context()
	defer stop()
	return backupops.Import(ctx, a.backupEnv(c), c.Args().Slice())
}
