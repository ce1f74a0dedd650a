package postinit

// go test -fuzz target (make fuzz runs it for FUZZTIME; plain go test runs
// the seeds in testdata/fuzz/FuzzRunDSN/). Patroni passes post_init a DSN
// on the command line; pghook prints Run's error (cli.Exit) and logs it, so
// the error must never carry a password the DSN held, however the DSN is
// spelled or broken.

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"
)

// brokenTails make an otherwise valid DSN fail at different points of
// pgx's parser, after the password was read.
var brokenTails = []string{"", " port=notaport", " sslmode=bogus", " 'unterminated", " connect_timeout=x", " =x", " target_session_attrs=nope", " host"}

func FuzzRunDSN(f *testing.F) {
	f.Setenv("PGPASSFILE", "/nonexistent")
	f.Setenv("PGSERVICEFILE", "/nonexistent")
	f.Setenv("PGPASSWORD", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no connection is ever attempted for real
	f.Fuzz(func(t *testing.T, form uint8, pw, tail string) {
		if len(pw) < 4 || strings.ContainsAny(pw, "\x00") {
			return
		}
		tailAt := brokenTails[int(form/4)%len(brokenTails)] + tail
		build := func(pw string) string {
			q := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "'"
			switch form % 4 {
			case 0:
				return "host=/nonexistent user=u dbname=d password=" + q
			case 1:
				return "password = " + q + " host=/nonexistent user=u"
			case 2:
				return "host=/nonexistent password=" + strings.NewReplacer(`\`, `\\`, " ", `\ `, "'", `\'`).Replace(pw) + " user=u"
			}
			return "postgres://u:" + pctEncode(pw) + "@localhost/d?host=/nonexistent"
		}
		// Only a DSN that pgx reads pw from is a test of hiding it.
		if cfg, err := pgconn.ParseConfig(build(pw)); err != nil || cfg.Password != pw {
			return
		}
		dsn := build(pw) + tailAt
		err := Run(ctx, dsn, Plan{}, zerolog.Nop())
		if err == nil {
			t.Fatalf("Run with a cancelled context succeeded for %q", dsn)
		}
		// The same DSN with another password: what both errors show comes
		// from the rest of the DSN, not from the password.
		other := Run(ctx, build("Zz9Q")+tailAt, Plan{}, zerolog.Nop())
		if strings.Contains(err.Error(), pw) && (other == nil || !strings.Contains(other.Error(), pw)) {
			t.Fatalf("Run's error shows the password %q:\n dsn %q\n err %v", pw, dsn, err)
		}
	})
}

// pctEncode percent-encodes every byte but the unreserved ones (RFC 3986):
// QueryEscape does, but for the space it writes as +.
func pctEncode(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
