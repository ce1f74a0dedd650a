// Package shellenv renders the shell environment of a cluster in the
// roster: what the seed's .bashrc `set_pgcluster` did, as `export` lines
// for `eval "$(pghook env SCOPE)"`. Values are single-quoted for POSIX
// shells; no password is ever part of the output.
package shellenv

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Target is the cluster to set up the shell for.
type Target struct {
	Scope, Node, DataDir, Listen, BinDir, PatroniConfig string
	SocketDir                                           string // from patroni.yml; "" when unknown
	User                                                string // superuser name; "" means postgres
	Port                                                int    // 0 means parse Listen
}

// Live holds what the running server said.
type Live struct {
	ConfigFile, HbaFile, LogFile, ClusterName string
	VersionNum                                int
	InRecovery                                bool
}

// Quote single-quotes s for a POSIX shell.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// HostPort derives PGHOST and PGPORT. The socket directory wins when it
// is known (peer authentication, no password needed); otherwise the first
// listen address, with a wildcard (0.0.0.0, *, ::, empty) meaning localhost.
func (t Target) HostPort() (string, int) {
	host, port := t.Listen, 5432
	if i := strings.LastIndex(t.Listen, ":"); i >= 0 && !strings.HasSuffix(t.Listen, "]") {
		host = t.Listen[:i]
		if p, err := strconv.Atoi(t.Listen[i+1:]); err == nil {
			port = p
		}
	}
	if t.Port != 0 {
		port = t.Port
	}
	if t.SocketDir != "" {
		return t.SocketDir, port
	}
	host = strings.TrimSpace(strings.Split(host, ",")[0])
	host = strings.Trim(host, "[]")
	switch host {
	case "", "0.0.0.0", "*", "::":
		return "localhost", port
	}
	return host, port
}

// Vars returns the variables to export, in a stable order.
func (t Target) Vars(live *Live, path string) [][2]string {
	host, port := t.HostPort()
	user := t.User
	if user == "" {
		user = "postgres"
	}
	vars := [][2]string{
		{"PGDATA", t.DataDir},
		{"PGHOST", host},
		{"PGPORT", strconv.Itoa(port)},
		{"PGUSER", user},
		{"PGHOOK_SCOPE", t.Scope},
		{"PGHOOK_NODE", t.Node},
	}
	if t.BinDir != "" {
		vars = append(vars, [2]string{"PATH", t.BinDir + ":" + removeFromPath(path, t.BinDir)})
	}
	if t.PatroniConfig != "" {
		vars = append(vars, [2]string{"PATRONICTL_CONFIG_FILE", t.PatroniConfig})
	}
	if live != nil {
		vars = append(vars,
			[2]string{"PG_CONFIG_FILE", live.ConfigFile},
			[2]string{"PG_HBA_FILE", live.HbaFile},
			[2]string{"PG_LOG_FILE", live.LogFile},
			[2]string{"PG_VERSION_NUM", strconv.Itoa(live.VersionNum)},
			[2]string{"PG_IN_RECOVERY", strconv.FormatBool(live.InRecovery)},
		)
	}
	return vars
}

func removeFromPath(path, dir string) string {
	var keep []string
	for _, p := range strings.Split(path, ":") {
		if p != dir && p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ":")
}

// WriteExports writes `export K='v'` lines.
func WriteExports(w io.Writer, vars [][2]string) error {
	for _, kv := range vars {
		if _, err := fmt.Fprintf(w, "export %s=%s\n", kv[0], Quote(kv[1])); err != nil {
			return err
		}
	}
	return nil
}

// Query asks the running server for its live facts over the connection
// PGHOST/PGPORT/PGUSER describe. Passwords come only from libpq's usual
// sources (PGPASSFILE, ~/.pgpass), never from pghook. Bounded by ctx.
func Query(ctx context.Context, t Target) (*Live, error) {
	host, port := t.HostPort()
	user := t.User
	if user == "" {
		user = "postgres"
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres connect_timeout=2 application_name=pghook-env",
		dsnQuote(host), port, dsnQuote(user)))
	if err != nil {
		return nil, fmt.Errorf("connection settings: %w", err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		cfg.ConnectTimeout = time.Until(deadline)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s:%d as %s: %w", host, port, user, err)
	}
	defer conn.Close(context.Background())
	var l Live
	var logFile *string
	err = conn.QueryRow(ctx, `SELECT current_setting('config_file'), current_setting('hba_file'),
		current_setting('server_version_num')::int, pg_current_logfile(), pg_is_in_recovery(),
		current_setting('cluster_name')`).Scan(&l.ConfigFile, &l.HbaFile, &l.VersionNum, &logFile, &l.InRecovery, &l.ClusterName)
	if err != nil {
		return nil, fmt.Errorf("querying %s:%d: %w", host, port, err)
	}
	if logFile != nil {
		l.LogFile = *logFile
	}
	return &l, nil
}

func dsnQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Summary writes a human table of the variables (for stderr).
func Summary(w io.Writer, vars [][2]string) {
	width := 0
	for _, kv := range vars {
		if len(kv[0]) > width {
			width = len(kv[0])
		}
	}
	for _, kv := range vars {
		if kv[0] == "PATH" {
			continue
		}
		fmt.Fprintf(w, "%-*s  %s\n", width, kv[0], kv[1])
	}
}
