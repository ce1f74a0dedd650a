package scope

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pghook/pghook/hooks"
	"github.com/pghook/pghook/internal/dcs"
	"github.com/pghook/pghook/internal/exitcode"
	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/vipctl"
	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// Watch runs s's reconciler (`pghook vip watch`, also in the VIP helper)
// until SIGTERM/SIGINT or parent ends, and serves the callbacks' requests
// on the scope's control socket.
func (r *Resolver) Watch(parent context.Context, s *Scope) error {
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := r.Log.With().Str("scope", s.Name).Logger()
	vip := s.Settings.VIP
	// Prometheus metrics, when vip.metrics_listen is set (m nil: off).
	var m *metrics.VIP
	if vip.MetricsListen != "" {
		ln, err := metrics.Listen(vip.MetricsListen)
		if err != nil {
			return exitcode.Usagef("vip watch: key scopes.%s.vip.%v", s.Name, err)
		}
		m = metrics.NewVIP(s.Name, vip.Backend, nil)
		go func() {
			if err := metrics.Serve(ctx, ln, m.Families); err != nil {
				log.Error().Err(err).Str("action", "vip watch").Msg("metrics endpoint stopped")
			}
		}()
	}
	// A long-running process announces from a goroutine: no process start
	// between a request and its first announcement.
	b, err := r.VIP(s, StackOptions{Guard: true, Announcer: netvip.Background{Ctx: ctx, Log: log},
		Options: []netvip.Option{netvip.WithTakeoverWaits(m.TakeoverWait)}})
	if err != nil {
		return err
	}
	cfg := s.Patroni
	if cfg == nil {
		if errors.Is(s.PatroniErr, ErrNoPatroniConfig) {
			return exitcode.Usagef("vip watch: no patroni.yml for scope %s: set scopes.%s.patroni_config", s.Name, s.Name)
		}
		return exitcode.Usagef("vip watch: %v", s.PatroniErr)
	}
	rest, err := cfg.RestClient(time.Second)
	if err != nil {
		return exitcode.Usagef("vip watch: %v", err)
	}
	dynamic := dcs.DynamicConfig(ctx, cfg, time.Second)
	w := &hooks.Watcher{VIP: b, Patroni: rest, Me: cfg.Name, Interval: vip.WatchInterval, Grace: vip.WatchGrace,
		HandoverMax: cfg.TTL(dynamic), Standby: cfg.StandbyCluster(dynamic), Log: log, Metrics: m}
	// The guard's view of the leader lock serves the watcher too.
	if g, ok := b.(hooks.GuardedVIP); ok && g.View != nil {
		w.DCS = g.View
	} else if view, err := s.LeaderView(time.Second); err == nil {
		w.DCS = view
	} else {
		log.Warn().Err(err).Msg("no DCS view: Patroni's REST API alone decides")
	}
	// Without its socket the watcher still reconciles; callbacks then use
	// the helper. A second watcher of the scope is an error.
	served := make(chan error, 1)
	socket := "none (callbacks use the helper)"
	srv, err := vipctl.Listen(s.Endpoint())
	switch {
	case errors.Is(err, vipctl.ErrAnotherWatcher):
		return exitcode.Failuref("vip watch: %v", err)
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
	// The read-only record (dns.replica_name): this node's address is in
	// it while Patroni calls it a read-serving replica.
	rec, err := r.ReplicaRecord(s, log)
	if err != nil {
		return exitcode.Usagef("vip watch: key scopes.%s.vip.dns: %v", s.Name, err)
	}
	replicas := make(chan error, 1)
	replicaName := ""
	if rec != nil {
		replicaName = rec.Name()
		go func() { replicas <- (&hooks.ReplicaSync{Record: rec, Patroni: rest, Log: log}).Run(ctx) }()
	} else {
		replicas <- nil
	}
	log.Info().Str("action", "vip watch").Str("vip_backend", b.Name()).Str("patroni", rest.Base()).Str("metrics", vip.MetricsListen).
		Str("control_socket", socket).Str("replica_record", replicaName).Dur("handover_max", w.HandoverMax).Bool("standby_cluster", w.Standby).Msg("watching")
	err = w.Run(ctx)
	stop()
	<-replicas
	if serr := <-served; serr != nil {
		log.Warn().Err(serr).Str("action", "vip watch").Msg("control socket")
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return exitcode.Failuref("vip watch: %v", err)
	}
	log.Info().Str("action", "vip watch").Msg("stopped; VIP left as it is")
	return nil
}

// AnnounceDetached is the detached announcer's process (see
// netvip.SpawnDetached): in the middle process it starts the final one and
// returns; in the final one it announces what request returns until the
// rounds are done, the address is gone, or SIGTERM.
func AnnounceDetached(log zerolog.Logger, request func() (netvip.AnnounceRequest, error)) error {
	self, err := os.Executable()
	if err != nil {
		return exitcode.Failuref("vip announce: %v", err)
	}
	if exit, err := netvip.RunDetached(self, os.Args); exit || err != nil {
		if err != nil {
			return exitcode.Failuref("vip announce: %v", err)
		}
		return nil
	}
	r, err := request()
	if err != nil {
		return exitcode.Usagef("vip announce: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := netvip.Announce(ctx, r, log); err != nil {
		return exitcode.Failuref("vip announce: %v", err)
	}
	return nil
}

// AnnounceFromArgs announces the request an unprivileged pghook passed in
// its arguments (`vip announce …`).
func AnnounceFromArgs(log zerolog.Logger, args []string) error {
	return AnnounceDetached(log, func() (netvip.AnnounceRequest, error) { return netvip.ParseAnnounceArgs(args) })
}

// AnnounceFromConfig announces s's VIP as its settings say: the VIP
// helper's announcer, which takes nothing from its caller but the scope.
func AnnounceFromConfig(log zerolog.Logger, s *Scope) error {
	return AnnounceDetached(log.With().Str("scope", s.Name).Logger(), func() (netvip.AnnounceRequest, error) {
		return netvip.FollowUp(s.Settings.VIP.Settings)
	})
}
