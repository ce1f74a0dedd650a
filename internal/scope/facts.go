package scope

import (
	"context"
	"errors"
	"os"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/pgtab"
	"github.com/rs/zerolog"
)

// RosterRow is this node's roster row for ev, from the scope's patroni.yml
// when it was found, read and is for the scope, else from the seed's
// legacy arguments, else the host name.
func (sc *Scope) RosterRow(ev hooks.Event, log zerolog.Logger) pgtab.Row {
	row := pgtab.Row{Scope: ev.Scope}
	if ev.Legacy != nil {
		row.Node, row.DataDir, row.Listen, row.BinDir = ev.Legacy.Node, ev.Legacy.DataDir, ev.Legacy.Listen, ev.Legacy.BinDir
	}
	var other *OtherScopeError
	switch cfg := sc.Patroni; {
	case cfg != nil:
		row.Node = cfg.Name
		row.DataDir = cfg.Postgresql.DataDir
		row.Listen = FirstNonEmpty(cfg.Postgresql.Listen, row.Listen)
		row.BinDir = FirstNonEmpty(cfg.Postgresql.BinDir, row.BinDir)
		row.PatroniConfig = cfg.Path
	case errors.As(sc.PatroniErr, &other):
		log.Warn().Str("scope", ev.Scope).Str("patroni_config", other.Path).Str("config_scope", other.ConfigScope).Msg("Patroni config is for another scope: ignored")
	case errors.Is(sc.PatroniErr, ErrNoPatroniConfig):
	default:
		log.Warn().Str("scope", ev.Scope).Err(sc.PatroniErr).Msg("reading Patroni config")
	}
	if sc.Patroni == nil && sc.Settings.PatroniConfig != "" {
		log.Warn().Str("scope", ev.Scope).Str("patroni_config", sc.Settings.PatroniConfig).Msg("Patroni config unreadable: roster row from the arguments only")
	}
	if row.Node == "" {
		row.Node, _ = os.Hostname()
	}
	return row
}

// RestoreFacts are what a restore learns from the scope's patroni.yml:
// postgresql.config_dir, and how to read the cluster's system identifier
// from the DCS (nil: the leader alone tells the cluster). A patroni.yml
// that cannot be used is logged, and the restore goes on without it.
func (sc *Scope) RestoreFacts(log zerolog.Logger) (configDir string, sysID func(context.Context) (uint64, bool, error)) {
	var other *OtherScopeError
	switch {
	case errors.As(sc.PatroniErr, &other):
		log.Warn().Str("patroni_config", other.Path).Str("config_scope", other.ConfigScope).Msg("Patroni config is for another scope: ignored")
	case errors.Is(sc.PatroniErr, ErrNoPatroniConfig):
	case sc.PatroniErr != nil:
		log.Warn().Err(sc.PatroniErr).Msg("reading Patroni config; the cluster identity comes from the leader alone")
	default:
		configDir, sysID = sc.Patroni.Postgresql.ConfigDir, sc.ClusterSystemID()
		if sysID == nil {
			log.Warn().Str("dcs", sc.Patroni.DCS()).Msg("pghook cannot read this DCS: the cluster identity comes from the leader alone")
		}
	}
	return configDir, sysID
}
