package replica

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

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
	return syncDir(dataDir)
}

// removeMarker removes the marker durably.
func removeMarker(dataDir string) error {
	if err := os.Remove(filepath.Join(dataDir, restoringMarker)); err != nil {
		return fmt.Errorf("removing %s: %w", restoringMarker, err)
	}
	return syncDir(dataDir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
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
	if pid, ok := postmasterPID(dataDir); ok {
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			return st, failf(ExitNotEmpty, "data directory %s holds an interrupted restore, but a postmaster (pid %d) is running on it", dataDir, pid)
		}
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
