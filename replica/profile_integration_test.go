//go:build integration

package replica

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestRestoreProfile restores a real backup for profiling the extraction
// (go test -tags integration -run TestRestoreProfile -cpuprofile cpu.out):
// PGHOOK_PROFILE_BACKUPS=DIR PGHOOK_PROFILE_SCOPE=S; the leader is faked,
// so only the files are read. Skipped without the variables.
func TestRestoreProfile(t *testing.T) {
	dir, scope := os.Getenv("PGHOOK_PROFILE_BACKUPS"), os.Getenv("PGHOOK_PROFILE_SCOPE")
	if dir == "" || scope == "" {
		t.Skip("PGHOOK_PROFILE_BACKUPS and PGHOOK_PROFILE_SCOPE not set")
	}
	m := mustNewest(t, dir, scope)
	out := filepath.Join(os.Getenv("PGHOOK_PROFILE_OUT"), "data")
	if os.Getenv("PGHOOK_PROFILE_OUT") == "" {
		out = filepath.Join(t.TempDir(), "data")
	}
	leader := &fakeLeader{sysid: m.SystemID}
	res, err := Restore(context.Background(), RestoreOptions{Args: Args{Scope: scope, DataDir: out, ConnString: "host=x"}, BackupDir: dir,
		Dial: func(context.Context, string) (Leader, error) { return leader, nil }, Log: zerolog.New(os.Stderr)})
	if err != nil {
		t.Fatal(err)
	}
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	cpu := func(r syscall.Rusage) string {
		return fmt.Sprintf("%.2f s user %.2f s sys, %d+%d context switches",
			time.Duration(r.Utime.Nano()).Seconds(), time.Duration(r.Stime.Nano()).Seconds(), r.Nvcsw, r.Nivcsw)
	}
	t.Logf("%d bytes read in %v; pghook %s; decompressor %s", res.Bytes, res.Took, cpu(self), cpu(kids))
	os.RemoveAll(out)
}
