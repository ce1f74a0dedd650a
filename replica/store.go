package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultBackupDir is where backups live when neither a flag nor the
// method section names a directory.
const DefaultBackupDir = "/var/lib/pghook/backups"

// MetaFile is pghook's metadata file in a backup directory. Its presence
// in a directory without the .partial suffix marks a published backup.
const MetaFile = "pghook.json"

const (
	partialSuffix  = ".partial"
	deletingSuffix = ".deleting"
)

// Meta is pghook's metadata of one backup.
type Meta struct {
	ID          string   `json:"id"`
	Scope       string   `json:"scope"`
	SystemID    uint64   `json:"system_identifier,string"`
	Timeline    uint32   `json:"timeline"`
	StartLSN    string   `json:"start_lsn"`
	EndLSN      string   `json:"end_lsn"`
	PGVersion   int      `json:"pg_version"`
	WALSegSize  uint32   `json:"wal_segment_size"`
	Compression string   `json:"compression"`
	DataBytes   int64    `json:"data_bytes"`   // sum of the manifest's file sizes
	StoredBytes int64    `json:"stored_bytes"` // bytes on disk, tars + manifest
	Files       []string `json:"files"`
	// ConfigDir is the config_dir saved with the backup (in ConfigSubdir),
	// when PostgreSQL's configuration lived outside the data directory.
	ConfigDir   string       `json:"config_dir,omitempty"`
	ConfigFiles []ConfigFile `json:"config_files,omitempty"`
	// Tablespaces are the backed-up server's tablespaces (tablespace_map).
	Tablespaces []Tablespace `json:"tablespaces,omitempty"`
	Source      string       `json:"source,omitempty"`
	FromStandby bool         `json:"from_standby,omitempty"` // BACKUP FROM: standby (no WAL switch at the end)
	CreatedAt   time.Time    `json:"created_at"`
	TookSeconds float64      `json:"took_seconds"`

	// Dir is the backup's directory (not stored).
	Dir string `json:"-"`
	// startTime is backup_label's START TIME (not stored).
	startTime string
}

// scopeDir is <dir>/<scope>, refusing scope names that leave dir.
func scopeDir(dir, scope string) (string, error) {
	if scope == "" || !filepath.IsLocal(scope) || strings.ContainsRune(scope, '/') {
		return "", failf(ExitUsage, "scope %q is not a valid directory name", scope)
	}
	return filepath.Join(dir, scope), nil
}

// List returns the published backups of scope, newest first. A missing
// scope directory is an empty list.
func List(dir, scope string) ([]Meta, error) {
	m, _, err := Scan(dir, scope)
	return m, err
}

// Skipped is a directory in a scope's backup directory that is not a
// published backup, and why.
type Skipped struct {
	Dir    string
	Reason string
}

// Scan returns the published backups of scope, newest first, and the
// directories beside them that are not (a hand-made pg_basebackup without
// pghook.json, an unreadable pghook.json). Backups being written or
// removed (.partial, .deleting) are neither.
func Scan(dir, scope string) ([]Meta, []Skipped, error) {
	sd, err := scopeDir(dir, scope)
	if err != nil {
		return nil, nil, err
	}
	ents, err := os.ReadDir(sd)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing backups: %w", err)
	}
	var out []Meta
	var skipped []Skipped
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, partialSuffix) || strings.HasSuffix(n, deletingSuffix) {
			continue
		}
		bdir := filepath.Join(sd, n)
		m, err := readMeta(bdir)
		switch {
		case errors.Is(err, os.ErrNotExist) && exists(filepath.Join(bdir, "backup_manifest")):
			skipped = append(skipped, Skipped{bdir, fmt.Sprintf("no %s: not published by pghook backup (a hand-made pg_basebackup -F t? adopt it with: pghook backup import %s --scope %s)", MetaFile, bdir, scope)})
		case errors.Is(err, os.ErrNotExist):
			skipped = append(skipped, Skipped{bdir, fmt.Sprintf("no %s and no backup_manifest: not a backup", MetaFile)})
		case err != nil:
			skipped = append(skipped, Skipped{bdir, err.Error()})
		default:
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out, skipped, nil
}

// Scopes returns the scopes that have a directory under dir.
func Scopes(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func readMeta(bdir string) (Meta, error) {
	p := filepath.Join(bdir, MetaFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("%s is unreadable: %s", p, metaFieldError(b, err))
	}
	if m.ID == "" || m.SystemID == 0 || m.CreatedAt.IsZero() {
		return Meta{}, fmt.Errorf("%s is unreadable: it lacks id, system_identifier or created_at", p)
	}
	m.Dir = bdir
	return m, nil
}

// metaFieldError names the field of pghook.json that err is about:
// encoding/json does not for a ",string" field holding a number.
func metaFieldError(b []byte, err error) string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return err.Error() + " (not a JSON object)"
	}
	t := reflect.TypeOf(Meta{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		v, ok := raw[name]
		if !ok || name == "-" {
			continue
		}
		if strings.Contains(opts, "string") {
			var str string
			if json.Unmarshal(v, &str) != nil {
				return fmt.Sprintf("field %s is %s, want a JSON string (e.g. \"%s\")", name, v, strings.Trim(string(v), `"`))
			}
			v = json.RawMessage(str)
		}
		if ferr := json.Unmarshal(v, reflect.New(f.Type).Interface()); ferr != nil {
			return fmt.Sprintf("field %s: %v", name, ferr)
		}
	}
	return err.Error()
}

// lockBackup takes a shared flock on a backup's metadata file: retention
// never deletes a backup while a restore holds it. It fails if the backup
// was removed or renamed meanwhile.
func lockBackup(bdir string) (*os.File, error) {
	p := filepath.Join(bdir, MetaFile)
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	// Retention renames before deleting: make sure we locked the live file.
	fi1, err1 := f.Stat()
	fi2, err2 := os.Stat(p)
	if err1 != nil || err2 != nil || !os.SameFile(fi1, fi2) {
		f.Close()
		return nil, fmt.Errorf("backup %s went away while locking it", bdir)
	}
	return f, nil
}

// Prune keeps the keep newest published backups of scope (keep <= 0 keeps
// all) and removes the others, except any a restore holds. It returns the
// ids removed.
func Prune(dir, scope string, keep int, olderThan time.Duration) ([]string, error) {
	all, err := List(dir, scope)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for i, m := range all {
		if i == 0 {
			continue // never remove the newest
		}
		old := keep > 0 && i >= keep
		if olderThan > 0 && time.Since(m.CreatedAt) > olderThan {
			old = true
		}
		if !old {
			continue
		}
		ok, err := removeBackup(m.Dir)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, m.ID)
		}
	}
	return removed, errors.Join(errs...)
}

// removeBackup deletes a backup unless a restore holds its lock: exclusive
// non-blocking flock, rename to .deleting (List ignores it), RemoveAll.
func removeBackup(bdir string) (bool, error) {
	f, err := os.Open(filepath.Join(bdir, MetaFile))
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil // a restore is reading it
		}
		return false, fmt.Errorf("locking %s: %w", bdir, err)
	}
	gone := bdir + deletingSuffix
	if err := os.Rename(bdir, gone); err != nil {
		return false, fmt.Errorf("retiring backup %s: %w", bdir, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return true, fmt.Errorf("removing backup %s: %w", gone, err)
	}
	return true, nil
}
