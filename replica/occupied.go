package replica

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
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
// are not. It lists the tablespace directories that restore was writing,
// so that the next attempt can clear them too.
const restoringMarker = ".pghook-restoring"

// markerHeader starts the marker; a file without it was not written by
// pghook and makes the next attempt refuse rather than delete anything.
const markerHeader = "pghook create-replica: restore in progress; this data directory is incomplete until this file is gone\n"

// writeMarker writes the marker durably (file and directory synced).
func writeMarker(dataDir string, ts []*tsTarget) error {
	var b bytes.Buffer
	b.WriteString(markerHeader)
	for _, t := range ts {
		fmt.Fprintf(&b, "tablespace\t%s\n", t.Target)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, restoringMarker), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", restoringMarker, err)
	}
	_, err = f.Write(b.Bytes())
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", restoringMarker, err)
	}
	return fsutil.SyncDir(dataDir)
}

// removeMarker removes the marker durably.
func removeMarker(dataDir string) error {
	if err := os.Remove(filepath.Join(dataDir, restoringMarker)); err != nil {
		return fmt.Errorf("removing %s: %w", restoringMarker, err)
	}
	return fsutil.SyncDir(dataDir)
}

// clearInterrupted removes what an interrupted restore left — every
// entry of the data directory but dotfiles and lost+found that were there
// before it, the marker, and the PG_* directories it was writing into the
// tablespace directories the marker lists — and returns the data
// directory's state afterwards. It refuses (exit 8) and deletes nothing
// when a postmaster runs on the directory, when the marker is not
// pghook's, or when a listed tablespace directory holds anything a
// restore does not write.
func clearInterrupted(log zerolog.Logger, dataDir string, st dirState) (dirState, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, restoringMarker))
	if err != nil {
		return st, fail(ExitIO, fmt.Errorf("reading %s: %w", restoringMarker, err))
	}
	if !bytes.HasPrefix(b, []byte(markerHeader)) {
		return st, failf(ExitNotEmpty, "data directory %s holds a %s that pghook did not write: remove it by hand", dataDir, restoringMarker)
	}
	if pid, ok := livePostmaster(dataDir); ok {
		return st, failf(ExitNotEmpty, "data directory %s holds an interrupted restore, but a postmaster (pid %d) is running on it", dataDir, pid)
	}
	// Check every tablespace directory before deleting anything.
	var clear []string
	sc := bufio.NewScanner(bytes.NewReader(b[len(markerHeader):]))
	for sc.Scan() {
		dir, ok := strings.CutPrefix(sc.Text(), "tablespace\t")
		if !ok {
			continue
		}
		if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || within(dir, dataDir) || within(dataDir, dir) {
			return st, failf(ExitNotEmpty, "%s in %s names tablespace directory %q, which pghook would not have written: remove the file by hand", restoringMarker, dataDir, dir)
		}
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, fail(ExitIO, fmt.Errorf("tablespace directory %s: %w", dir, err))
		}
		for _, e := range ents {
			switch {
			case strings.HasPrefix(e.Name(), "PG_"):
				clear = append(clear, filepath.Join(dir, e.Name()))
			case strings.HasPrefix(e.Name(), "."), e.Name() == "lost+found":
			default:
				return st, failf(ExitNotEmpty, "tablespace directory %s (being restored when a restore into %s was interrupted) holds %s, which a restore does not write: empty it by hand", dir, dataDir, e.Name())
			}
		}
	}
	log.Warn().Strs("entries", st.significant).Strs("tablespace_dirs", clear).
		Msg("the data directory holds an interrupted pghook restore: removing it and restoring again")
	for _, p := range clear {
		if err := os.RemoveAll(p); err != nil {
			return st, fail(ExitIO, fmt.Errorf("clearing an interrupted restore: %w", err))
		}
	}
	for _, n := range st.significant {
		if err := os.RemoveAll(filepath.Join(dataDir, n)); err != nil {
			return st, fail(ExitIO, fmt.Errorf("clearing an interrupted restore: %w", err))
		}
	}
	if err := removeMarker(dataDir); err != nil {
		return st, fail(ExitIO, err)
	}
	st, err = inspectDataDir(dataDir)
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

// wipePlan is what a keep_data restore removes, once the pre-flight has
// passed, from a data directory it cannot adopt (another cluster, a former
// primary, anything else): every entry but dotfiles and lost+found, and in
// each tablespace directory its pg_tblspc links point to, that cluster's
// own PG_<major>_<catversion> directory (other versions' stay).
type wipePlan struct {
	tsDirs []string // targets of the pg_tblspc links outside the data directory
	prefix string   // "PG_<major>_" of the cluster being replaced ("": unknown, nothing cleared there)
}

func planWipe(dataDir string, st dirState) (*wipePlan, error) {
	w := &wipePlan{}
	if b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" && !strings.ContainsAny(v, "/_") {
			w.prefix = "PG_" + v + "_"
		}
	}
	ents, err := os.ReadDir(filepath.Join(dataDir, "pg_tblspc"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fail(ExitIO, fmt.Errorf("reading pg_tblspc: %w", err))
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dataDir, "pg_tblspc", e.Name()))
		if err != nil {
			continue // not a link: it goes with the data directory
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dataDir, "pg_tblspc", target)
		}
		if target = filepath.Clean(target); within(target, dataDir) || within(dataDir, target) {
			continue
		}
		w.tsDirs = append(w.tsDirs, target)
	}
	return w, nil
}

// clears reports whether the wipe removes name from dir (nil: no wipe).
func (w *wipePlan) clears(dir, name string) bool {
	return w != nil && w.prefix != "" && strings.HasPrefix(name, w.prefix) && slices.Contains(w.tsDirs, dir)
}

// run removes what the plan names and returns the data directory's state
// afterwards; the tablespace directories' states in ts are taken again.
func (w *wipePlan) run(log zerolog.Logger, dataDir string, ts []*tsTarget) (dirState, error) {
	var removed []string
	for _, d := range w.tsDirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return dirState{}, fail(ExitIO, fmt.Errorf("tablespace directory %s: %w", d, err))
		}
		for _, e := range ents {
			if w.clears(d, e.Name()) {
				p := filepath.Join(d, e.Name())
				if err := os.RemoveAll(p); err != nil {
					return dirState{}, fail(ExitIO, fmt.Errorf("replacing the data directory: %w", err))
				}
				removed = append(removed, p)
			}
		}
	}
	st, err := inspectDataDir(dataDir)
	if err != nil {
		return st, fail(ExitIO, err)
	}
	for _, n := range st.significant {
		if err := os.RemoveAll(filepath.Join(dataDir, n)); err != nil {
			return st, fail(ExitIO, fmt.Errorf("replacing the data directory: %w", err))
		}
	}
	if err := fsutil.SyncDir(dataDir); err != nil {
		return st, fail(ExitIO, err)
	}
	for _, t := range ts {
		if t.state, err = inspectDataDir(t.Target); err != nil {
			return st, fail(ExitIO, err)
		}
		if len(t.state.significant) > 0 {
			return st, failf(ExitNotEmpty, "tablespace %s directory %s is not empty (%s…)", t.OID, t.Target, t.state.significant[0])
		}
	}
	log.Warn().Strs("removed", append(st.significant, removed...)).Msg("keep_data: the previous contents of the data directory removed")
	if st, err = inspectDataDir(dataDir); err != nil {
		return st, fail(ExitIO, err)
	}
	return st, nil
}
