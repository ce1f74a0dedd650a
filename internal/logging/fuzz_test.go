package logging

// go test -fuzz targets for Redact (make fuzz runs each for FUZZTIME; plain
// go test runs the seeds in testdata/fuzz/<Name>/). Patroni hands pghook
// connection strings (create_replica's --connstring, post_init's DSN) and
// they are logged only through Redact: its output must not depend on the
// password, whatever the password holds and however the string spells it.

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// plain keeps only the characters that cannot change a connection
// string's structure, so that the fuzzer varies the password, not the
// grammar around it.
func plain(s, def string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return -1
	}, s)
	if s == "" {
		return def
	}
	return s
}

// kvQuote is libpq's quoted value: backslash escapes backslash and quote.
func kvQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// kvEscape is libpq's unquoted value: a backslash escapes the next byte.
func kvEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte("\\' \t\n\r\f\v", s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pctEncode percent-encodes every byte but the unreserved ones (RFC 3986):
// QueryEscape does, but for the space it writes as +.
func pctEncode(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// dsnForms are the spellings of a connection string with a password that
// libpq and pgx accept.
var dsnForms = []func(user, pw, host, db string) string{
	func(u, pw, h, d string) string {
		return "host=" + h + " user=" + u + " password=" + kvQuote(pw) + " dbname=" + d
	},
	func(u, pw, h, d string) string {
		return "host=" + h + " password=" + kvEscape(pw) + " user=" + u + " dbname=" + d
	},
	func(u, pw, h, d string) string {
		return "user=" + u + " password = " + kvQuote(pw) + "\tdbname=" + d + " host=" + h
	},
	func(u, pw, h, d string) string {
		return (&url.URL{Scheme: "postgres", User: url.UserPassword(u, pw), Host: h, Path: "/" + d}).String()
	},
	func(u, pw, h, d string) string {
		return "postgresql://" + u + "@" + h + "/" + d + "?sslmode=disable&password=" + pctEncode(pw) + "&application_name=x"
	},
	func(u, pw, h, d string) string {
		return (&url.URL{Scheme: "postgres", User: url.UserPassword("", pw), Host: h, Path: "/" + d}).String()
	},
	func(u, pw, h, d string) string {
		return "postgres://" + h + "/" + d + "?password=" + pctEncode(pw)
	},
}

// FuzzRedactDSN builds a connection string in one of dsnForms around a
// fuzzed password and checks that Redact's output is the same as for any
// other password: nothing of the password, not even a part, survives.
func FuzzRedactDSN(f *testing.F) {
	f.Setenv("PGPASSFILE", "/nonexistent")
	f.Setenv("PGSERVICEFILE", "/nonexistent")
	f.Fuzz(func(t *testing.T, form uint8, user, pw, host, db string) {
		if pw == "" || strings.IndexByte(pw, 0) >= 0 {
			return // no password to hide; NUL cannot be in a C string
		}
		user, host, db = plain(user, "u"), plain(host, "h"), plain(db, "d")
		build := dsnForms[int(form)%len(dsnForms)]
		dsn := build(user, pw, host, db)
		// The generator's claim: pgx reads exactly pw as the password.
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil || cfg.Password != pw {
			if err == nil {
				t.Fatalf("generator: %q gives password %q, want %q", dsn, cfg.Password, pw)
			}
			return // a form pgx refuses (e.g. invalid UTF-8 in a URL): nothing to check
		}
		got := Redact(dsn)
		other := Redact(build(user, "Zz9", host, db))
		if got != other {
			t.Fatalf("Redact's output depends on the password %q:\n dsn      %q\n redacted %q\n for Zz9  %q", pw, dsn, got, other)
		}
		if strings.Contains(got, pw) && !strings.Contains(other, pw) {
			t.Fatalf("Redact(%q) = %q contains the password", dsn, got)
		}
	})
}

// FuzzRedact takes any string: Redact must be idempotent, and when pgx
// reads a password from the input, it must not read it from the output.
func FuzzRedact(f *testing.F) {
	f.Setenv("PGPASSFILE", "/nonexistent")
	f.Setenv("PGSERVICEFILE", "/nonexistent")
	f.Fuzz(func(t *testing.T, s string) {
		r := Redact(s)
		if rr := Redact(r); rr != r {
			t.Fatalf("Redact is not idempotent: %q -> %q -> %q", s, r, rr)
		}
		cfg, err := pgconn.ParseConfig(s)
		if err != nil || cfg.Password == "" || cfg.Password == "*****" {
			return
		}
		if cfg2, err := pgconn.ParseConfig(r); err == nil && cfg2.Password == cfg.Password {
			t.Fatalf("Redact(%q) = %q still carries the password %q", s, r, cfg.Password)
		}
	})
}
