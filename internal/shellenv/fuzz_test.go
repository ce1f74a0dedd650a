package shellenv

// go test -fuzz target (make fuzz runs it for FUZZTIME; plain go test runs
// the seeds in testdata/fuzz/FuzzExports/). `eval "$(pghook env SCOPE)"`
// runs pghook's output in a DBA's shell, and the values come from the
// roster and patroni.yml, which can hold anything: a value must come out
// of the shell exactly as it went in, and never run as a command.

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// unquoteExports reads `export NAME='…'` lines the way a POSIX shell reads
// them: single quotes hold everything literally; outside them only the
// sequence \' (an escaped quote) may appear between quoted parts. Anything
// else outside quotes would be shell syntax, and is reported as !ok.
func unquoteExports(s string) (vars [][2]string, ok bool) {
	for s != "" {
		rest, found := strings.CutPrefix(s, "export ")
		if !found {
			return nil, false
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, false
		}
		name := rest[:eq]
		for _, c := range name {
			if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return nil, false
			}
		}
		rest = rest[eq+1:]
		var val strings.Builder
		for {
			switch {
			case strings.HasPrefix(rest, "'"):
				end := strings.IndexByte(rest[1:], '\'')
				if end < 0 {
					return nil, false
				}
				val.WriteString(rest[1 : 1+end])
				rest = rest[2+end:]
				continue
			case strings.HasPrefix(rest, `\'`):
				val.WriteByte('\'')
				rest = rest[2:]
				continue
			case strings.HasPrefix(rest, "\n"):
				rest = rest[1:]
			default:
				return nil, false
			}
			break
		}
		vars = append(vars, [2]string{name, val.String()})
		s = rest
	}
	return vars, true
}

func FuzzExports(f *testing.F) {
	f.Setenv("PGPASSFILE", "/nonexistent")
	f.Setenv("PGSERVICEFILE", "/nonexistent")
	f.Fuzz(func(t *testing.T, scope, node, dataDir, listen, binDir, patroniConfig, socketDir, user, path string) {
		tg := Target{Scope: scope, Node: node, DataDir: dataDir, Listen: listen, BinDir: binDir, PatroniConfig: patroniConfig, SocketDir: socketDir, User: user}
		vars := tg.Vars(&Live{ConfigFile: dataDir + "/postgresql.conf", LogFile: listen}, path)
		var buf bytes.Buffer
		if err := WriteExports(&buf, vars); err != nil {
			t.Fatal(err)
		}
		got, ok := unquoteExports(buf.String())
		if !ok {
			t.Fatalf("output is not plain quoted exports:\n%s", buf.String())
		}
		if len(got) != len(vars) {
			t.Fatalf("%d exports read back, %d written:\n%s", len(got), len(vars), buf.String())
		}
		for i := range vars {
			if got[i] != vars[i] {
				t.Fatalf("export %d: read back %q, wrote %q", i, got[i], vars[i])
			}
		}
		var sum bytes.Buffer
		Summary(&sum, vars)
		// HostPort feeds Query's DSN: whatever host and user the roster
		// holds, pgx must read back exactly them, so that a value cannot
		// add a parameter (a password, another host) to the connection.
		host, _ := tg.HostPort()
		u := user
		if u == "" {
			u = "postgres"
		}
		if strings.ContainsAny(host+u, "\x00") || strings.Contains(host, ",") || host == "" {
			return // pgx refuses NUL; a comma lists several hosts by design
		}
		cfg, err := pgconn.ParseConfig("host=" + dsnQuote(host) + " port=5432 user=" + dsnQuote(u) + " dbname=postgres")
		if err != nil {
			return // e.g. a host pgx cannot take; Query reports it
		}
		if cfg.User != u || cfg.Password != "" {
			t.Fatalf("user %q came back as %q (password %q)", u, cfg.User, cfg.Password)
		}
		if cfg.Host != host {
			t.Fatalf("host %q came back as %q", host, cfg.Host)
		}
	})
}

// TestUnquoteExports is FuzzExports' oracle tested: it must refuse what a
// shell would run or expand, and read back what Quote wrote.
func TestUnquoteExports(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"export A='x'\n", "x", true},
		{"export A='it'\\''s'\n", "it's", true},
		{"export A='a\nb'\n", "a\nb", true},
		{"export A=$(id)\n", "", false},
		{"export A='x'$(id)\n", "", false},
		{"export A='x';id\n", "", false},
		{"export A='x\n", "", false},
		{"export A B='x'\n", "", false},
	}
	for _, tt := range tests {
		vars, ok := unquoteExports(tt.in)
		if ok != tt.ok || (ok && (len(vars) != 1 || vars[0][1] != tt.want)) {
			t.Errorf("unquoteExports(%q) = %q, %v; want %q, %v", tt.in, vars, ok, tt.want, tt.ok)
		}
	}
}
