package replica

// go test -fuzz target for create-replica's argv (make fuzz runs it for
// FUZZTIME; plain go test runs the seeds in
// testdata/fuzz/FuzzParseCreateReplicaArgs/). Patroni turns every key of
// the method's section of patroni.yml into --key=value and appends
// --scope, --role, --datadir and --connstring (with the replication
// password when patroni.yml has no pgpass).

import (
	"strings"
	"testing"
)

func FuzzParseCreateReplicaArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, n uint8, a0, a1, a2, a3, a4, a5, a6 string) {
		all := []string{a0, a1, a2, a3, a4, a5, a6}
		argv := all[:int(n)%(len(all)+1)]
		a, err := ParseArgs(argv)
		if err != nil {
			if CodeOf(err) != ExitUsage {
				t.Fatalf("ParseArgs(%q): exit code %v, want usage (%v): %v", argv, CodeOf(err), ExitUsage, err)
			}
			return
		}
		if a.Scope == "" || a.DataDir == "" {
			t.Fatalf("accepted without scope or datadir: %+v", a)
		}
		// The scope names a directory under the backup root.
		if strings.ContainsAny(a.Scope, "/\x00") || a.Scope == "." || a.Scope == ".." {
			t.Fatalf("accepted scope %q", a.Scope)
		}
		// In Patroni's form (every argument --key=value) each value comes
		// from exactly one argument: --connstring=X gives X unchanged (it may
		// hold a password that Patroni quoted).
		for _, arg := range argv {
			if !strings.HasPrefix(arg, "-") || !strings.Contains(arg, "=") {
				return
			}
		}
		for _, arg := range argv {
			k, v, ok := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			if !ok {
				continue
			}
			switch strings.ReplaceAll(strings.ToLower(k), "-", "_") {
			case "connstring":
				if a.ConnString != v {
					t.Fatalf("connstring %q from %q", a.ConnString, arg)
				}
			case "scope":
				if a.Scope != v {
					t.Fatalf("scope %q from %q", a.Scope, arg)
				}
			case "datadir":
				if a.DataDir != v {
					t.Fatalf("datadir %q from %q", a.DataDir, arg)
				}
			}
		}
	})
}
