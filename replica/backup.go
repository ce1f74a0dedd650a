package replica

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pghook/pghook/internal/fsutil"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Compressions are the values of BackupOptions.Compression.
var Compressions = []string{"zstd", "lz4", "gzip", "none"}

// BackupOptions configure Backup.
type BackupOptions struct {
	Dir   string // backup root; the backup goes to <Dir>/<Scope>/<id>/
	Scope string
	// Source: a libpq connection string and/or host, port, user. The
	// password comes from PGPASSFILE or ~/.pgpass, never a flag.
	ConnString string
	Host       string
	Port       int
	User       string
	// Compression is zstd (default), lz4, gzip or none; client-side.
	Compression string
	// Keep is how many backups retention keeps (0: all); OlderThan also
	// removes backups older than that (0: no age limit). The newest
	// backup and any backup a restore holds are never removed.
	Keep      int
	OlderThan time.Duration
	// ConfigDir, when set, is PostgreSQL's configuration directory outside
	// the data directory (Patroni's postgresql.config_dir, Debian's
	// /etc/postgresql/…): its files are saved with the backup.
	ConfigDir string
	// PgBaseBackup is the pg_basebackup binary (default: PostgreSQL 15's).
	PgBaseBackup string
	Log          zerolog.Logger
	// Stderr receives pg_basebackup's messages (default os.Stderr).
	Stderr *os.File
}

// DefaultPgBaseBackup is Debian's PostgreSQL 15 pg_basebackup.
const DefaultPgBaseBackup = "/usr/lib/postgresql/15/bin/pg_basebackup"

// Backup takes a backup with pg_basebackup into <id>.partial, checks it,
// writes pghook.json, syncs and renames it to <id>, then applies retention.
// Only one backup of a scope runs at a time.
func Backup(ctx context.Context, o BackupOptions) (Meta, error) {
	start := time.Now()
	comp := o.Compression
	if comp == "" {
		comp = "zstd"
	}
	method, _, _ := strings.Cut(comp, ":")
	switch method {
	case "zstd", "lz4", "gzip", "none":
	default:
		return Meta{}, failf(ExitUsage, "compression %q: want zstd, lz4, gzip or none", comp)
	}
	sd, err := scopeDir(cmp.Or(o.Dir, DefaultBackupDir), o.Scope)
	if err != nil {
		return Meta{}, err
	}
	unlock, err := claimScope(sd, o.Log)
	if err != nil {
		return Meta{}, err
	}
	defer unlock()

	id := freeID(sd, start)
	partial := filepath.Join(sd, id+partialSuffix)
	final := filepath.Join(sd, id)
	log := o.Log.With().Str("scope", o.Scope).Str("backup_id", id).Logger()

	bin := cmp.Or(o.PgBaseBackup, DefaultPgBaseBackup)
	args := []string{"-D", partial, "-F", "t", "-X", "stream", "-c", "fast", "-w",
		"--manifest-checksums=CRC32C", "-l", "pghook " + o.Scope + " " + id}
	if method == "none" {
		args = append(args, "--compress=none")
	} else {
		args = append(args, "--compress=client-"+comp)
	}
	if o.ConnString != "" {
		args = append(args, "-d", o.ConnString)
	}
	if o.Host != "" {
		args = append(args, "-h", o.Host)
	}
	if o.Port != 0 {
		args = append(args, "-p", strconv.Itoa(o.Port))
	}
	if o.User != "" {
		args = append(args, "-U", o.User)
	}
	log.Info().Str("dir", partial).Str("compression", comp).Msg("backup starting")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if o.Stderr != nil {
		cmd.Stdout, cmd.Stderr = o.Stderr, o.Stderr
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		os.RemoveAll(partial)
		return Meta{}, fmt.Errorf("pg_basebackup: %w", err)
	}
	m, err := describe(partial)
	if err != nil {
		os.RemoveAll(partial)
		return Meta{}, fmt.Errorf("checking the new backup: %w", err)
	}
	m.ID, m.Scope, m.Compression, m.CreatedAt = id, o.Scope, method, start.UTC()
	m.Source = describeSource(o)
	if o.ConfigDir != "" {
		cd, err := filepath.Abs(o.ConfigDir)
		if err == nil {
			m.ConfigFiles, err = saveConfigDir(cd, filepath.Join(partial, ConfigSubdir), log)
		}
		if err != nil {
			os.RemoveAll(partial)
			return Meta{}, fail(ExitIO, err)
		}
		m.ConfigDir = cd
		m.Files = append(m.Files, ConfigSubdir+"/")
	}
	m.TookSeconds = round1(time.Since(start).Seconds())
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := fsutil.WriteFile(filepath.Join(partial, MetaFile), append(b, '\n'), 0o640, fsutil.Keep); err != nil {
		os.RemoveAll(partial)
		return Meta{}, fail(ExitIO, err)
	}
	if err := syncFiles(partial); err != nil {
		os.RemoveAll(partial)
		return Meta{}, fail(ExitIO, err)
	}
	if err := os.Rename(partial, final); err != nil {
		os.RemoveAll(partial)
		return Meta{}, fail(ExitIO, fmt.Errorf("publishing backup: %w", err))
	}
	if err := fsutil.SyncDir(sd); err != nil {
		return Meta{}, fail(ExitIO, err)
	}
	m.Dir = final
	log.Info().Uint64("system_identifier", m.SystemID).Str("start_lsn", m.StartLSN).Str("end_lsn", m.EndLSN).
		Int64("data_bytes", m.DataBytes).Int64("stored_bytes", m.StoredBytes).Float64("took_s", m.TookSeconds).
		Str("dir", final).Msg("backup published")
	if o.Keep > 0 || o.OlderThan > 0 {
		removed, err := Prune(cmp.Or(o.Dir, DefaultBackupDir), o.Scope, o.Keep, o.OlderThan)
		if len(removed) > 0 {
			log.Info().Strs("removed", removed).Msg("retention")
		}
		if err != nil {
			log.Warn().Err(err).Msg("retention")
		}
	}
	return m, nil
}

