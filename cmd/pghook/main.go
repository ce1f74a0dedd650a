// Command pghook is the one binary Patroni calls as its hooks. The command
// line is internal/app; this file runs it, or the VIP helper when the
// kernel gave this process privileges (internal/viphelper), and is the
// single exit point.

// A callback lives a few milliseconds: no cgroup probing for GOMAXPROCS at
// start-up, and no goroutine that re-checks it.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/pghook/pghook/internal/app"
	"github.com/pghook/pghook/internal/applet"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/privilege"
	"github.com/pghook/pghook/internal/viphelper"
	"github.com/urfave/cli/v2"
)

// helperConfig is the one file the VIP helper reads its settings from.
// It is fixed (a variable only so that a test build may move it with
// -ldflags -X); several nodes on one host each see their own through
// `ip netns exec`, which bind-mounts /etc/netns/<name>/pghook over
// /etc/pghook.
var helperConfig = config.DefaultPath

func main() {
	os.Exit(run(os.Args))
}

// run executes the CLI and maps its error to an exit code.
func run(argv []string) int {
	// Privilege is read from the kernel, never from the caller's argv[0];
	// the helper's name only adds restrictions.
	if privilege.Elevated() || (len(argv) > 0 && applet.Privileged(argv[0])) {
		return viphelper.Run(helperConfig, argv, os.Stdout, os.Stderr)
	}
	err := app.New().Run(applet.Rewrite(argv))
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "pghook:", msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "pghook:", err)
	return 1
}
