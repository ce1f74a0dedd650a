package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/pghook/pghook/internal/postinit"
	"github.com/pghook/pghook/internal/logging"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/urfave/cli/v2"
)

func (a *app) postInitCommand() *cli.Command {
	return &cli.Command{
		Name:      "post-init",
		Usage:     "Patroni bootstrap.post_init: one-time setup of a new cluster (rewind user, roles, databases, SQL files)",
		ArgsUsage: "DSN",
		Description: "Patroni runs it once, on the node that initialised the cluster, with a libpq\n" +
			"key/value DSN (no password: PGPASSFILE holds it). Idempotent: the rewind user\n" +
			"(authentication.rewind of patroni.yml, or post_init.rewind_user) gets EXECUTE on\n" +
			"the four functions pg_rewind calls; post_init.roles and post_init.databases of\n" +
			"pghook.yaml are created or altered; the *.sql files of post_init.sql_dir run in\n" +
			"name order, each once (recorded in pghook.applied_sql), each in a transaction.\n" +
			"Exit 1 names the failed step; Patroni then aborts the bootstrap.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "scope", Usage: "Patroni `SCOPE` (default: the calling Patroni's, or the only scope of pghook.yaml)", EnvVars: []string{"PGHOOK_SCOPE"}},
		}, scopeFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("post-init: want exactly one DSN argument (Patroni passes it), got %d", c.NArg())
			}
			dsn := c.Args().First()
			scope, pcfg := a.postInitScope(c)
			if scope == "" {
				return usageErr("post-init: cannot tell the scope: pass --scope (pghook.yaml has %d scopes and no calling Patroni was found)", len(a.cfg.Scopes))
			}
			s, err := a.scopeSettings(c, scope)
			if err != nil {
				return usageErr("post-init: %v", err)
			}
			if pcfg == nil {
				if pc := patroni.FindConfig(scope, s.PatroniConfig, os.Getppid()); pc != "" {
					pcfg, _ = a.loadPatroni(pc)
				}
			}
			plan := postinit.Plan{RewindUser: s.PostInit.RewindUser, SQLDir: s.PostInit.SQLDir}
			if plan.RewindUser == "" && pcfg != nil {
				plan.RewindUser = pcfg.UserName("rewind")
			}
			if plan.RewindUser == "-" {
				plan.RewindUser = ""
			}
			for _, r := range s.PostInit.Roles {
				plan.Roles = append(plan.Roles, postinit.Role{Name: r.Name, Login: r.Login, Options: r.Options, InRoles: r.InRoles, PasswordFile: r.PasswordFile})
			}
			for _, d := range s.PostInit.Databases {
				plan.Databases = append(plan.Databases, postinit.Database{Name: d.Name, Owner: d.Owner})
			}
			log := a.log.With().Str("scope", scope).Logger()
			ctx, cancel := context.WithTimeout(c.Context, 10*time.Minute)
			defer cancel()
			start := time.Now()
			if err := postinit.Run(ctx, dsn, plan, log); err != nil {
				log.Error().Err(err).Str("action", "post-init").Str("dsn", logging.Redact(dsn)).Dur("took_ms", time.Since(start)).Msg("post-init failed")
				return cli.Exit(fmt.Sprintf("post-init: %v", err), exitFailure)
			}
			return nil
		},
	}
}

// postInitScope finds the scope: the flag, the calling Patroni's config,
// or the only scope of pghook.yaml.
func (a *app) postInitScope(c *cli.Context) (string, *patroni.Config) {
	if s := c.String("scope"); s != "" {
		return s, nil
	}
	if pc := patroni.FindConfig("", c.String("patroni-config"), os.Getppid()); pc != "" {
		if cfg, err := a.loadPatroni(pc); err == nil {
			return cfg.Scope, cfg
		}
	}
	if len(a.cfg.Scopes) == 1 {
		names := make([]string, 0, 1)
		for k := range a.cfg.Scopes {
			names = append(names, k)
		}
		sort.Strings(names)
		return names[0], nil
	}
	return "", nil
}
