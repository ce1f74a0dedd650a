package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/internal/privilege"
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

// rootMayRunFrom decides whether root's PATH may start with binDir, a
// value read from the roster at rosterPath. The roster is written by
// callbacks running as postgres, so root follows it only when root alone
// could have written the roster, or binDir and every directory above it:
// otherwise the database account would choose root's psql.
func rootMayRunFrom(rosterPath, binDir string) error {
	if _, err := privilege.ReadTrusted(rosterPath, 0); err == nil {
		return nil
	}
	if err := privilege.CheckDir(binDir); err != nil {
		return fmt.Errorf("bin_dir %s from %s, which root does not own alone, is not vouched for: %w", binDir, rosterPath, err)
	}
	return nil
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
		Name:      "env",
		Usage:     "print export lines for a cluster of the roster: eval \"$(pghook env SCOPE)\"",
		ArgsUsage: "[SCOPE [NODE]]",
		Description: "Exports PGDATA, PGHOST, PGPORT, PGUSER, PATH (with the bin dir),\n" +
			"PATRONICTL_CONFIG_FILE and, when the server answers, PG_CONFIG_FILE,\n" +
			"PG_HBA_FILE, PG_LOG_FILE, PG_VERSION_NUM and PG_IN_RECOVERY. A summary goes\n" +
			"to stderr. With no SCOPE it lists the clusters as shell comments. It never\n" +
			"prints a password: libpq finds it in ~/.pgpass or PGPASSFILE.",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "no-query", Usage: "do not ask the running server"}, &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no summary on stderr"}},
		Action: func(c *cli.Context) error {
			for _, arg := range c.Args().Slice() {
				if strings.HasPrefix(arg, "-") {
					return usageErr("env: flag %q after SCOPE: flags go first, e.g. pghook env %s SCOPE", arg, arg)
				}
			}
			if c.NArg() > 2 {
				return usageErr("env: at most SCOPE and NODE, got %d arguments", c.NArg())
			}
			rows, err := a.readRoster(c)
			if err != nil {
				return cli.Exit(err.Error(), exitFailure)
			}
			scope, node := c.Args().Get(0), c.Args().Get(1)
			if scope == "" {
				fmt.Fprintln(c.App.Writer, "# clusters in the roster; choose one with: eval \"$(pghook env SCOPE [NODE])\"")
				for _, r := range rows {
					fmt.Fprintf(c.App.Writer, "# %s %s %s %s\n", r.Scope, r.Node, r.Role, r.Listen)
				}
				return nil
			}
			sel := pgtab.Select(rows, scope, node)
			switch {
			case len(sel) == 0:
				return usageErr("env: no cluster %q%s in the roster (see pghook pgtab)", scope, map[bool]string{true: " node " + node, false: ""}[node != ""])
			case len(sel) > 1:
				var nodes []string
				for _, r := range sel {
					nodes = append(nodes, r.Node)
				}
				return usageErr("env: scope %q has several nodes on this host %v: name one as the second argument", scope, nodes)
			}
			r := sel[0]
			t := shellenv.Target{Scope: r.Scope, Node: r.Node, DataDir: r.DataDir, Listen: r.Listen, BinDir: r.BinDir, PatroniConfig: r.PatroniConfig}
			if os.Geteuid() == 0 && t.BinDir != "" {
				path, _ := a.pgtabPath(c)
				if err := rootMayRunFrom(path, t.BinDir); err != nil {
					fmt.Fprintf(os.Stderr, "# PATH left as it is: %v\n", err)
					t.BinDir = ""
				}
			}
			if r.PatroniConfig != "" {
				if pc, err := patroni.Load(r.PatroniConfig); err == nil {
					t.SocketDir = pc.SocketDir()
					t.User = pc.UserName("superuser")
				} else {
					a.log.Debug().Err(err).Msg("patroni config not readable: using the roster only")
				}
			}
			var live *shellenv.Live
			if !c.Bool("no-query") {
				ctx, cancel := context.WithTimeout(c.Context, 3*time.Second)
				defer cancel()
				live, err = shellenv.Query(ctx, t)
				if err != nil {
					fmt.Fprintf(os.Stderr, "# server not queried: %v\n", err)
				}
			}
			vars := t.Vars(live, os.Getenv("PATH"))
			if !c.Bool("quiet") {
				shellenv.Summary(os.Stderr, vars)
			}
			return shellenv.WriteExports(c.App.Writer, vars)
		},
	}
}
