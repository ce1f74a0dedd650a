package replica

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pghook/pghook/internal/fsutil"
	"github.com/rs/zerolog"
)

// ImportOptions configure Import.
type ImportOptions struct {
	Dir    string // backup root; the backup goes to <Dir>/<Scope>/<id>/
	Scope  string
	Source string // a pg_basebackup -F t directory
	// Move renames the files instead of copying them (same file system).
	Move bool
	// SystemID, when not 0, is this cluster's: a backup of another is refused.
	SystemID      uint64
	Decompressors Decompressors
	Log           zerolog.Logger
}

// Import adopts a backup made by hand with pg_basebackup -F t (any
// compression, tablespaces, a backup_manifest): it runs every check a
// restore runs (VerifyBackup), refuses a backup of another cluster than
// the scope's other backups (or opts.SystemID), derives pghook.json from
// the files, and publishes a copy (or, with Move, the files themselves)
// beside pghook's own backups the way Backup does: <id>.partial, fsync,
// rename. Errors carry create-replica's exit codes.
func Import(ctx context.Context, o ImportOptions) (Meta, error) {
	start := time.Now()
	log := o.Log.With().Str("scope", o.Scope).Str("source", o.Source).Logger()
	src, err := filepath.Abs(o.Source)
	if err != nil {
		return Meta{}, fail(ExitUsage, err)
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return Meta{}, failf(ExitUsage, "import: %s is not a directory (want the directory pg_basebackup -D wrote)", src)
	}
	if exists(filepath.Join(src, MetaFile)) {
		return Meta{}, failf(ExitUsage, "import: %s already has a %s: it is a pghook backup, nothing to import", src, MetaFile)
	}
	if !exists(filepath.Join(src, "backup_manifest")) {
		return Meta{}, failf(ExitVerify, "import: %s has no backup_manifest: pghook imports only backups with a manifest (pg_basebackup writes one unless --no-manifest)", src)
	}
	root := cmp.Or(o.Dir, DefaultBackupDir)
	sd, err := scopeDir(root, o.Scope)
	if err != nil {
		return Meta{}, err
	}

	v, err := VerifyBackup(ctx, src, o.Decompressors, log)
	if err != nil {
		return Meta{}, err
	}
	m := v.Backup
	if o.SystemID != 0 && m.SystemID != o.SystemID {
		return Meta{}, failf(ExitOtherCluster, "import: %s is a backup of system %d, this cluster is %d", src, m.SystemID, o.SystemID)
	}
	others, _, err := Scan(root, o.Scope)
	if err != nil {
		return Meta{}, fail(ExitIO, err)
	}
	for _, b := range others {
		if b.SystemID != m.SystemID {
			return Meta{}, failf(ExitOtherCluster, "import: %s is a backup of system %d, but scope %s's backup %s is of system %d", src, m.SystemID, o.Scope, b.ID, b.SystemID)
		}
	}

	unlock, err := claimScope(sd, log)
	if err != nil {
		return Meta{}, err
	}
	defer unlock()

	created := backupStartTime(src, v.Backup)
	id := freeID(sd, created)
	partial, final := filepath.Join(sd, id+partialSuffix), filepath.Join(sd, id)
	if err := os.Mkdir(partial, 0o750); err != nil {
		return Meta{}, fail(ExitIO, err)
	}
	var moved []string
	undo := func() {
		for _, f := range moved { // put the user's files back
			os.Rename(filepath.Join(partial, f), filepath.Join(src, f))
		}
		os.RemoveAll(partial)
	}
	for _, f := range m.Files {
		from, to := filepath.Join(src, f), filepath.Join(partial, f)
		if o.Move {
			if err := os.Rename(from, to); err != nil {
				undo()
				if errors.Is(err, syscall.EXDEV) {
					return Meta{}, failf(ExitUsage, "import --move: %s is on another file system than %s: import without --move (a copy)", src, sd)
				}
				return Meta{}, fail(ExitIO, fmt.Errorf("moving %s: %w", f, err))
			}
			moved = append(moved, f)
			continue
		}
		if err := copyFile(ctx, from, to); err != nil {
			undo()
			return Meta{}, cancelled(ctx, fail(ExitIO, err))
		}
	}
	m.ID, m.Scope, m.CreatedAt = id, o.Scope, created.UTC()
	m.Source = "import " + src
	m.TookSeconds = round1(time.Since(start).Seconds())
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := fsutil.WriteFile(filepath.Join(partial, MetaFile), append(b, '\n'), 0o640, fsutil.Keep); err != nil {
		undo()
		return Meta{}, fail(ExitIO, err)
	}
	if err := syncFiles(partial); err != nil {
		undo()
		return Meta{}, fail(ExitIO, err)
	}
	if err := os.Rename(partial, final); err != nil {
		undo()
		return Meta{}, fail(ExitIO, fmt.Errorf("publishing backup: %w", err))
	}
	if err := fsutil.SyncDir(sd); err != nil {
		return Meta{}, fail(ExitIO, err)
	}
	m.Dir = final
	if o.Move {
		if left, _ := os.ReadDir(src); len(left) == 0 {
			os.Remove(src)
		}
	}
	log.Info().Str("backup_id", id).Uint64("system_identifier", m.SystemID).Str("start_lsn", m.StartLSN).Str("end_lsn", m.EndLSN).
		Int("wal_records", v.WALRecords).Bool("moved", o.Move).Float64("took_s", m.TookSeconds).Str("dir", final).Msg("backup imported")
	return m, nil
}

// backupStartTime is when the backup began, from backup_label's START
// TIME, else the manifest's modification time.
func backupStartTime(src string, m Meta) time.Time {
	if m.startTime != "" {
		for _, layout := range []string{"2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05 -07"} {
			if t, err := time.Parse(layout, m.startTime); err == nil {
				return t
			}
		}
	}
	if fi, err := os.Stat(filepath.Join(src, "backup_manifest")); err == nil {
		return fi.ModTime()
	}
	return time.Now()
}

// copyFile copies a regular file and fsyncs the copy.
func copyFile(ctx context.Context, from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, &ctxReader{ctx: ctx, r: in})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying %s: %w", filepath.Base(from), err)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
