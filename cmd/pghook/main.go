// Command pghook is the one binary Patroni calls as its hooks. It only
// wires flags to packages: hooks decides, netvip/pgtab/replica act.

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

	"github.com/pghook/pghook/internal/applet"
	"github.com/pghook/pghook/internal/privilege"
	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args))
}

// run executes the CLI and maps its error to an exit code. It is the
// single exit point.
func run(argv []string) int {
	// Privilege is read from the kernel, never from the caller's argv[0];
	// the helper's name only adds restrictions.
	if privilege.Elevated() || (len(argv) > 0 && applet.Privileged(argv[0])) {
		return runHelper(argv, os.Stdout, os.Stderr)
	}
	app := newApp()
	err := app.Run(applet.Rewrite(argv))
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
