package app

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/pghook/pghook/internal/shellenv"
	"github.com/pghook/pghook/pgtab"
	"github.com/urfave/cli/v2"
)

func (a *app) pgtabCommand() *cli.Command {
	return &cli.Command{
		Name:  "pgtab",
		Usage: "show the roster of the Patroni clusters on this host",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print a JSON array"}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr("pgtab: unexpected argument %q", c.Args().First())
			}
			rows, err := a.readRoster(c)
			if err != nil {
				return cli.Exit(err.Error(), exitFailure)
			}
			if c.Bool("json") {
				if rows == nil {
					rows = []pgtab.Row{}
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			printRoster(c, rows)
			return nil
		},
	}
}

func (a *app) readRoster(c *cli.Context) ([]pgtab.Row, error) {
	path, err := a.pgtabPath(c)
	if err != nil {
		return nil, err
	}
	return pgtab.File{Path: path}.Read()
}

func printRoster(c *cli.Context, rows []pgtab.Row) {
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tNODE\tROLE\tLISTEN\tDATA_DIR\tBIN_DIR\tPATRONI_CONFIG\tUPDATED")
	for _, r := range rows {
		ts := ""
		if !r.UpdatedAt.IsZero() {
			ts = r.UpdatedAt.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scope, r.Node, r.Role, r.Listen, r.DataDir, r.BinDir, r.PatroniConfig, ts)
	}
	tw.Flush()
}

func (a *app) envCommand() *cli.Command {
	return &cli.Command{
		Name:        "env",
		Usage:       "print export lines for a cluster of the roster: eval \"$(pghook env SCOPE)\"",
		ArgsUsage:   "[SCOPE [NODE]]",
		Description: shellenv.Help,
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "no-query", Usage: "do not ask the running server"}, &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no summary on stderr"}},
		Action: func(c *cli.Context) error {
			for _, arg := range c.Args().Slice() {
				if strings.HasPrefix(arg, "-") {
					return usageErr("env: flag %q after SCOPE: flags go first, e.g. pghook env %s SCOPE", arg, arg)
				}
			}
			if c.NArg() > 2 {
				return usageErr("env: at most SCOPE and NODE, got %d arguments", c.NArg())
			}
			path, err := a.pgtabPath(c)
			if err != nil {
				return cli.Exit(err.Error(), exitFailure)
			}
			return shellenv.Env(c.Context, shellenv.Request{Roster: path, Scope: c.Args().Get(0), Node: c.Args().Get(1),
				NoQuery: c.Bool("no-query"), Quiet: c.Bool("quiet"), Out: c.App.Writer, Log: a.log})
		},
	}
}
