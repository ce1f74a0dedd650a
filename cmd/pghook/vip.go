package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/internal/vipctl"
	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

func (a *app) vipCommand() *cli.Command {
	scopeFlag := &cli.StringFlag{Name: "scope", Usage: "Patroni `SCOPE` whose VIP to act on", EnvVars: []string{"PGHOOK_SCOPE"}}
	op := func(name, usage string, do func(context.Context, netvip.Backend) error) *cli.Command {
		return &cli.Command{
			Name:  name,
			Usage: usage,
			Flags: append([]cli.Flag{scopeFlag}, scopeFlags()...),
			Action: func(c *cli.Context) error {
				scope, err := requireScope(c)
				if err != nil {
					return err
				}
				b, err := a.vipFor(c, scope, true, nil)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
				defer cancel()
				start := time.Now()
				err = do(ctx, b)
				ev := a.log.Info()
				if err != nil {
					ev = a.log.Error().Err(err)
				}
				ev.Str("scope", scope).Str("action", "vip "+name).Str("vip_backend", b.Name()).Dur("took_ms", time.Since(start)).Msg("vip")
				if err != nil {
					return cli.Exit("", exitFailure)
				}
				return nil
			},
		}
	}
	return &cli.Command{
		Name:  "vip",
		Usage: "the VIP by hand (same backends and checks as the callback), and its reconciler",
		Description: "Adding an address needs CAP_NET_ADMIN and announcing it CAP_NET_RAW. An\n" +
			"unprivileged pghook (a callback run by Patroni as postgres) runs the VIP\n" +
			"helper for these operations: a copy of pghook with those two file\n" +
			"capabilities that only group postgres may execute (vip_helper in\n" +
			"pghook.yaml, default " + config.DefaultVIPHelper + "). The helper takes only\n" +
			"--scope; every setting comes from " + config.DefaultPath + ", which it reads only\n" +
			"when root owns it and every directory above it, writable by root alone.",
		Subcommands: []*cli.Command{
			op("up", "hold the VIP on this node (refused when the DCS names another leader)", func(ctx context.Context, b netvip.Backend) error { return b.Hold(ctx) }),
			op("down", "release the VIP from this node", func(ctx context.Context, b netvip.Backend) error { return b.Release(ctx) }),
			{
				Name:  "status",
				Usage: "report whether this node holds the VIP",
				Flags: append([]cli.Flag{scopeFlag, &cli.BoolFlag{Name: "json"}}, scopeFlags()...),
				Action: func(c *cli.Context) error {
					scope, err := requireScope(c)
					if err != nil {
						return err
					}
					b, err := a.vipFor(c, scope, false, nil)
					if err != nil {
						return err
					}
					ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
					defer cancel()
					st, err := b.Status(ctx)
					if err != nil {
						return cli.Exit(fmt.Sprintf("vip status: %v", err), exitFailure)
					}
					if c.Bool("json") {
						return json.NewEncoder(c.App.Writer).Encode(st)
					}
					fmt.Fprintf(c.App.Writer, "backend=%s held=%t %s\n", b.Name(), st.Held, st.Detail)
					if s, err := a.scopeSettings(c, scope); err == nil && s.VIP.Backend == "netlink" {
						if warn := netvip.ArpAnnounceWarning(s.VIP.Interface); warn != "" {
							fmt.Fprintln(c.App.ErrWriter, "warning:", warn)
						}
					}
					return nil
				},
			},
			{
				Name:  "watch",
				Usage: "hold the VIP exactly while this node is the primary (the safety net behind callbacks)",
				Description: "Every watch_interval (300ms), and at once whenever an etcd watch sees the\n" +
					"leader key change, it asks the local Patroni's REST API /primary and the\n" +
					"DCS leader key: a key naming another member releases; otherwise Patroni\n" +
					"decides; when Patroni does not answer the key decides; when neither\n" +
					"answers it keeps the current state for watch_grace (3s), then releases.\n" +
					"A healthy primary keeps the VIP while etcd is unreachable. Stopping the\n" +
					"watcher leaves the VIP as it is. Run it as a service (install writes one).\n\n" +
					"It also serves the callbacks: a callback without the capabilities asks it,\n" +
					"over the socket <run_dir>/vip-<scope>.sock (run_dir: /run/pghook), to hold\n" +
					"or release the VIP now (the same guarded hold as the helper, without\n" +
					"starting a process); only its own user and root may ask, and a callback\n" +
					"trusts only a watcher of its own user or root. Without a watcher the\n" +
					"callback runs the helper.",
				Flags: append([]cli.Flag{scopeFlag}, scopeFlags()...),
				Action: func(c *cli.Context) error {
					scope, err := requireScope(c)
					if err != nil {
						return err
					}
					return a.vipWatch(c, scope)
				},
			},
			a.vipWhoHasCommand(scopeFlag),
			{
				Name:            "announce",
				Usage:           "(internal) send the remaining gratuitous ARP / NA rounds, detached from the callback",
				Hidden:          true,
				SkipFlagParsing: true,
				Action: func(c *cli.Context) error {
					return a.announceDetached(a.log, func() (netvip.AnnounceRequest, error) {
						return netvip.ParseAnnounceArgs(c.Args().Slice())
					})
				},
			},
		},
	}
}

