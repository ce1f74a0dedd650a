package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/scope"
	"github.com/urfave/cli/v2"
)

func (a *app) vipCommand() *cli.Command {
	scopeFlag := &cli.StringFlag{Name: "scope", Usage: "Patroni `SCOPE` whose VIP to act on", EnvVars: []string{"PGHOOK_SCOPE"}}
	op := func(name, usage string, hold bool) *cli.Command {
		return &cli.Command{
			Name:  name,
			Usage: usage,
			Flags: append([]cli.Flag{scopeFlag}, scopeFlags()...),
			Action: func(c *cli.Context) error {
				sc, r, err := a.vipScope(c)
				if err != nil {
					return err
				}
				b, err := r.VIP(sc, scope.StackOptions{Guard: true})
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
				defer cancel()
				start := time.Now()
				if hold {
					err = b.Hold(ctx)
				} else {
					err = b.Release(ctx)
				}
				ev := a.log.Info()
				if err != nil {
					ev = a.log.Error().Err(err)
				}
				ev.Str("scope", sc.Name).Str("action", "vip "+name).Str("vip_backend", b.Name()).Dur("took_ms", time.Since(start)).Msg("vip")
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
			op("up", "hold the VIP on this node (refused when the DCS names another leader)", true),
			op("down", "release the VIP from this node", false),
			{
				Name:  "status",
				Usage: "report whether this node holds the VIP",
				Flags: append([]cli.Flag{scopeFlag, &cli.BoolFlag{Name: "json"}}, scopeFlags()...),
				Action: func(c *cli.Context) error {
					sc, r, err := a.vipScope(c)
					if err != nil {
						return err
					}
					b, err := r.VIP(sc, scope.StackOptions{})
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
					if warn := sc.ArpAnnounceWarning(); warn != "" {
						fmt.Fprintln(c.App.ErrWriter, "warning:", warn)
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
					sc, r, err := a.vipScope(c)
					if err != nil {
						return err
					}
					return r.Watch(c.Context, sc)
				},
			},
			a.vipWhoHasCommand(scopeFlag),
			{
				Name:            "announce",
				Usage:           "(internal) send the remaining gratuitous ARP / NA rounds, detached from the callback",
				Hidden:          true,
				SkipFlagParsing: true,
				Action: func(c *cli.Context) error {
					return scope.AnnounceFromArgs(a.log, c.Args().Slice())
				},
			},
		},
	}
}

func requireScope(c *cli.Context) (string, error) {
	s := c.String("scope")
	if s == "" {
		return "", usageErr("vip %s: --scope is required (the Patroni scope whose VIP to act on)", c.Command.Name)
	}
	return s, nil
}

// vipScope resolves the scope a vip command names (--scope, the scope
// flags); unusable settings are a usage error.
func (a *app) vipScope(c *cli.Context) (*scope.Scope, *scope.Resolver, error) {
	name, err := requireScope(c)
	if err != nil {
		return nil, nil, err
	}
	r := a.resolver(os.Getppid())
	sc := r.Resolve(name, overrides(c))
	if sc.Invalid != nil {
		what := "vip"
		if n := c.Command.Name; n == "watch" || n == "who-has" {
			what += " " + n
		}
		return nil, nil, usageErr("%s: %v", what, sc.Invalid)
	}
	return sc, r, nil
}
