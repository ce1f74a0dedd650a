package shellenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pghook/pghook/internal/exitcode"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/internal/privilege"
	"github.com/pghook/pghook/pgtab"
	"github.com/rs/zerolog"
)

// Request is one `pghook env`.
type Request struct {
	Roster      string // the roster's path
	Scope, Node string // "": list the roster's clusters as comments
	NoQuery     bool   // do not ask the running server
	Quiet       bool   // no summary on stderr
	Out         io.Writer
	Log         zerolog.Logger
}

// Env prints the export lines of the roster's cluster q names (its
// summary and notes on stderr), or, without a scope, the clusters as
// shell comments. Errors are exitcode errors.
func Env(ctx context.Context, q Request) error {
	rows, err := pgtab.File{Path: q.Roster}.Read()
	if err != nil {
		return exitcode.Failuref("%v", err)
	}
	scope, node := q.Scope, q.Node
	if scope == "" {
		fmt.Fprintln(q.Out, "# clusters in the roster; choose one with: eval \"$(pghook env SCOPE [NODE])\"")
		for _, r := range rows {
			fmt.Fprintf(q.Out, "# %s %s %s %s\n", r.Scope, r.Node, r.Role, r.Listen)
		}
		return nil
	}
	sel := pgtab.Select(rows, scope, node)
	switch {
	case len(sel) == 0:
		return exitcode.Usagef("env: no cluster %q%s in the roster (see pghook pgtab)", scope, map[bool]string{true: " node " + node, false: ""}[node != ""])
	case len(sel) > 1:
		var nodes []string
		for _, r := range sel {
			nodes = append(nodes, r.Node)
		}
		return exitcode.Usagef("env: scope %q has several nodes on this host %v: name one as the second argument", scope, nodes)
	}
	r := sel[0]
	t := Target{Scope: r.Scope, Node: r.Node, DataDir: r.DataDir, Listen: r.Listen, BinDir: r.BinDir, PatroniConfig: r.PatroniConfig}
	if os.Geteuid() == 0 && t.BinDir != "" {
		if err := rootMayRunFrom(q.Roster, t.BinDir); err != nil {
			fmt.Fprintf(os.Stderr, "# PATH left as it is: %v\n", err)
			t.BinDir = ""
		}
	}
	if r.PatroniConfig != "" {
		if pc, err := patroni.Load(r.PatroniConfig); err == nil {
			t.SocketDir = pc.SocketDir()
			t.User = pc.UserName("superuser")
		} else {
			q.Log.Debug().Err(err).Msg("patroni config not readable: using the roster only")
		}
	}
	var live *Live
	if !q.NoQuery {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		live, err = Query(ctx, t)
		if err != nil {
			fmt.Fprintf(os.Stderr, "# server not queried: %v\n", err)
		}
	}
	vars := t.Vars(live, os.Getenv("PATH"))
	if !q.Quiet {
		Summary(os.Stderr, vars)
	}
	return WriteExports(q.Out, vars)
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
