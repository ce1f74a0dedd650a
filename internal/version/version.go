// Package version holds the build stamp set by the linker (see Makefile LDFLAGS).
package version

import (
	"fmt"
	"runtime"
)

// Version and Commit are set at build time with -ldflags -X.
var (
	Version = "0.0.0-dev"
	Commit  = "unknown"
)

// String reports version, commit and Go version on one line.
func String() string {
	return fmt.Sprintf("pghook %s (commit %s, %s %s/%s)", Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
