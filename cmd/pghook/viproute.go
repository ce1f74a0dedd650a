package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pghook/pghook/internal/clusterstatus"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/netvip/dnsvip"
	"github.com/pghook/pghook/netvip/execvip"
	"github.com/rs/zerolog"
)

// newBackend builds the VIP backend that s names. dns and exec need no
// capabilities: they run in this process (the callback, `vip watch`),
// never in the VIP helper, which refuses them.
func (a *app) newBackend(scope string, s *config.Scope, log zerolog.Logger, opts ...netvip.Option) (netvip.Backend, error) {
	v := s.VIP
	switch v.Backend {
	case "dns", "exec":
		if a.privileged {
			return nil, fmt.Errorf("backend %s runs without privileges: the VIP helper serves netlink only", v.Backend)
		}
	default:
		return netvip.New(vipSettings(v), log, opts...)
	}
	if v.Backend == "dns" {
		d := v.DNS
		return dnsvip.New(dnsvip.Settings{Name: d.Name, Zone: d.Zone, Server: d.Server, TTL: d.TTL, KeyFile: d.TSIGKeyFile,
			Transport: d.Transport, Timeout: d.Timeout, Interface: v.Interface}, log)
	}
	e := v.Exec
	addr, err := vipAddress(v)
	if err != nil {
		return nil, err
	}
	return execvip.New(execvip.Settings{Hold: e.Hold, Release: e.Release, Check: e.Check, Timeout: e.Timeout,
		Scope: scope, Node: a.memberName(scope, s), Address: addr}, log)
}

// memberName is this node's Patroni name (patroni.yml), else the host name.
func (a *app) memberName(scope string, s *config.Scope) string {
	if pc := a.patroniConfigPath(scope, s); pc != "" {
		if cfg, err := a.loadPatroni(pc); err == nil && cfg.Name != "" {
			return cfg.Name
		}
	}
	h, _ := os.Hostname()
	return h
}

// routeView tells `pghook status` who answers for a dns or exec VIP: what
// the name resolves to on its server, or this host's check command.
func (a *app) routeView(scope string, s *config.Scope) (clusterstatus.VIPView, error) {
	b, err := a.newBackend(scope, s, a.log)
	if err != nil {
		return nil, err
	}
	if d, ok := b.(*dnsvip.Backend); ok {
		self, _ := dnsvip.InterfaceAddr(s.VIP.Interface)
		return clusterstatus.DNSView{Name: s.VIP.DNS.Name, Resolve: d.Resolve, Self: self}, nil
	}
	addr, _ := vipAddress(s.VIP)
	return clusterstatus.ExecView{Address: addr, Held: func(ctx context.Context) (bool, error) {
		st, err := b.Status(ctx)
		return st.Held, err
	}}, nil
}

// vipAddress is the scope's VIP: address, or the one of addresses whose
// subnet holds an address of the interface.
func vipAddress(v config.VIP) (string, error) {
	if v.Address != "" || len(v.Addresses) == 0 {
		return v.Address, nil
	}
	return netvip.PickAddress(v.Addresses, v.Interface)
}
