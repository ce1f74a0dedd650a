package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pghook/pghook/internal/applet"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/logging"
	"github.com/pghook/pghook/netvip"
	"github.com/urfave/cli/v2"
)

// helperConfig is the one file the VIP helper reads its settings from.
// It is fixed (a variable only so that a test build may move it with
// -ldflags -X); several nodes on one host each see their own through
// `ip netns exec`, which bind-mounts /etc/netns/<name>/pghook over
// /etc/pghook.
var helperConfig = config.DefaultPath

// helperUsage is printed for a refused command line.
const helperUsage = applet.VIPHelper + " {up|down|status|watch|who-has} --scope SCOPE\n" +
	"  The VIP helper: runs with CAP_NET_ADMIN and CAP_NET_RAW for callbacks running as\n" +
	"  postgres. Its settings come only from " + "%s" + " (owned by root, writable by\n" +
	"  root alone, as is every directory above it); it takes no other flag and no\n" +
	"  PGHOOK_ variable."

// helperArgs is a parsed helper command line.
type helperArgs struct {
	op      string
	scope   string
	timeout time.Duration // who-has only
}

// parseHelperArgs reads `[vip] OP --scope S [--json] [--timeout D]`:
// nothing else is accepted. --json is accepted (and is the only output) for
// status and who-has; --timeout only for who-has, within 1ms..10s.
func parseHelperArgs(args []string) (helperArgs, error) {
	var h helperArgs
	if len(args) > 0 && args[0] == "vip" {
		args = args[1:]
	}
	if len(args) == 0 {
		return h, fmt.Errorf("no command")
	}
	h.op, args = args[0], args[1:]
	switch h.op {
	case "up", "down", "status", "watch", "who-has", "announce":
	default:
		return h, fmt.Errorf("command %q is not a VIP helper command", h.op)
	}
	h.timeout = whoHasWindow
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
			h.scope = v
		case (name == "--json" || name == "-json") && !hasVal && (h.op == "status" || h.op == "who-has"):
		case (name == "--timeout" || name == "-timeout") && h.op == "who-has":
			v, err := takeVal()
			if err != nil {
				return h, err
			}
			d, err := netvip.ParseWhoHasTimeout(v)
			if err != nil {
				return h, err
			}
			h.timeout = d
		default:
			return h, fmt.Errorf("%q is refused: the VIP helper takes only --scope", args[i])
		}
	}
	if h.scope == "" {
		return h, fmt.Errorf("--scope is required")
	}
	return h, nil
}

// runHelper is pghook running with privileges its caller did not give it
// (privilege.Elevated: file capabilities, set-id) or under the helper's
// name. Then only VIP operations exist, the only input is the scope, and
// every setting comes from helperConfig, read only when root alone can
// have written it. Environment variables and argv[0] decide nothing.
func runHelper(argv []string, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: %s\n", applet.VIPHelper, fmt.Sprintf(format, a...))
		return code
	}
	h, err := parseHelperArgs(argv[min(1, len(argv)):])
	if err != nil {
		fmt.Fprintf(stderr, helperUsage+"\n", helperConfig)
		return fail(exitUsage, "%v", err)
	}
	cfg, err := config.LoadTrusted(helperConfig)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	s, err := cfg.Scope(h.scope)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if s.VIP.Backend != "netlink" {
		return fail(exitUsage, "scope %s has VIP backend %q in %s: the VIP helper serves the netlink backend only", h.scope, s.VIP.Backend, helperConfig)
	}
	if err := s.VIP.Validate(); err != nil {
		return fail(exitUsage, "key scopes.%s.vip of %s: %v", h.scope, helperConfig, err)
	}
	log, err := logging.New(logging.Options{Level: cfg.LogLevel, Format: logging.Format(cfg.LogFormat)})
	if err != nil {
		return fail(exitUsage, "%s: %v", helperConfig, err)
	}
	a := &app{log: log, cfg: cfg, privileged: true}
	err = a.helperOp(h, s, stdout)
	if err == nil {
		return 0
	}
	if ec, ok := err.(cli.ExitCoder); ok {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", applet.VIPHelper, msg)
		}
		return ec.ExitCode()
	}
	return fail(exitFailure, "%v", err)
}

// helperOp runs one helper command.
func (a *app) helperOp(h helperArgs, s *config.Scope, stdout io.Writer) error {
	ctx := context.Background()
	switch h.op {
	case "watch":
		return a.watch(ctx, h.scope, s)
	case "who-has":
		return whoHas(ctx, stdout, h.scope, s, h.timeout)
	case "announce":
		return a.helperAnnounce(h.scope, s)
	case "status":
		b, err := a.vipStack(h.scope, s, false, nil)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := b.Status(ctx)
		if err != nil {
			return cli.Exit(fmt.Sprintf("vip status: %v", err), exitFailure)
		}
		return json.NewEncoder(stdout).Encode(st)
	}
	b, err := a.vipStack(h.scope, s, true, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if h.op == "up" {
		err = b.Hold(ctx)
	} else {
		err = b.Release(ctx)
	}
	ev := a.log.Info()
	if err != nil {
		ev = a.log.Error().Err(err)
	}
	ev.Str("scope", h.scope).Str("action", "vip "+h.op).Str("vip_backend", b.Name()).Dur("took_ms", time.Since(start)).Msg("vip")
	if err != nil {
		return cli.Exit("", exitFailure)
	}
	return nil
}

// helperAnnounce sends the announcement rounds after the first, detached
// from the callback (netvip.SpawnDetached), for the VIP of s: the address,
// interface, rounds and interval come from the config, bounded by netvip.
func (a *app) helperAnnounce(scope string, s *config.Scope) error {
	return a.announceDetached(a.log.With().Str("scope", scope).Logger(), func() (netvip.AnnounceRequest, error) {
		return netvip.FollowUp(vipSettings(s.VIP))
	})
}
