package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

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
		Name:        "vip",
		Usage:       "the VIP by hand (same backends and checks as the callback), and its reconciler",
		Description: scope.VIPHelp,
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
				Name:        "watch",
				Usage:       "hold the VIP exactly while this node is the primary (the safety net behind callbacks)",
				Description: scope.WatchHelp,
				Flags:       append([]cli.Flag{scopeFlag}, scopeFlags()...),
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
