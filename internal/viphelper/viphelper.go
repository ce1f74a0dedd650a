// Package viphelper is pghook running as the VIP helper: with privileges
// its caller did not give it (privilege.Elevated: file capabilities,
// set-id) or under the helper's name. Then only VIP operations exist, the
// only input is the scope, and every setting comes from one config file,
// read only when root alone can have written it. Environment variables and
// argv[0] decide nothing (docs/RELIABILITY.md §3).
package viphelper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pghook/pghook/internal/applet"
	"github.com/pghook/pghook/internal/clusterstatus"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/exitcode"
	"github.com/pghook/pghook/internal/logging"
	"github.com/pghook/pghook/internal/scope"
	"github.com/pghook/pghook/netvip"
)

// usage is printed for a refused command line.
const usage = applet.VIPHelper + " {up|down|status|watch|who-has} --scope SCOPE\n" +
	"  The VIP helper: runs with CAP_NET_ADMIN and CAP_NET_RAW for callbacks running as\n" +
	"  postgres. Its settings come only from " + "%s" + " (owned by root, writable by\n" +
	"  root alone, as is every directory above it); it takes no other flag and no\n" +
	"  PGHOOK_ variable."

// Args is a parsed helper command line.
type Args struct {
	Op      string
	Scope   string
	Timeout time.Duration // who-has only
}

// ParseArgs reads `[vip] OP --scope S [--json] [--timeout D]`: nothing
// else is accepted. --json is accepted (and is the only output) for status
// and who-has; --timeout only for who-has, within 1ms..10s.
func ParseArgs(args []string) (Args, error) {
	var h Args
	if len(args) > 0 && args[0] == "vip" {
		args = args[1:]
	}
	if len(args) == 0 {
		return h, fmt.Errorf("no command")
	}
	h.Op, args = args[0], args[1:]
	switch h.Op {
	case "up", "down", "status", "watch", "who-has", "announce":
	default:
		return h, fmt.Errorf("command %q is not a VIP helper command", h.Op)
	}
	h.Timeout = clusterstatus.WhoHasWindow
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		takeVal := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case name == "--scope" || name == "-scope":
			v, err := takeVal()
			if err != nil {
				return h, err
			}
			h.Scope = v
		case (name == "--json" || name == "-json") && !hasVal && (h.Op == "status" || h.Op == "who-has"):
		case (name == "--timeout" || name == "-timeout") && h.Op == "who-has":
			v, err := takeVal()
			if err != nil {
				return h, err
			}
			d, err := netvip.ParseWhoHasTimeout(v)
			if err != nil {
				return h, err
			}
			h.Timeout = d
		default:
			return h, fmt.Errorf("%q is refused: the VIP helper takes only --scope", args[i])
		}
	}
	if h.Scope == "" {
		return h, fmt.Errorf("--scope is required")
	}
	return h, nil
}

// Run is the VIP helper's whole run: argv as the kernel passed it, the
// settings from configPath (config.DefaultPath in the shipped binary). It
// returns the exit code.
func Run(configPath string, argv []string, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: %s\n", applet.VIPHelper, fmt.Sprintf(format, a...))
		return code
	}
	h, err := ParseArgs(argv[min(1, len(argv)):])
	if err != nil {
		fmt.Fprintf(stderr, usage+"\n", configPath)
		return fail(exitcode.Usage, "%v", err)
	}
	cfg, err := config.LoadTrusted(configPath)
	if err != nil {
		return fail(exitcode.Usage, "%v", err)
	}
	sec, err := cfg.Scope(h.Scope)
	if err != nil {
		return fail(exitcode.Usage, "%v", err)
	}
	if sec.VIP.Backend != "netlink" {
		return fail(exitcode.Usage, "scope %s has VIP backend %q in %s: the VIP helper serves the netlink backend only", h.Scope, sec.VIP.Backend, configPath)
	}
	if err := sec.VIP.Validate(); err != nil {
		return fail(exitcode.Usage, "key scopes.%s.vip of %s: %v", h.Scope, configPath, err)
	}
	log, err := logging.New(logging.Options{Level: cfg.LogLevel, Format: logging.Format(cfg.LogFormat)})
	if err != nil {
		return fail(exitcode.Usage, "%s: %v", configPath, err)
	}
	r := &scope.Resolver{Config: cfg, Log: log, Privileged: true}
	err = op(r, h, r.Resolve(h.Scope, scope.Overrides{}), stdout)
	if err == nil {
		return 0
	}
	var ec *exitcode.Error
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", applet.VIPHelper, msg)
		}
		return ec.ExitCode()
	}
	return fail(exitcode.Failure, "%v", err)
}

// op runs one helper command.
func op(r *scope.Resolver, h Args, s *scope.Scope, stdout io.Writer) error {
	ctx := context.Background()
	switch h.Op {
	case "watch":
		return r.Watch(ctx, s)
	case "who-has":
		return clusterstatus.WhoHas(ctx, stdout, s, h.Timeout)
	case "announce":
		return scope.AnnounceFromConfig(r.Log, s)
	case "status":
		b, err := r.VIP(s, scope.StackOptions{})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := b.Status(ctx)
		if err != nil {
			return exitcode.Failuref("vip status: %v", err)
		}
		return json.NewEncoder(stdout).Encode(st)
	}
	b, err := r.VIP(s, scope.StackOptions{Guard: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if h.Op == "up" {
		err = b.Hold(ctx)
	} else {
		err = b.Release(ctx)
	}
	ev := r.Log.Info()
	if err != nil {
		ev = r.Log.Error().Err(err)
	}
	ev.Str("scope", h.Scope).Str("action", "vip "+h.Op).Str("vip_backend", b.Name()).Dur("took_ms", time.Since(start)).Msg("vip")
	if err != nil {
		return exitcode.Silent(exitcode.Failure)
	}
	return nil
}
