package replica

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/pghook/pghook/internal/fsutil"
	"github.com/rs/zerolog"
)

// restoringMarker is written into the data directory before the first
// byte of a restore and removed only once the restore is complete and
// synced. A data directory that still holds it is a restore that was
// killed (kill -9, a power cut): never a copy to adopt under keep_data —
// pg_control and backup_label may be complete while tablespaces or WAL
// are not. It names what was in the data directory before (kept) and the
// exact directories the restore writes into each tablespace directory, so
// that the next attempt clears precisely what that restore wrote.
const restoringMarker = ".pghook-restoring"

// markerHeader starts the marker; a file without it was not written by
// pghook and makes the next attempt refuse rather than delete anything.
const markerHeader = "pghook create-replica: restore in progress; this data directory is incomplete until this file is gone\n"

// writeMarker writes the marker atomically and durably:
// "kept\tNAME" for every entry the data directory held before (st), and
// "tablespace\tDIR\tNAME" for every top-level directory the manifest puts
// into a tablespace directory.
func writeMarker(dataDir string, st dirState, m *Manifest, ts []*tsTarget) error {
	var b bytes.Buffer
	b.WriteString(markerHeader)
	kept := slices.Sorted(maps.Keys(st.entries))
	for _, n := range kept {
		fmt.Fprintf(&b, "kept\t%s\n", n)
	}
	for _, t := range ts {
		for _, n := range tablespaceTops(m, t.OID) {
			fmt.Fprintf(&b, "tablespace\t%s\t%s\n", t.Target, n)
		}
	}
	return fsutil.WriteFile(filepath.Join(dataDir, restoringMarker), b.Bytes(), 0o600, fsutil.Keep)
}

// tablespaceTops returns the top-level names the manifest has under
// pg_tblspc/OID/ (PostgreSQL's PG_<major>_<catversion>), sorted.
func tablespaceTops(m *Manifest, oid string) []string {
	prefix := "pg_tblspc/" + oid + "/"
	set := map[string]bool{}
	for p := range m.Files {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			if top, _, _ := strings.Cut(rest, "/"); top != "" {
				set[top] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// removeMarker removes the marker durably.
func removeMarker(dataDir string) error {
	if err := os.Remove(filepath.Join(dataDir, restoringMarker)); err != nil {
		return fmt.Errorf("removing %s: %w", restoringMarker, err)
	}
	return fsutil.SyncDir(dataDir)
}

// clearInterrupted removes what an interrupted restore left — every
// entry of the data directory the marker does not name as kept, the
// marker last, and in each tablespace directory the marker lists exactly
// the PG_* directories that restore wrote — and returns the data
// directory's state afterwards. It refuses (exit 8) and deletes nothing
// when a postmaster runs on the directory or when the marker is not
// pghook's or names anything a restore does not write.
func clearInterrupted(log zerolog.Logger, dataDir string) (dirState, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, restoringMarker))
	if err != nil {
		return dirState{}, fail(ExitIO, fmt.Errorf("reading %s: %w", restoringMarker, err))
	}
	if !bytes.HasPrefix(b, []byte(markerHeader)) {
		return dirState{}, failf(ExitNotEmpty, "data directory %s holds a %s that pghook did not write: remove it by hand", dataDir, restoringMarker)
	}
	if pid, ok := livePostmaster(dataDir); ok {
		return dirState{}, failf(ExitNotEmpty, "data directory %s holds an interrupted restore, but a postmaster (pid %d) is running on it", dataDir, pid)
	}
	// Read and check the whole marker before deleting anything.
	kept := map[string]bool{restoringMarker: true}
	var clear []string
	sc := bufio.NewScanner(bytes.NewReader(b[len(markerHeader):]))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		switch {
		case len(f) == 2 && f[0] == "kept":
			kept[f[1]] = true
		case len(f) == 3 && f[0] == "tablespace":
			dir, name := f[1], f[2]
			if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" || within(dir, dataDir) || within(dataDir, dir) ||
				!strings.HasPrefix(name, "PG_") || strings.ContainsAny(name, "/\x00") {
				return dirState{}, failf(ExitNotEmpty, "%s in %s names %q in %q, which a restore does not write: remove the file by hand", restoringMarker, dataDir, name, dir)
			}
			clear = append(clear, filepath.Join(dir, name))
		default:
			return dirState{}, failf(ExitNotEmpty, "%s in %s has a line pghook does not write (%q): remove the file by hand", restoringMarker, dataDir, sc.Text())
		}
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return dirState{}, fail(ExitIO, fmt.Errorf("reading data directory: %w", err))
	}
	var removed []string
	for _, e := range ents {
		if !kept[e.Name()] {
			removed = append(removed, e.Name())
		}
	}
	log.Warn().Strs("entries", removed).Strs("tablespace_dirs", clear).
		Msg("the data directory holds an interrupted pghook restore: removing what it wrote and restoring again")
	for _, n := range removed {
		clear = append(clear, filepath.Join(dataDir, n))
	}
	if err := removeAll(clear, "clearing an interrupted restore"); err != nil {
		return dirState{}, err
	}
	if err := removeMarker(dataDir); err != nil {
		return dirState{}, fail(ExitIO, err)
	}
	st, err := inspectDataDir(dataDir)
	if err != nil {
		return st, fail(ExitIO, err)
	}
	return st, nil
}

