// Package logging builds pghook's zerolog logger: one event per line on
// stderr, human console format on a terminal and JSON otherwise (journald,
// Patroni's log file). It also redacts secrets from strings that are about
// to be logged.
package logging

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Format selects the output encoding.
type Format string

// Formats understood by New.
const (
	FormatAuto    Format = "auto"
	FormatJSON    Format = "json"
	FormatConsole Format = "console"
)

// Options configure New.
type Options struct {
	Level  string // trace, debug, info, warn, error; empty means info
	Format Format // auto (console on a TTY), json, console
	Out    io.Writer
}

func init() {
	// The log contract names the error field "err"; these are zerolog settings,
	// not pghook state, so they are fixed once for the process.
	zerolog.ErrorFieldName = "err"
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldInteger = true
	// UTC timestamps: no /etc/localtime to load in a process that lives
	// a few milliseconds, and one clock across the nodes' logs.
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
}

// New returns a logger as configured by o.
func New(o Options) (zerolog.Logger, error) {
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	lvl := zerolog.InfoLevel
	if o.Level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(o.Level))
		if err != nil || l == zerolog.NoLevel {
			return zerolog.Nop(), fmt.Errorf("log level %q: want one of trace, debug, info, warn, error", o.Level)
		}
		lvl = l
	}
	format := o.Format
	if format == "" {
		format = FormatAuto
	}
	switch format {
	case FormatAuto:
		if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			out = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000"}
		}
	case FormatConsole:
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000", NoColor: true}
	case FormatJSON:
	default:
		return zerolog.Nop(), fmt.Errorf("log format %q: want auto, json or console", o.Format)
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}

// A secret value as libpq reads it (found by FuzzRedactDSN): quoted, with
// backslash escapes, running to the end when the quote is not closed; or
// unquoted, where a backslash escapes the next byte (even a space). What
// sticks to a closing quote is masked too (FuzzRedact): libpq refuses
// such a string, but it may be a mis-quoted password. In a URL's query an
// unquoted value ends at '&' or '#' instead.
const (
	secretKey    = `(?i)((?:password|passwd|pwd|secret|token)\s*[=:]\s*)`
	secretQuoted = `'(?:[^'\\]|\\[\s\S])*(?:'|\\?$)`
)

var secretKV = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(secretKey + `(` + secretQuoted + `(?:\\[\s\S]|[^\s\\])*\\?|(?:\\[\s\S]|[^\s\\])+\\?|\\$)`)
})
var secretQuery = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(secretKey + `(` + secretQuoted + `[^\s&#]*|[^\s&#]+)`)
})

// urlUserinfo is the password of a URL's userinfo, up to the last '@' of
// the authority (Go's url.Parse splits there); the user name may be empty.
var urlUserinfo = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(://[^:/@\s]*):[^/\s]*@`) })

// Redact masks passwords in libpq key/value strings, URLs and key=value
// lists, so that a connection string can be logged.
func Redact(s string) string {
	if strings.Contains(s, "://") {
		s = secretQuery().ReplaceAllString(s, "${1}*****")
	} else {
		s = secretKV().ReplaceAllString(s, "${1}*****")
	}
	return urlUserinfo().ReplaceAllString(s, "${1}:*****@")
}