func describeSource(o BackupOptions) string {
	var parts []string
	if o.Host != "" {
		parts = append(parts, "host="+o.Host)
	}
	if o.Port != 0 {
		parts = append(parts, "port="+strconv.Itoa(o.Port))
	}
	if o.User != "" {
		parts = append(parts, "user="+o.User)
	}
	return strings.Join(parts, " ")
}

// describe checks a finished pg_basebackup directory the way Restore's
// pre-flight will and fills the metadata from it.
func describe(bdir string) (Meta, error) {
	p, err := planBackup(bdir, nil)
	if err != nil {
		return Meta{}, err
	}
	return p.meta(), nil
}

// syncFiles fsyncs every file of a backup directory (and of its
// config_dir copy) and the directories.
func syncFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() && e.Name() == ConfigSubdir {
			if err := syncTreeFiles(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("fsync %s: %w", e.Name(), err)
		}
	}
	return fsutil.SyncDir(dir)
}

// claimScope creates the scope's backup directory sd, takes its lock and
// removes what killed runs left (cleanStale); the caller calls unlock when
// done.
func claimScope(sd string, log zerolog.Logger) (unlock func(), err error) {
	if err := os.MkdirAll(sd, 0o750); err != nil {
		return nil, fail(ExitIO, fmt.Errorf("creating %s: %w", sd, err))
	}
	if unlock, err = lockScope(sd); err != nil {
		return nil, err
	}
	cleanStale(sd, log)
	return unlock, nil
}

// freeID is the ID of a backup of sd taken (or started) at t: its UTC
// time, with -1, -2 … appended while a backup or a partial one of that
// name is there.
func freeID(sd string, t time.Time) string {
	base := t.UTC().Format("20060102T150405Z")
	id := base
	for i := 1; exists(filepath.Join(sd, id)) || exists(filepath.Join(sd, id+partialSuffix)); i++ {
		id = base + "-" + strconv.Itoa(i)
	}
	return id
}

// lockScope takes the scope's exclusive backup lock.
func lockScope(sd string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(sd, ".backup.lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fail(ExitIO, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, failf(ExitFailure, "another backup of this scope is running (%s is locked)", f.Name())
		}
		return nil, fail(ExitIO, err)
	}
	return func() { f.Close() }, nil
}

// cleanStale removes leftovers of killed runs: .partial (under the scope
// lock, so no backup is writing it) and .deleting directories.
func cleanStale(sd string, log zerolog.Logger) {
	ents, _ := os.ReadDir(sd)
	for _, e := range ents {
		if e.IsDir() && (strings.HasSuffix(e.Name(), partialSuffix) || strings.HasSuffix(e.Name(), deletingSuffix)) {
			if err := os.RemoveAll(filepath.Join(sd, e.Name())); err != nil {
				log.Warn().Err(err).Str("dir", e.Name()).Msg("removing a stale backup directory")
			} else {
				log.Info().Str("dir", e.Name()).Msg("removed a stale backup directory")
			}
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// syncTreeFiles fsyncs every file and directory under dir.
func syncTreeFiles(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", p, err)
		}
		return nil
	})
}