// livePostmaster returns the pid in dataDir's postmaster.pid when that
// process is alive.
func livePostmaster(dataDir string) (int, bool) {
	pid, ok := postmasterPID(dataDir)
	if !ok {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return pid, true
	}
	return 0, false
}

// checkReplaceable says whether a keep_data restore may replace a data
// directory it cannot adopt (another cluster, a former primary): only a
// PostgreSQL data directory (PG_VERSION and global/ at its top), holding
// no other one below it, with no postmaster running on it. Anything else
// — a data_dir pointing at the wrong place, at a parent of clusters — is
// refused (exit 8) and left alone.
func checkReplaceable(dataDir string) error {
	fi, err := os.Stat(filepath.Join(dataDir, "PG_VERSION"))
	gi, gerr := os.Stat(filepath.Join(dataDir, "global"))
	if err != nil || !fi.Mode().IsRegular() || gerr != nil || !gi.IsDir() {
		return failf(ExitNotEmpty, "data directory %s is not empty and is no PostgreSQL data directory (no PG_VERSION or global/): not replaced; check data_dir, or empty it by hand", dataDir)
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return fail(ExitIO, fmt.Errorf("reading data directory: %w", err))
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		for _, f := range []string{"PG_VERSION", "postmaster.pid"} {
			if _, err := os.Lstat(filepath.Join(dataDir, e.Name(), f)); err == nil {
				return failf(ExitNotEmpty, "data directory %s holds another data directory (%s/%s): not replaced; check data_dir", dataDir, e.Name(), f)
			}
		}
	}
	if pid, ok := livePostmaster(dataDir); ok {
		return failf(ExitNotEmpty, "data directory %s is not empty and cannot be adopted or replaced: a postmaster (pid %d) is running on it", dataDir, pid)
	}
	return nil
}

// wipeDataDir removes every entry of a replaceable data directory but
// dotfiles and lost+found (its pg_tblspc links with it; the directories
// they point to are left alone, and must be empty for the restore) and
// returns its state afterwards. The postmaster check is repeated first:
// minutes may have passed since checkReplaceable. An error while removing
// can leave the directory partly emptied (exit 7).
func wipeDataDir(log zerolog.Logger, dataDir string) (dirState, error) {
	if pid, ok := livePostmaster(dataDir); ok {
		return dirState{}, failf(ExitNotEmpty, "data directory %s: a postmaster (pid %d) started on it during the pre-flight: not replaced", dataDir, pid)
	}
	st, err := inspectDataDir(dataDir)
	if err != nil {
		return st, fail(ExitIO, err)
	}
	log.Warn().Strs("removed", st.significant).Msg("keep_data: the previous contents of the data directory removed")
	paths := make([]string, len(st.significant))
	for i, n := range st.significant {
		paths[i] = filepath.Join(dataDir, n)
	}
	if err := removeAll(paths, "replacing the data directory"); err != nil {
		return st, err
	}
	if err := fsutil.SyncDir(dataDir); err != nil {
		return st, fail(ExitIO, err)
	}
	if st, err = inspectDataDir(dataDir); err != nil {
		return st, fail(ExitIO, err)
	}
	return st, nil
}

// removeAll removes every path (what: the reason, for the error, exit 7).
func removeAll(paths []string, what string) error {
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return fail(ExitIO, fmt.Errorf("%s: %w", what, err))
		}
	}
	return nil
}