// announceDetached is the detached announcer's process (see
// netvip.SpawnDetached): in the middle process it starts the final one and
// returns; in the final one it announces what request returns until the
// rounds are done, the address is gone, or SIGTERM.
func (a *app) announceDetached(log zerolog.Logger, request func() (netvip.AnnounceRequest, error)) error {
	self, err := os.Executable()
	if err != nil {
		return cli.Exit(fmt.Sprintf("vip announce: %v", err), exitFailure)
	}
	if exit, err := netvip.RunDetached(self, os.Args); exit || err != nil {
		if err != nil {
			return cli.Exit(fmt.Sprintf("vip announce: %v", err), exitFailure)
		}
		return nil
	}
	r, err := request()
	if err != nil {
		return usageErr("vip announce: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := netvip.Announce(ctx, r, log); err != nil {
		return cli.Exit(fmt.Sprintf("vip announce: %v", err), exitFailure)
	}
	return nil
}

func requireScope(c *cli.Context) (string, error) {
	s := c.String("scope")
	if s == "" {
		return "", usageErr("vip %s: --scope is required (the Patroni scope whose VIP to act on)", c.Command.Name)
	}
	return s, nil
}

// vipFor builds the VIP backend stack for scope from pghook.yaml and the
// command's flags (see vipStack).
func (a *app) vipFor(c *cli.Context, scope string, guard bool, ann netvip.Announcer) (netvip.Backend, error) {
	s, err := a.scopeSettings(c, scope)
	if err != nil {
		return nil, usageErr("vip: %v", err)
	}
	return a.vipStack(scope, s, guard, ann)
}

// vipStack builds the VIP backend stack for scope with settings s, as the
// callback, the vip commands and the VIP helper use it:
//
//   - backend none: nothing to do;
//   - netlink without CAP_NET_ADMIN/CAP_NET_RAW (and not root): the
//     scope's running watcher (`pghook vip watch`, over its control
//     socket), else the privileged helper, which apply the same stack;
//     the watcher itself (the caller that passes ann) goes straight to
//     the helper: the socket is its own;
//   - otherwise the backend itself, guarded by the DCS leader key when
//     guard is set, announcing through ann (nil: a detached process, which
//     outlives a callback that Patroni kills).
func (a *app) vipStack(scope string, s *config.Scope, guard bool, ann netvip.Announcer, opts ...netvip.Option) (netvip.Backend, error) {
	log := a.log.With().Str("scope", scope).Logger()
	backend := s.VIP.Backend
	if backend == "" || backend == "none" {
		return netvip.None{}, nil
	}
	// Only netlink needs capabilities; pcs needs membership of haclient.
	if admin, raw := netvip.HaveCaps(); backend == "netlink" && !(admin && raw) && !a.privileged {
		helper := firstNonEmpty(a.cfg.VIPHelper, config.DefaultVIPHelper)
		if _, err := os.Stat(helper); err != nil {
			return nil, cli.Exit(fmt.Sprintf("vip: this process lacks CAP_NET_ADMIN/CAP_NET_RAW and the VIP helper %s is not usable: %v (install the package, or set vip_helper)", helper, err), exitFailure)
		}
		// The helper reads everything else from its own root-owned config.
		h := netvip.Helper{Path: helper, Args: []string{"--scope", scope}, Backend: backend}
		if ann != nil {
			return h, nil
		}
		return &vipctl.Backend{Endpoint: a.endpoint(scope), Fallback: h, Log: log}, nil
	}
	if ann == nil {
		self, err := os.Executable()
		if err != nil {
			return nil, cli.Exit(fmt.Sprintf("vip: %v", err), exitFailure)
		}
		// The announcer must hold CAP_NET_RAW too: it is this same file.
		// The helper's announcer reads what to announce from its config.
		ann = netvip.Spawner{Self: self, Command: []string{"vip", "announce"}}
		if a.privileged {
			ann = netvip.Spawner{Self: self, Command: []string{"announce", "--scope", scope}, Fixed: true}
		}
	}
	b, err := a.newBackend(scope, s, log, append([]netvip.Option{netvip.WithAnnouncer(ann)}, opts...)...)
	if err != nil {
		return nil, usageErr("vip: %v", err)
	}
	if !guard {
		return b, nil
	}
	me, view, err := a.leaderView(scope, s, log)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("vip: %v", err), exitFailure)
	}
	return hooks.GuardedVIP{Backend: b, Me: me, View: view, Log: log}, nil
}

