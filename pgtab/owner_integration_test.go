//go:build integration

package pgtab

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/pghook/pghook/internal/testenv"
)

// TestUpsertKeepsOwner: a roster that root rewrites (an operator running
// pghook by hand) stays owned by the user running Patroni, mode 0640.
func TestUpsertKeepsOwner(t *testing.T) {
	testenv.RequireRoot(t)
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "pghook-owner-") // traversable by postgres, unlike t.TempDir's parent
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	os.Chown(dir, uid, gid)
	path := filepath.Join(dir, ".pgtab")
	if err := (File{Path: path}).Upsert(context.Background(), Row{Scope: "s", Node: "n", Role: "replica"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != Mode {
			t.Fatalf("%s: owner %d:%d mode %v, want %d:%d %v", p, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid, Mode)
		}
	}
	// postgres itself can then update it.
	testenv.AsPostgres(t, "/bin/sh", "-c", "test -w "+path)
}
