package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pghook/pghook/netvip"
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
				b, err := a.vipBackend(c)
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
				ev.Str("scope", c.String("scope")).Str("action", "vip "+name).Str("vip_backend", b.Name()).Dur("took_ms", time.Since(start)).Msg("vip")
				if err != nil {
					return cli.Exit("", exitFailure)
				}
				return nil
			},
		}
	}
	return &cli.Command{
		Name:  "vip",
		Usage: "the VIP operations by hand, with the same backends as the callback",
		Subcommands: []*cli.Command{
			op("up", "hold the VIP on this node", func(ctx context.Context, b netvip.Backend) error { return b.Hold(ctx) }),
			op("down", "release the VIP from this node", func(ctx context.Context, b netvip.Backend) error { return b.Release(ctx) }),
			{
				Name:  "status",
				Usage: "report whether this node holds the VIP",
				Flags: append([]cli.Flag{scopeFlag, &cli.BoolFlag{Name: "json"}}, scopeFlags()...),
				Action: func(c *cli.Context) error {
					b, err := a.vipBackend(c)
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
					return nil
				},
			},
		},
	}
}

func (a *app) vipBackend(c *cli.Context) (netvip.Backend, error) {
	if c.String("scope") == "" {
		return nil, usageErr("vip %s: --scope is required (the Patroni scope whose VIP to act on)", c.Command.Name)
	}
	s, err := a.scopeSettings(c, c.String("scope"))
	if err != nil {
		return nil, usageErr("vip: %v", err)
	}
	b, err := netvip.New(vipSettings(s.VIP), a.log)
	if err != nil {
		return nil, usageErr("vip: %v", err)
	}
	return b, nil
}