// endpoint is scope's watcher control socket.
func (a *app) endpoint(scope string) vipctl.Endpoint {
	return vipctl.Endpoint{Dir: a.cfg.ControlDir(), Scope: scope}
}

// patroniConfigPath finds scope's patroni.yml. The VIP helper takes it
// from its root-owned config or the fixed default paths only, never from
// its caller (a parent process's command line, a flag).
func (a *app) patroniConfigPath(scope string, s *config.Scope) string {
	ppid := os.Getppid()
	if a.privileged {
		ppid = 0
	}
	return patroni.FindConfig(scope, s.PatroniConfig, ppid)
}

// leaderView returns this member's name and the view of the leader lock,
// from the scope's patroni.yml. When it cannot be read, an unprivileged
// caller gets a nil view (the guard then relies on Patroni's decision and
// the address probe); the VIP helper gets an error: it never takes the
// VIP without a DCS check, whatever its caller arranged.
func (a *app) leaderView(scope string, s *config.Scope, log zerolog.Logger) (string, hooks.LeaderView, error) {
	refuse := func(err error) (string, hooks.LeaderView, error) {
		if a.privileged {
			return "", nil, fmt.Errorf("%w: the VIP helper takes the VIP only with a DCS check (set scopes.%s.patroni_config in %s)", err, scope, a.cfg.Path)
		}
		log.Warn().Err(err).Msg("the VIP is taken without a DCS check")
		return "", nil, nil
	}
	pc := a.patroniConfigPath(scope, s)
	if pc == "" {
		return refuse(fmt.Errorf("no patroni.yml found for scope %s", scope))
	}
	cfg, err := a.loadPatroni(pc)
	if err != nil {
		return refuse(err)
	}
	if cfg.Scope != "" && cfg.Scope != scope {
		return refuse(fmt.Errorf("%s is for scope %s, not %s", pc, cfg.Scope, scope))
	}
	view, err := cfg.NewLeaderReader(time.Second)
	if err != nil {
		if a.privileged {
			return refuse(err)
		}
		log.Warn().Err(err).Msg("the VIP is taken without a DCS check")
		return cfg.Name, nil, nil
	}
	return cfg.Name, view, nil
}

