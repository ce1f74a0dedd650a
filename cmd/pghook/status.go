package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/pghook/pghook/internal/clusterstatus"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/netvip"
	"github.com/urfave/cli/v2"
)

// whoHasWindow is how long `pghook status` listens for hosts answering
// for the VIP: long enough for every holder on a LAN to answer one of the
// three probes, short enough for a monitoring check.
const whoHasWindow = 200 * time.Millisecond

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
	settings := make([]*config.Scope, len(scopes))
	for i, scope := range scopes {
		s, err := a.scopeSettings(c, scope)
		if err != nil {
			return usageErr("status: %v", err)
		}
		settings[i] = s
	}
	reports := make([]*clusterstatus.Report, len(scopes))
	var wg sync.WaitGroup
	for i, scope := range scopes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			reports[i] = a.statusOf(ctx, scope, settings[i])
			a.log.Debug().Str("scope", scope).Str("action", "status").Int("exit_code", reports[i].ExitCode).
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

// statusOf wires one scope's sources to clusterstatus.Gather.
func (a *app) statusOf(ctx context.Context, scope string, s *config.Scope) *clusterstatus.Report {
	failed := func(format string, v ...any) *clusterstatus.Report {
		return &clusterstatus.Report{Scope: scope, Members: []clusterstatus.Member{}, ExitCode: clusterstatus.CodeUnknown,
			Problems: []string{fmt.Sprintf(format, v...)}}
	}
	pc := patroni.FindConfig(scope, s.PatroniConfig, 0)
	if pc == "" {
		return failed("no patroni.yml for scope %s: set scopes.%s.patroni_config in %s or pass --patroni-config", scope, scope, a.cfg.Path)
	}
	cfg, err := a.loadPatroni(pc)
	if err != nil {
		return failed("%v", err)
	}
	if cfg.Scope != scope {
		return failed("%s is the Patroni config of scope %s, not %s: fix scopes.%s.patroni_config", pc, cfg.Scope, scope, scope)
	}
	const callTimeout = time.Second
	in := clusterstatus.Inputs{Scope: scope, Me: cfg.Name, StandbyLeaderVIP: s.StandbyLeaderVIP}
	local, err := cfg.RestClient(callTimeout)
	if err != nil {
		return failed("%v", err)
	}
	defer local.Close()
	in.Local = local
	in.At = func(apiURL string) (clusterstatus.API, error) { return cfg.RestClientAt(apiURL, callTimeout) }
	in.Others = func(ctx context.Context) ([]clusterstatus.API, error) {
		ms, err := cfg.MemberAPIs(ctx, callTimeout)
		if err != nil {
			return nil, err
		}
		var out []clusterstatus.API
		for _, m := range ms {
			if m.Name == cfg.Name {
				continue
			}
			if r, err := cfg.RestClientAt(m.APIURL, callTimeout); err == nil {
				out = append(out, r)
			}
		}
		return out, nil
	}
	if view, err := cfg.NewLeaderReader(callTimeout); err == nil {
		in.Leader = view
	}
	in.VIP, err = a.vipView(scope, s)
	if err != nil {
		return failed("VIP settings of scope %s: %v", scope, err)
	}
	return clusterstatus.Gather(ctx, in)
}

// vipView returns how to find who answers for the scope's VIP; nil when the
// scope has none.
func (a *app) vipView(scope string, s *config.Scope) (clusterstatus.VIPView, error) {
	switch s.VIP.Backend {
	case "", "none":
		return nil, nil
	case "pcs":
		p, err := netvip.NewPcs(vipSettings(s.VIP), a.log)
		if err != nil {
			return nil, err
		}
		return clusterstatus.PcsView{Resource: s.VIP.Resource, Locate: p.Locate}, nil
	case "dns", "exec":
		return a.routeView(scope, s)
	}
	addr, err := vipAddress(s.VIP)
	if err != nil {
		return nil, err
	}
	prefix, err := netip.ParsePrefix(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	// Reading the interface's addresses needs no privilege.
	nl, err := netvip.NewNetlink(vipSettings(s.VIP), a.log)
	if err != nil {
		return nil, err
	}
	ask := func(ctx context.Context) ([]net.HardwareAddr, error) {
		return netvip.WhoHas(ctx, s.VIP.Interface, prefix.Addr(), whoHasWindow)
	}
	if _, raw := netvip.HaveCaps(); !raw {
		helper := firstNonEmpty(a.cfg.VIPHelper, config.DefaultVIPHelper)
		h := netvip.Helper{Path: helper, Args: []string{"--scope", scope}, Backend: "netlink"}
		ask = func(ctx context.Context) ([]net.HardwareAddr, error) {
			if _, err := os.Stat(helper); err != nil {
				return nil, fmt.Errorf("this process lacks CAP_NET_RAW and the VIP helper %s is not usable: %w (run as root, install the package, or set vip_helper)", helper, err)
			}
			return h.WhoHas(ctx, whoHasWindow)
		}
	}
	return clusterstatus.NetlinkView{
		Prefix:    prefix,
		Interface: s.VIP.Interface,
		Held: func(ctx context.Context) (bool, error) {
			st, err := nl.Status(ctx)
			return st.Held, err
		},
		Ask:        ask,
		Neighbours: netvip.Neighbours,
	}, nil
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
			&cli.StringFlag{Name: "timeout", Usage: "how long to listen for answers", Value: whoHasWindow.String()}}, scopeFlags()...),
		Action: func(c *cli.Context) error {
			scope, err := requireScope(c)
			if err != nil {
				return err
			}
			s, err := a.scopeSettings(c, scope)
			if err != nil {
				return usageErr("vip who-has: %v", err)
			}
			timeout, err := netvip.ParseWhoHasTimeout(c.String("timeout"))
			if err != nil {
				return usageErr("vip who-has: %v", err)
			}
			return whoHas(c.Context, c.App.Writer, scope, s, timeout)
		},
	}
}

// whoHas asks the link who answers for scope's VIP and prints
// netvip.WhoHasAnswer as JSON.
func whoHas(ctx context.Context, w io.Writer, scope string, s *config.Scope, timeout time.Duration) error {
	if s.VIP.Backend != "netlink" {
		return usageErr("vip who-has: scope %s has VIP backend %q: only netlink is probed", scope, s.VIP.Backend)
	}
	addr, err := vipAddress(s.VIP)
	if err != nil {
		return usageErr("vip who-has: scope %s: %v", scope, err)
	}
	prefix, err := netip.ParsePrefix(addr)
	if err != nil {
		return usageErr("vip who-has: address %q of scope %s: %v", addr, scope, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	macs, err := netvip.WhoHas(ctx, s.VIP.Interface, prefix.Addr(), timeout)
	if err != nil {
		return cli.Exit(fmt.Sprintf("vip who-has: %v", err), exitFailure)
	}
	out := netvip.WhoHasAnswer{Address: prefix.Addr().String(), Interface: s.VIP.Interface, Answers: []string{}}
	for _, m := range macs {
		out.Answers = append(out.Answers, m.String())
	}
	return json.NewEncoder(w).Encode(out)
}
