package app

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/scope"
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

// overrides turns the scope flags that were set (or their PGHOOK_…
// variables) into scope.Overrides.
func overrides(c *cli.Context) scope.Overrides {
	str := func(name string) *string {
		if !c.IsSet(name) {
			return nil
		}
		v := c.String(name)
		return &v
	}
	var o scope.Overrides
	o.PatroniConfig = str("patroni-config")
	if c.IsSet("standby-leader-vip") {
		v := c.Bool("standby-leader-vip")
		o.StandbyLeaderVIP = &v
	}
	o.VIPBackend, o.VIPAddress, o.VIPInterface = str("vip-backend"), str("vip-address"), str("vip-interface")
	o.VIPLabel, o.VIPResource, o.VIPNode = str("vip-label"), str("vip-resource"), str("vip-node")
	return o
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

	r := a.resolver(os.Getppid())
	sc := r.Resolve(ev.Scope, overrides(c))
	if sc.Invalid != nil {
		// Keep the roster going, but never move a VIP on a guess.
		log.Error().Err(sc.Invalid).Msg("scope settings unusable: VIP left alone, roster still kept")
	}
	row := sc.RosterRow(ev, a.log)
	vip := scope.None()
	if sc.Invalid == nil {
		if vip, err = r.VIP(sc, scope.StackOptions{Guard: true}); err != nil {
			log.Error().Err(err).Msg("VIP backend unusable: VIP left alone")
			vip = scope.None()
		}
	}
	path, err := a.pgtabPath(c)
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	runner := hooks.Runner{
		VIP:    vip,
		Roster: pgtab.File{Path: path},
		Policy: hooks.Policy{StandbyLeaderHoldsVIP: sc.Settings.StandbyLeaderVIP},
		Log:    a.log,
		Now:    time.Now,
	}
	start := time.Now()
	_, err = runner.Handle(ctx, ev, row)
	end := time.Now()
	metrics.Record(a.cfg.MetricsTextfileDir, log, "callback_"+metrics.FileName(ev.Scope)+"_"+string(ev.Action),
		metrics.Callback(ev.Scope, string(ev.Action), ev.RawRole, end, end.Sub(start), err == nil))
	if err != nil {
		return cli.Exit("", exitFailure) // already logged with context
	}
	if sc.Invalid != nil && !errors.Is(sc.Invalid, config.ErrUnknownScope) {
		return cli.Exit("", exitFailure)
	}
	return nil
}