// vipWatch runs the reconciler of scope with pghook.yaml and the flags.
func (a *app) vipWatch(c *cli.Context, scope string) error {
	s, err := a.scopeSettings(c, scope)
	if err != nil {
		return usageErr("vip watch: %v", err)
	}
	return a.watch(c.Context, scope, s)
}

// watch runs the reconciler until SIGTERM/SIGINT, and serves the
// callbacks' requests on the scope's control socket.
func (a *app) watch(parent context.Context, scope string, s *config.Scope) error {
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := a.log.With().Str("scope", scope).Logger()
	// Prometheus metrics, when vip.metrics_listen is set (m nil: off).
	var m *metrics.VIP
	if s.VIP.MetricsListen != "" {
		ln, err := metrics.Listen(s.VIP.MetricsListen)
		if err != nil {
			return usageErr("vip watch: key scopes.%s.vip.%v", scope, err)
		}
		m = metrics.NewVIP(scope, s.VIP.Backend, nil)
		go func() {
			if err := metrics.Serve(ctx, ln, m.Families); err != nil {
				log.Error().Err(err).Str("action", "vip watch").Msg("metrics endpoint stopped")
			}
		}()
	}
	// A long-running process announces from a goroutine: no process start
	// between a request and its first announcement.
	b, err := a.vipStack(scope, s, true, netvip.Background{Ctx: ctx, Log: log}, netvip.WithTakeoverWaits(m.TakeoverWait))
	if err != nil {
		return err
	}
	pc := a.patroniConfigPath(scope, s)
	if pc == "" {
		return usageErr("vip watch: no patroni.yml for scope %s: set scopes.%s.patroni_config", scope, scope)
	}
	cfg, err := a.loadPatroni(pc)
	if err != nil {
		return usageErr("vip watch: %v", err)
	}
	rest, err := cfg.RestClient(time.Second)
	if err != nil {
		return usageErr("vip watch: %v", err)
	}
	w := &hooks.Watcher{VIP: b, Patroni: rest, Me: cfg.Name, Interval: s.VIP.WatchInterval, Grace: s.VIP.WatchGrace,
		HandoverMax: cfg.TTL(ctx, time.Second), Log: log, Metrics: m}
	// The guard's view of the leader lock serves the watcher too.
	if g, ok := b.(hooks.GuardedVIP); ok && g.View != nil {
		w.DCS = g.View
	} else if view, err := cfg.NewLeaderReader(time.Second); err == nil {
		w.DCS = view
	} else {
		log.Warn().Err(err).Msg("no DCS view: Patroni's REST API alone decides")
	}
	// Without its socket the watcher still reconciles; callbacks then use
	// the helper. A second watcher of the scope is an error.
	served := make(chan error, 1)
	socket := "none (callbacks use the helper)"
	srv, err := vipctl.Listen(a.endpoint(scope))
	switch {
	case errors.Is(err, vipctl.ErrAnotherWatcher):
		return cli.Exit(fmt.Sprintf("vip watch: %v", err), exitFailure)
	case err != nil:
		log.Error().Err(err).Str("action", "vip watch").Msg("control socket unusable: reconciling without it; callbacks use the helper")
		served <- nil
	default:
		srv.Log = log
		socket = srv.Addr()
		go func() {
			served <- srv.Serve(ctx, func(ctx context.Context, op vipctl.Op) error {
				start := time.Now()
				err := w.Request(ctx, op == vipctl.Hold)
				m.Request(string(op), time.Since(start), err)
				return err
			})
		}()
	}
	log.Info().Str("action", "vip watch").Str("vip_backend", b.Name()).Str("patroni", rest.Base()).Str("metrics", s.VIP.MetricsListen).
		Str("control_socket", socket).Dur("handover_max", w.HandoverMax).Msg("watching")
	err = w.Run(ctx)
	stop()
	if serr := <-served; serr != nil {
		log.Warn().Err(serr).Str("action", "vip watch").Msg("control socket")
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return cli.Exit(fmt.Sprintf("vip watch: %v", err), exitFailure)
	}
	log.Info().Str("action", "vip watch").Msg("stopped; VIP left as it is")
	return nil
}
