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
	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args))
}

// run executes the CLI and maps its error to an exit code. It is the
// single exit point.
func run(argv []string) int {
	privileged := len(argv) > 0 && applet.Privileged(argv[0])
	app := newApp(privileged)
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
