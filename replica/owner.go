package replica

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// DataOwner returns the user and group a restore into dataDir must write
// as: the owner of the data directory when it exists, else of its nearest
// existing parent — where Patroni, running as that user, made or will
// make it.
func DataOwner(dataDir string) (uid, gid int, from string, err error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return 0, 0, "", err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			return int(st.Uid), int(st.Gid), p, nil
		}
		if !errors.Is(err, os.ErrNotExist) || p == filepath.Dir(p) {
			return 0, 0, "", err
		}
	}
}

// BecomeDataOwner is for a create-replica run as root: PostgreSQL refuses
// a data directory it does not own, so the process (every thread; Go's
// setuid applies to all) becomes the owner of the data directory (or its
// nearest existing parent) with that user's groups before anything is
// written. A root-owned place is a usage error saying how to run it.
// Not root: nothing to do. It returns the uid it switched to (-1: none).
func BecomeDataOwner(dataDir string) (int, error) {
	if os.Geteuid() != 0 {
		return -1, nil
	}
	uid, gid, from, err := DataOwner(dataDir)
	if err != nil {
		return -1, fail(ExitIO, fmt.Errorf("data directory %s: %w", dataDir, err))
	}
	if uid == 0 {
		return -1, failf(ExitUsage, "create-replica runs as root and %s is owned by root: PostgreSQL could not start on what it would write. "+
			"Run it as the user PostgreSQL runs as (runuser -u postgres -- pghook create-replica …; Patroni does), or chown that directory to that user", from)
	}
	groups := []int{gid}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.Atoi(s); err == nil && g != gid {
					groups = append(groups, g)
				}
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return -1, fail(ExitFailure, fmt.Errorf("setgroups: %w", err))
	}
	if err := syscall.Setgid(gid); err != nil {
		return -1, fail(ExitFailure, fmt.Errorf("setgid %d: %w", gid, err))
	}
	if err := syscall.Setuid(uid); err != nil {
		return -1, fail(ExitFailure, fmt.Errorf("setuid %d: %w", uid, err))
	}
	return uid, nil
}
