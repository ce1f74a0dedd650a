package app

import (
	"sort"

	"github.com/pghook/pghook/internal/clusterstatus"
	"github.com/pghook/pghook/internal/scope"
	"github.com/urfave/cli/v2"
)

func (a *app) statusCommand() *cli.Command {
	return &cli.Command{
		Name:        "status",
		Usage:       "members, roles, lag and which host answers for the VIP (patronictl-style table, or --json)",
		Description: clusterstatus.Help,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "scope", Usage: "Patroni `SCOPE` to show (repeatable; default: every scope of pghook.yaml)", EnvVars: []string{"PGHOOK_SCOPE"}},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object: {\"scopes\": [...], \"exit_code\": N}"},
			&cli.DurationFlag{Name: "timeout", Usage: "bound for each scope's report", Value: clusterstatus.Timeout},
			&cli.StringFlag{Name: "patroni-config", Usage: "this scope's patroni.yml `FILE` (one --scope only; default: the config's patroni_config, else /etc/patroni/<scope>.yml)", EnvVars: []string{"PGHOOK_PATRONI_CONFIG"}, Category: "scope"},
		},
		Action: a.status,
	}
}

func (a *app) status(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("status: unexpected argument %q (use --scope S)", c.Args().First())
	}
	scopes := c.StringSlice("scope")
	if len(scopes) == 0 {
		for s := range a.cfg.Scopes {
			scopes = append(scopes, s)
		}
		sort.Strings(scopes)
	}
	if len(scopes) == 0 {
		return usageErr("status: no scope: pass --scope S, or list the scopes in %s", a.cfg.Path)
	}
	if len(scopes) > 1 && c.IsSet("patroni-config") {
		return usageErr("status: --patroni-config names one scope's patroni.yml: use it with a single --scope")
	}
	r := a.resolver(0)
	var o scope.Overrides
	if c.IsSet("patroni-config") {
		v := c.String("patroni-config")
		o.PatroniConfig = &v
	}
	resolved := make([]*scope.Scope, len(scopes))
	for i, name := range scopes {
		resolved[i] = r.Resolve(name, o)
		if resolved[i].Invalid != nil {
			return usageErr("status: %v", resolved[i].Invalid)
		}
	}
	return clusterstatus.Run(c.Context, r, resolved, clusterstatus.RunOptions{Timeout: c.Duration("timeout"), JSON: c.Bool("json"), Out: c.App.Writer})
}

// vipWhoHasCommand is the hidden `vip who-has` the VIP helper runs for an
// unprivileged `pghook status`: it asks the link who answers for the
// scope's VIP and prints netvip.WhoHasAnswer as JSON. Under the helper's
// name, the address and interface come only from a root-owned pghook.yaml.
func (a *app) vipWhoHasCommand(scopeFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:   "who-has",
		Usage:  "(internal) ask the link who answers for the VIP; prints JSON",
		Hidden: true,
		Flags: append([]cli.Flag{scopeFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON (the only format)"},
			&cli.StringFlag{Name: "timeout", Usage: "how long to listen for answers", Value: clusterstatus.WhoHasWindow.String()}}, scopeFlags()...),
		Action: func(c *cli.Context) error {
			sc, _, err := a.vipScope(c)
			if err != nil {
				return err
			}
			timeout, err := clusterstatus.ParseWhoHasTimeout(c.String("timeout"))
			if err != nil {
				return usageErr("vip who-has: %v", err)
			}
			return clusterstatus.WhoHas(c.Context, c.App.Writer, sc, timeout)
		},
	}
}
