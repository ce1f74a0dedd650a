package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/pgtab"
	"github.com/urfave/cli/v2"
)

// scopeFlags are the per-scope settings; each overrides the scope's
// section of pghook.yaml.
func scopeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "patroni-config", Usage: "this scope's patroni.yml `FILE` (default: the config's patroni_config, else the calling Patroni's, else /etc/patroni/<scope>.yml)", EnvVars: []string{"PGHOOK_PATRONI_CONFIG"}, Category: "scope"},
		&cli.StringFlag{Name: "vip-backend", Usage: "none, netlink, pcs, dns or exec", EnvVars: []string{"PGHOOK_VIP_BACKEND"}, Category: "vip"},
		&cli.StringFlag{Name: "vip-address", Usage: "VIP as `CIDR`, e.g. 10.0.0.100/24", EnvVars: []string{"PGHOOK_VIP_ADDRESS"}, Category: "vip"},
		&cli.StringFlag{Name: "vip-interface", Usage: "interface to hold the VIP on", EnvVars: []string{"PGHOOK_VIP_INTERFACE"}, Category: "vip"},
		&cli.StringFlag{Name: "vip-label", Usage: "address label, e.g. eth0:vip", EnvVars: []string{"PGHOOK_VIP_LABEL"}, Category: "vip"},
		&cli.StringFlag{Name: "vip-resource", Usage: "Pacemaker resource (backend pcs)", EnvVars: []string{"PGHOOK_VIP_RESOURCE"}, Category: "vip"},
		&cli.StringFlag{Name: "vip-node", Usage: "this node's Pacemaker name (backend pcs; default: crm_node -n)", EnvVars: []string{"PGHOOK_VIP_NODE"}, Category: "vip"},
		&cli.BoolFlag{Name: "standby-leader-vip", Usage: "a standby cluster's leader holds the VIP", EnvVars: []string{"PGHOOK_STANDBY_LEADER_VIP"}, Category: "vip"},
	}
}

// scopeSettings merges the scope's section with the flags.
func (a *app) scopeSettings(c *cli.Context, scope string) (*config.Scope, error) {
	sec, err := a.cfg.Scope(scope)
	s := *sec
	if c.IsSet("patroni-config") {
		s.PatroniConfig = c.String("patroni-config")
	}
	if c.IsSet("standby-leader-vip") {
		s.StandbyLeaderVIP = c.Bool("standby-leader-vip")
	}
	for name, dst := range map[string]*string{"vip-backend": &s.VIP.Backend, "vip-address": &s.VIP.Address, "vip-interface": &s.VIP.Interface, "vip-label": &s.VIP.Label, "vip-resource": &s.VIP.Resource, "vip-node": &s.VIP.Node} {
		if c.IsSet(name) {
			*dst = c.String(name)
		}
	}
	if c.IsSet("vip-address") {
		s.VIP.Addresses = nil // the flag names the VIP
	}
	if verr := s.VIP.Validate(); verr != nil {
		return &s, fmt.Errorf("VIP settings of scope %s: %w", scope, verr)
	}
	return &s, err
}

func (a *app) callbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "callback",
		Usage:     "Patroni callback: VIP to the primary, this node's row in .pgtab",
		ArgsUsage: "[SCOPE NODE DATA_DIR LISTEN BIN_DIR PASSWORD] ACTION ROLE SCOPE",
		Description: "Configure as postgresql.callbacks.on_start, on_stop, on_restart, on_reload and\n" +
			"on_role_change; Patroni appends ACTION ROLE SCOPE. The seed's six legacy\n" +
			"arguments before them are accepted; the password among them is ignored.\n" +
			"The desired state depends on ROLE alone, so a callback killed half-way is\n" +
			"healed by the next. Exit 0 when the desired state holds at exit.",
		Flags:  scopeFlags(),
		Action: a.callback,
	}
}

