package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pghook/pghook/internal/logging"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/internal/postinit"
	"github.com/pghook/pghook/internal/scope"
	"github.com/urfave/cli/v2"
)

func (a *app) postInitCommand() *cli.Command {
	return &cli.Command{
		Name:        "post-init",
		Usage:       "Patroni bootstrap.post_init: one-time setup of a new cluster (rewind user, roles, databases, SQL files)",
		ArgsUsage:   "DSN",
		Description: postinit.Help,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "scope", Usage: "Patroni `SCOPE` (default: the calling Patroni's, or the only scope of pghook.yaml)", EnvVars: []string{"PGHOOK_SCOPE"}},
		}, scopeFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErr("post-init: want exactly one DSN argument (Patroni passes it), got %d", c.NArg())
			}
			dsn := c.Args().First()
			r := a.resolver(os.Getppid())
			name, pcfg := a.postInitScope(c, r)
			if name == "" {
				return usageErr("post-init: cannot tell the scope: pass --scope (pghook.yaml has %d scopes and no calling Patroni was found)", len(a.cfg.Scopes))
			}
			sc := r.Resolve(name, overrides(c))
			if sc.Invalid != nil {
				return usageErr("post-init: %v", sc.Invalid)
			}
			if pcfg == nil {
				pcfg = sc.Patroni
			}
			s := sc.Settings.PostInit
			plan := postinit.Plan{RewindUser: s.RewindUser, SQLDir: s.SQLDir, Roles: s.Roles, Databases: s.Databases}
			if plan.RewindUser == "" && pcfg != nil {
				plan.RewindUser = pcfg.UserName("rewind")
			}
			if plan.RewindUser == "-" {
				plan.RewindUser = ""
			}
			log := a.log.With().Str("scope", name).Logger()
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

// postInitScope finds the scope: the flag, the calling Patroni's config
// (returned too), or the only scope of pghook.yaml.
func (a *app) postInitScope(c *cli.Context, r *scope.Resolver) (string, *patroni.Config) {
	if s := c.String("scope"); s != "" {
		return s, nil
	}
	if cfg, err := r.CallingPatroni(c.String("patroni-config")); err == nil {
		return cfg.Scope, cfg
	}
	if len(a.cfg.Scopes) == 1 {
		for k := range a.cfg.Scopes {
			return k, nil
		}
	}
	return "", nil
}
