package app

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pghook/pghook/internal/clusterstatus"
	"github.com/pghook/pghook/internal/scope"
	"github.com/urfave/cli/v2"
)

func (a *app) statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "members, roles, lag and which host answers for the VIP (patronictl-style table, or --json)",
		Description: "For each scope (--scope, repeatable; default every scope of pghook.yaml) it\n" +
			"asks the local Patroni's REST API /cluster (another member's, found in the DCS,\n" +
			"when the local one does not answer), reads the DCS leader key, and finds who\n" +
			"answers for the VIP: netlink — this host if the address is on its interface,\n" +
			"plus every host answering an ARP probe / neighbour solicitation for it within\n" +
			"200ms, named through the neighbour table of the members' addresses (the probe\n" +
			"needs CAP_NET_RAW: without it the VIP helper runs it); pcs — crm_resource\n" +
			"--locate. It only reads; it never prints a password.\n\n" +
			"Exit codes (with several scopes, the highest):\n" +
			"  0  a leader, and the VIP (if any) answers on the leader's host only\n" +
			"  1  no member's REST API answered, or where the VIP is could not be found out\n" +
			"  2  usage error\n" +
			"  3  the VIP answers on nobody, or on another host than the leader's\n" +
			"  4  no leader\n" +
			"  5  more than one host answers for the VIP",
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
	reports := make([]*clusterstatus.Report, len(scopes))
	var wg sync.WaitGroup
	for i := range scopes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			reports[i] = clusterstatus.ForScope(ctx, r, resolved[i])
			a.log.Debug().Str("scope", resolved[i].Name).Str("action", "status").Int("exit_code", reports[i].ExitCode).
				Dur("took_ms", time.Since(start)).Msg("status")
		}()
	}
	wg.Wait()
	var err error
	if c.Bool("json") {
		err = clusterstatus.WriteJSON(c.App.Writer, reports)
	} else {
		err = clusterstatus.WriteTable(c.App.Writer, reports)
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("status: writing the output: %v", err), exitFailure)
	}
	if code := clusterstatus.ExitCode(reports); code != 0 {
		return cli.Exit("", code)
	}
	return nil
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