func (a *app) callback(c *cli.Context) error {
	ev, err := hooks.ParseArgs(c.Args().Slice())
	if err != nil {
		return usageErr("callback: %v", err)
	}
	log := a.log.With().Str("scope", ev.Scope).Str("action", string(ev.Action)).Str("role", ev.RawRole).Logger()
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()

	settings, serr := a.scopeSettings(c, ev.Scope)
	if serr != nil {
		// Keep the roster going, but never move a VIP on a guess.
		log.Error().Err(serr).Msg("scope settings unusable: VIP left alone, roster still kept")
		settings.VIP = config.VIP{}
	}
	row, pcfg := a.nodeFacts(ev, settings, os.Getppid())
	if pcfg == nil && settings.PatroniConfig != "" {
		log.Warn().Str("patroni_config", settings.PatroniConfig).Msg("Patroni config unreadable: roster row from the arguments only")
	}
	var vip netvip.Backend = netvip.None{}
	if serr == nil {
		if vip, err = a.vipFor(c, ev.Scope, true, nil); err != nil {
			log.Error().Err(err).Msg("VIP backend unusable: VIP left alone")
			vip = netvip.None{}
		}
	}
	path, err := a.pgtabPath(c)
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	runner := hooks.Runner{
		VIP:    vip,
		Roster: pgtab.File{Path: path},
		Policy: hooks.Policy{StandbyLeaderHoldsVIP: settings.StandbyLeaderVIP},
		Log:    a.log,
		Now:    time.Now,
	}
	start := time.Now()
	_, err = runner.Handle(ctx, ev, row)
	end := time.Now()
	a.textfile(log, "callback_"+metrics.FileName(ev.Scope)+"_"+string(ev.Action),
		metrics.Callback(ev.Scope, string(ev.Action), ev.RawRole, end, end.Sub(start), err == nil))
	if err != nil {
		return cli.Exit("", exitFailure) // already logged with context
	}
	if serr != nil && !errors.Is(serr, config.ErrUnknownScope) {
		return cli.Exit("", exitFailure)
	}
	return nil
}

func vipSettings(v config.VIP) netvip.Settings {
	return netvip.Settings{Backend: v.Backend, Address: v.Address, Addresses: v.Addresses, Interface: v.Interface, Label: v.Label, Resource: v.Resource, Node: v.Node,
		Announcements: v.Announcements, AnnounceInterval: v.AnnounceInterval, TakeoverWait: v.TakeoverWait, ProbeTimeout: v.ProbeTimeout}
}

// nodeFacts builds this node's roster row from patroni.yml when it can be
// found and read, else from the seed's legacy arguments, else the host
// name. The returned config is nil when patroni.yml was not read.
func (a *app) nodeFacts(ev hooks.Event, s *config.Scope, ppid int) (pgtab.Row, *patroni.Config) {
	row := pgtab.Row{Scope: ev.Scope}
	if ev.Legacy != nil {
		row.Node, row.DataDir, row.Listen, row.BinDir = ev.Legacy.Node, ev.Legacy.DataDir, ev.Legacy.Listen, ev.Legacy.BinDir
	}
	pc := patroni.FindConfig(ev.Scope, s.PatroniConfig, ppid)
	var cfg *patroni.Config
	if pc != "" {
		if c, err := a.loadPatroni(pc); err == nil && c.Scope == ev.Scope {
			cfg = c
		} else if err != nil {
			a.log.Warn().Str("scope", ev.Scope).Err(err).Msg("reading Patroni config")
		} else {
			a.log.Warn().Str("scope", ev.Scope).Str("patroni_config", pc).Str("config_scope", c.Scope).Msg("Patroni config is for another scope: ignored")
		}
	}
	if cfg != nil {
		row.Node = cfg.Name
		row.DataDir = cfg.Postgresql.DataDir
		row.Listen = firstNonEmpty(cfg.Postgresql.Listen, row.Listen)
		row.BinDir = firstNonEmpty(cfg.Postgresql.BinDir, row.BinDir)
		row.PatroniConfig = cfg.Path
	}
	if row.Node == "" {
		row.Node, _ = os.Hostname()
	}
	return row, cfg
}
