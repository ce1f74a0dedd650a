package shellenv

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestHostPort(t *testing.T) {
	tests := []struct {
		listen, socket string
		host           string
		port           int
	}{
		{"0.0.0.0:5432", "", "localhost", 5432},
		{"0.0.0.0:5433", "/var/run/postgresql", "/var/run/postgresql", 5433},
		{"*:5432", "/run/pg", "/run/pg", 5432},
		{"10.0.0.5:6432", "/run/pg", "/run/pg", 6432},
		{"10.0.0.5:6432", "", "10.0.0.5", 6432},
		{"10.0.0.5,127.0.0.1:5432", "", "10.0.0.5", 5432},
		{"", "", "localhost", 5432},
		{"[::]:5432", "/s", "/s", 5432},
	}
	for _, tt := range tests {
		h, p := Target{Listen: tt.listen, SocketDir: tt.socket}.HostPort()
		if h != tt.host || p != tt.port {
			t.Errorf("%q/%q: got %s:%d want %s:%d", tt.listen, tt.socket, h, p, tt.host, tt.port)
		}
	}
}

// TestExportsSurviveAShell evaluates the output in a real shell, so quoting
// is proven rather than assumed.
func TestExportsSurviveAShell(t *testing.T) {
	tgt := Target{Scope: "it's", Node: "n1", DataDir: "/data/with space/$HOME/`x`", Listen: "0.0.0.0:5433",
		BinDir: "/usr/lib/postgresql/15/bin", PatroniConfig: "/etc/patroni/p.yml", SocketDir: "/run/pg"}
	var buf bytes.Buffer
	if err := WriteExports(&buf, tgt.Vars(&Live{InRecovery: true, VersionNum: 150004}, "/usr/bin:/usr/lib/postgresql/15/bin:/bin")); err != nil {
		t.Fatal(err)
	}
	script := buf.String() + `printf '%s|%s|%s|%s|%s|%s|%s\n' "$PGDATA" "$PGHOST" "$PGPORT" "$PGUSER" "$PATH" "$PGHOOK_SCOPE" "$PG_IN_RECOVERY"`
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "/data/with space/$HOME/`x`|/run/pg|5433|postgres|/usr/lib/postgresql/15/bin:/usr/bin:/bin|it's|true\n"
	if string(out) != want {
		t.Fatalf("got  %q\nwant %q", out, want)
	}
	if strings.Contains(strings.ToLower(buf.String()), "password") {
		t.Fatal("password in env output")
	}
}
