// Package app is pghook's command line: it declares the commands and
// their flags and turns them into the inputs of the packages that decide
// and act (internal/scope resolves a scope and its VIP stack, hooks
// decides, replica, internal/backupops, internal/clusterstatus,
// internal/postinit and internal/install act). cmd/pghook runs it;
// cmd/pghook-gendocs renders its man page and completion from the same
// definitions.
package app

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/exitcode"
	"github.com/pghook/pghook/internal/logging"
	"github.com/pghook/pghook/internal/scope"
	"github.com/pghook/pghook/internal/version"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// Exit codes shared by all commands.
const (
	exitFailure = exitcode.Failure
	exitUsage   = exitcode.Usage
)

// usageErr is an error that exits with code 2 and names the bad argument.
func usageErr(format string, a ...any) error { return exitcode.Usagef(format, a...) }

// app is the CLI root: the only place that holds state for a run.
type app struct {
	log zerolog.Logger
	cfg *config.File
}

// resolver resolves scopes for this run. ppid is the calling process
// whose command line may name patroni.yml (0: none).
func (a *app) resolver(ppid int) *scope.Resolver {
	return &scope.Resolver{Config: a.cfg, Log: a.log, PPID: ppid}
}

// New returns the command line's definition.
func New() *cli.App { return newApp() }

func newApp() *cli.App {
	a := &app{log: zerolog.Nop()}
	return &cli.App{
		Name:  "pghook",
		Usage: "Patroni's hooks in one binary: VIP, roster, replica restore, post_init, install",
		Description: "Patroni calls pghook as its callbacks, create_replica method and post_init.\n" +
			"It also answers to the names of the scripts it replaces (callback.sh,\n" +
			"create_replica.sh, post_init.sh, pghook-<command>).",
		Version:                version.String(),
		HideVersion:            true,
		EnableBashCompletion:   true,
		UseShortOptionHandling: true,
		ExitErrHandler:         func(*cli.Context, error) {}, // main maps errors to codes
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageErr("%v (see pghook %s --help)", err, c.Command.Name)
		},
		Flags:  globalFlags(),
		Before: a.before,
		Commands: a.withGlobals([]*cli.Command{
			a.callbackCommand(),
			a.createReplicaCommand(),
			a.postInitCommand(),
			a.backupCommand(),
			a.envCommand(),
			a.pgtabCommand(),
			a.vipCommand(),
			a.statusCommand(),
			a.installCommand(),
			a.metricsCommand(),
			{
				Name:  "version",
				Usage: "print version, commit and Go version",
				Action: func(c *cli.Context) error {
					fmt.Fprintln(c.App.Writer, version.String())
					return nil
				},
			},
		}),
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(os.Stderr, "pghook: unknown command %q (see pghook --help)\n", name)
			os.Exit(exitUsage)
		},
	}
}

// globalFlags are accepted before and after the command name, so that
// `callback.sh --pgtab F …` works as well as `pghook --pgtab F callback …`.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "pghook's settings `FILE`", Value: config.DefaultPath, EnvVars: []string{"PGHOOK_CONFIG"}, Category: "global"},
		&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn or error", EnvVars: []string{"PGHOOK_LOG_LEVEL"}, Category: "global"},
		&cli.StringFlag{Name: "log-format", Usage: "auto (console on a terminal, JSON otherwise), json or console", EnvVars: []string{"PGHOOK_LOG_FORMAT"}, Category: "global"},
		&cli.StringFlag{Name: "pgtab", Usage: "the roster `FILE` (default ~postgres/.pgtab, or the config's pgtab)", EnvVars: []string{"PGHOOK_PGTAB"}, Category: "global"},
	}
}

// withGlobals gives every command (and subcommand) the global flags, the
// setup step and the exit-2 usage error handler.
func (a *app) withGlobals(cmds []*cli.Command) []*cli.Command {
	for _, cmd := range cmds {
		if !cmd.SkipFlagParsing {
			cmd.Flags = append(cmd.Flags, globalFlags()...)
		}
		cmd.Before = a.before
		cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return usageErr("%v (see pghook %s --help)", err, c.Command.FullName())
		}
		a.withGlobals(cmd.Subcommands)
	}
	return cmds
}

// global returns the value of a global flag from the innermost command
// where it was set (or its env var/default).
func global(c *cli.Context, name string) (string, bool) {
	for _, cc := range c.Lineage() {
		if cc.Command != nil || cc.App != nil {
			if cc.IsSet(name) {
				return cc.String(name), true
			}
		}
	}
	return c.String(name), false
}

// before loads pghook.yaml and builds the logger, once per run. A config
// file the user named (flag or PGHOOK_CONFIG) must exist; the default one
// may be absent.
func (a *app) before(c *cli.Context) error {
	path, required := global(c, "config")
	// Before runs at every level of the command line: read the file once.
	if a.cfg == nil || a.cfg.Path != path {
		cfg, err := config.Load(path, required)
		if err != nil {
			return cli.Exit(err.Error(), exitUsage)
		}
		a.cfg = cfg
	}
	cfg := a.cfg
	lv, _ := global(c, "log-level")
	lf, _ := global(c, "log-format")
	level := scope.FirstNonEmpty(lv, cfg.LogLevel)
	format := scope.FirstNonEmpty(lf, cfg.LogFormat)
	log, err := logging.New(logging.Options{Level: level, Format: logging.Format(format)})
	if err != nil {
		return usageErr("%v", err)
	}
	a.log = log
	return nil
}

// pgtabPath resolves the roster: flag/env, then the config, then the home
// of the user running Patroni (postgres when run as root).
func (a *app) pgtabPath(c *cli.Context) (string, error) {
	flag, _ := global(c, "pgtab")
	if p := scope.FirstNonEmpty(flag, a.cfg.Pgtab); p != "" {
		return p, nil
	}
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("postgres"); err == nil && u.HomeDir != "" {
			return filepath.Join(u.HomeDir, ".pgtab"), nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		u, uerr := user.Current()
		if uerr != nil {
			return "", errors.New("cannot find the roster: no HOME; pass --pgtab or set PGHOOK_PGTAB")
		}
		home = u.HomeDir
	}
	return filepath.Join(home, ".pgtab"), nil
}
