package clusterstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pghook/pghook/internal/dcs"
	"github.com/pghook/pghook/internal/exitcode"
	"github.com/pghook/pghook/internal/scope"
	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/netvip/dnsvip"
)

// WhoHasWindow is how long status listens for hosts answering for the
// VIP: long enough for every holder on a LAN to answer one of the three
// probes, short enough for a monitoring check.
const WhoHasWindow = 200 * time.Millisecond

// ForScope gathers the report of resolved scope s: its patroni.yml gives
// the REST APIs and the leader view, r the VIP view.
func ForScope(ctx context.Context, r *scope.Resolver, s *scope.Scope) *Report {
	failed := func(format string, v ...any) *Report {
		return &Report{Scope: s.Name, Members: []Member{}, ExitCode: CodeUnknown, Problems: []string{fmt.Sprintf(format, v...)}}
	}
	cfg := s.Patroni
	var other *scope.OtherScopeError
	switch {
	case errors.Is(s.PatroniErr, scope.ErrNoPatroniConfig):
		return failed("no patroni.yml for scope %s: set scopes.%s.patroni_config in %s or pass --patroni-config", s.Name, s.Name, r.Config.Path)
	case errors.As(s.PatroniErr, &other):
		return failed("%s is the Patroni config of scope %s, not %s: fix scopes.%s.patroni_config", other.Path, other.ConfigScope, s.Name, s.Name)
	case s.PatroniErr != nil:
		return failed("%v", s.PatroniErr)
	}
	const callTimeout = time.Second
	in := Inputs{Scope: s.Name, Me: cfg.Name, StandbyLeaderVIP: s.Settings.StandbyLeaderVIP}
	local, err := cfg.RestClient(callTimeout)
	if err != nil {
		return failed("%v", err)
	}
	defer local.Close()
	in.Local = local
	in.At = func(apiURL string) (API, error) { return cfg.RestClientAt(apiURL, callTimeout) }
	in.Others = func(ctx context.Context) ([]API, error) {
		ms, err := dcs.MemberAPIs(ctx, cfg, callTimeout)
		if err != nil {
			return nil, err
		}
		var out []API
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
	if view, err := s.LeaderView(callTimeout); err == nil {
		in.Leader = view
	}
	in.VIP, err = VIPViewOf(r, s)
	if err != nil {
		return failed("VIP settings of scope %s: %v", s.Name, err)
	}
	return Gather(ctx, in)
}

// VIPViewOf returns how to find who answers for s's VIP; nil when the
// scope has none.
func VIPViewOf(r *scope.Resolver, s *scope.Scope) (VIPView, error) {
	v := s.Settings.VIP
	switch v.Backend {
	case "", "none":
		return nil, nil
	case "pcs":
		p, err := netvip.NewPcs(v.Settings, r.Log)
		if err != nil {
			return nil, err
		}
		return PcsView{Resource: v.Resource, Locate: p.Locate}, nil
	case "dns", "exec":
		return routeView(r, s)
	}
	addr, err := s.VIPAddress()
	if err != nil {
		return nil, err
	}
	prefix, err := netip.ParsePrefix(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	// Reading the interface's addresses needs no privilege.
	nl, err := netvip.NewNetlink(v.Settings, r.Log)
	if err != nil {
		return nil, err
	}
	probe := r.Prober(s, prefix)
	return NetlinkView{
		Prefix:    prefix,
		Interface: v.Interface,
		Held: func(ctx context.Context) (bool, error) {
			st, err := nl.Status(ctx)
			return st.Held, err
		},
		Ask:        func(ctx context.Context) ([]net.HardwareAddr, error) { return probe(ctx, WhoHasWindow) },
		Neighbours: netvip.Neighbours,
	}, nil
}

// routeView tells who answers for a dns or exec VIP: what the name
// resolves to on its server, or this host's check command.
func routeView(r *scope.Resolver, s *scope.Scope) (VIPView, error) {
	b, err := r.Backend(s)
	if err != nil {
		return nil, err
	}
	if d, ok := b.(*dnsvip.Backend); ok {
		self, _ := dnsvip.InterfaceAddr(s.Settings.VIP.Interface)
		return DNSView{Name: s.Settings.VIP.DNS.Name, Resolve: d.Resolve, Self: self}, nil
	}
	addr, _ := s.VIPAddress()
	return ExecView{Address: addr, Held: func(ctx context.Context) (bool, error) {
		st, err := b.Status(ctx)
		return st.Held, err
	}}, nil
}

// WhoHas asks the link who answers for s's netlink VIP within timeout and
// prints netvip.WhoHasAnswer as JSON: what the VIP helper runs for an
// unprivileged status (`vip who-has`).
func WhoHas(ctx context.Context, w io.Writer, s *scope.Scope, timeout time.Duration) error {
	v := s.Settings.VIP
	if v.Backend != "netlink" {
		return exitcode.Usagef("vip who-has: scope %s has VIP backend %q: only netlink is probed", s.Name, v.Backend)
	}
	addr, err := s.VIPAddress()
	if err != nil {
		return exitcode.Usagef("vip who-has: scope %s: %v", s.Name, err)
	}
	prefix, err := netip.ParsePrefix(addr)
	if err != nil {
		return exitcode.Usagef("vip who-has: address %q of scope %s: %v", addr, s.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	macs, err := netvip.WhoHas(ctx, v.Interface, prefix.Addr(), timeout)
	if err != nil {
		return exitcode.Failuref("vip who-has: %v", err)
	}
	out := netvip.WhoHasAnswer{Address: prefix.Addr().String(), Interface: v.Interface, Answers: []string{}}
	for _, m := range macs {
		out.Answers = append(out.Answers, m.String())
	}
	return json.NewEncoder(w).Encode(out)
}

// ParseWhoHasTimeout reads who-has's --timeout (1ms..10s).
func ParseWhoHasTimeout(s string) (time.Duration, error) { return netvip.ParseWhoHasTimeout(s) }

// RunOptions shape `pghook status`.
type RunOptions struct {
	Timeout time.Duration // bound of each scope's report
	JSON    bool
	Out     io.Writer
}

// Run gathers the reports of the resolved scopes at once, prints them
// (table or JSON) and returns the exit code as an exitcode error (nil for
// 0): with several scopes, the highest.
func Run(ctx context.Context, r *scope.Resolver, scopes []*scope.Scope, o RunOptions) error {
	reports := make([]*Report, len(scopes))
	var wg sync.WaitGroup
	for i, s := range scopes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			ctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			reports[i] = ForScope(ctx, r, s)
			r.Log.Debug().Str("scope", s.Name).Str("action", "status").Int("exit_code", reports[i].ExitCode).
				Dur("took_ms", time.Since(start)).Msg("status")
		}()
	}
	wg.Wait()
	var err error
	if o.JSON {
		err = WriteJSON(o.Out, reports)
	} else {
		err = WriteTable(o.Out, reports)
	}
	if err != nil {
		return exitcode.Failuref("status: writing the output: %v", err)
	}
	if code := ExitCode(reports); code != 0 {
		return exitcode.Silent(code)
	}
	return nil
}
