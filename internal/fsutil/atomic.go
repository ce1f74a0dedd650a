// Package fsutil writes files so that a reader sees either the old content
// or the new one, never a half-written file, even if the writer is
// SIGKILLed at any instant (Patroni kills a running callback when the next
// one arrives).
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// Owner is a numeric uid/gid pair; -1 leaves that id unchanged.
type Owner struct{ UID, GID int }

// Keep leaves the owner as the creating process makes it.
var Keep = Owner{UID: -1, GID: -1}

// WriteFile writes data to path atomically: a temporary file in the same
// directory, chmod, chown, fsync, rename over path, fsync of the directory.
// A non-regular file at path is refused rather than replaced.
func WriteFile(path string, data []byte, perm os.FileMode, owner Owner) (err error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("writing %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if owner.UID >= 0 || owner.GID >= 0 {
		if err = f.Chown(owner.UID, owner.GID); err != nil {
			return fmt.Errorf("chown %s: %w", tmp, err)
		}
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that a rename in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
