package pgtab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pghook/pghook/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Mode is the permission of the roster and its lock file.
const Mode os.FileMode = 0o640

// File is a roster on disk.
type File struct {
	Path string
	// LockTimeout bounds the wait for the exclusive lock; zero means 10s.
	LockTimeout time.Duration
}

// Read returns the rows of the roster; a missing file is an empty roster.
func (f File) Read() ([]Row, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading roster %s: %w", f.Path, err)
	}
	rows, err := Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("roster %s: %w", f.Path, err)
	}
	return rows, nil
}

// ErrStale is returned by UpsertEvent when an event that started later has
// already been recorded for the same (scope, node): Patroni does not always
// kill a slow callback when the next one arrives, so the last callback to
// finish is not always the latest event.
var ErrStale = errors.New("pgtab: a later event already recorded this row")

// Upsert inserts row, or updates the stored row of the same (scope, node),
// under an exclusive lock, and writes the roster atomically with mode 0640
// and the owner of the existing file (or of its directory).
func (f File) Upsert(ctx context.Context, row Row) error {
	return f.upsert(ctx, row, time.Time{})
}

// UpsertEvent is Upsert for an event that started at at: under the same
// lock it refuses, with ErrStale, when an event of the same (scope, node)
// that started after at has been recorded, and otherwise records at. The
// marks live in the lock file (a few bytes, not fsynced: losing them only
// loses the ordering of events in flight), so even an event that changes
// nothing advances them.
func (f File) UpsertEvent(ctx context.Context, row Row, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("pgtab: UpsertEvent needs the event's start time")
	}
	return f.upsert(ctx, row, at)
}

func (f File) upsert(ctx context.Context, row Row, at time.Time) error {
	if err := row.Validate(); err != nil {
		return err
	}
	if row.UpdatedAt.IsZero() {
		row.UpdatedAt = time.Now()
	}
	lf, unlock, err := f.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if !at.IsZero() {
		if err := advanceMark(lf, row.Key(), at); err != nil {
			return err
		}
	}
	removeStaleTemps(f.Path)
	// One read under the lock: the bytes serve both the parse and the
	// "nothing changed" comparison.
	old, err := os.ReadFile(f.Path)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading roster %s: %w", f.Path, err)
	}
	var rows []Row
	if exists {
		rows, err = Parse(bytes.NewReader(old))
		if err != nil {
			// A roster pghook cannot parse is kept aside, never silently lost.
			aside := fmt.Sprintf("%s.unreadable-%d", f.Path, time.Now().Unix())
			if rerr := os.Rename(f.Path, aside); rerr != nil {
				return fmt.Errorf("roster %s: %w (and moving it aside failed: %v)", f.Path, err, rerr)
			}
			rows, exists = nil, false
		}
	}
	if exists && unchanged(old, rows, row) {
		return nil // the state already holds: no write, no fsync
	}
	rows = Merge(rows, row)
	var buf bytes.Buffer
	if err := Encode(&buf, rows); err != nil {
		return fmt.Errorf("encoding roster %s: %w", f.Path, err)
	}
	if err := fsutil.WriteFile(f.Path, buf.Bytes(), Mode, ownerFor(f.Path)); err != nil {
		return fmt.Errorf("writing roster: %w", err)
	}
	return nil
}

// removeStaleTemps deletes temporary files a SIGKILLed writer left. Writers
// create them only while holding the lock, so under the lock any that
// exist belong to a dead writer.
func removeStaleTemps(path string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

// unchanged reports whether upserting row would only move its UpdatedAt:
// the file is already in pghook's format and holds these exact facts.
// UPDATED_AT is thus the time the row last changed.
func unchanged(old []byte, rows []Row, row Row) bool {
	for _, r := range rows {
		if r.Key() != row.Key() {
			continue
		}
		m := overlay(r, row)
		m.UpdatedAt = r.UpdatedAt
		if m != r {
			return false
		}
		var buf bytes.Buffer
		if Encode(&buf, rows) != nil {
			return false
		}
		return bytes.Equal(buf.Bytes(), old)
	}
	return false
}

// lock takes an exclusive flock on Path+".lock". The lock file is never
// renamed, so all writers agree on one inode; the kernel drops the lock of
// a SIGKILLed holder.
func (f File) lock(ctx context.Context) (*os.File, func(), error) {
	lp := f.Path + ".lock"
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return nil, nil, fmt.Errorf("creating roster directory: %w", err)
	}
	lf, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, Mode)
	if err != nil {
		return nil, nil, fmt.Errorf("opening roster lock %s: %w", lp, err)
	}
	o := ownerFor(f.Path)
	if o.UID >= 0 {
		_ = lf.Chown(o.UID, o.GID)
	}
	timeout := f.LockTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; {
		err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return lf, func() { lf.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			lf.Close()
			return nil, nil, fmt.Errorf("locking roster %s: %w", lp, err)
		}
		if time.Now().After(deadline) {
			lf.Close()
			return nil, nil, fmt.Errorf("locking roster %s: still held by another writer after %s", lp, timeout)
		}
		select {
		case <-ctx.Done():
			lf.Close()
			return nil, nil, fmt.Errorf("locking roster %s: %w", lp, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

// ownerFor returns the owner a rewritten roster must keep: that of the
// existing file, else that of its directory. Only root can give a file
// away, so for anyone else the owner is left as created.
func ownerFor(path string) fsutil.Owner {
	if os.Geteuid() != 0 {
		return fsutil.Keep
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		if fi, err := os.Stat(p); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				return fsutil.Owner{UID: int(st.Uid), GID: int(st.Gid)}
			}
		}
	}
	return fsutil.Keep
}

// advanceMark records at for key in lf (held locked), or returns ErrStale
// when a later start is recorded. The marks are lines "<key>\x00<unix ns>"
// (a key is scope NUL node; rows never contain NUL), parsed by hand:
// encoding/json's first use costs a cold callback ~0.1 ms. Unreadable lines
// count as no mark.
func advanceMark(lf *os.File, key string, at time.Time) error {
	b, err := io.ReadAll(io.NewSectionReader(lf, 0, 1<<20))
	if err != nil {
		return fmt.Errorf("reading roster lock %s: %w", lf.Name(), err)
	}
	var out bytes.Buffer
	for _, line := range bytes.Split(b, []byte("\n")) {
		i := bytes.LastIndexByte(line, 0)
		if i < 0 {
			continue
		}
		if string(line[:i]) != key {
			out.Write(line)
			out.WriteByte('\n')
			continue
		}
		if last, perr := strconv.ParseInt(string(line[i+1:]), 10, 64); perr == nil && last > at.UnixNano() {
			return fmt.Errorf("%w (it started at %s, this one at %s)", ErrStale,
				time.Unix(0, last).UTC().Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano))
		}
	}
	out.WriteString(key)
	out.WriteByte(0)
	out.WriteString(strconv.FormatInt(at.UnixNano(), 10))
	out.WriteByte('\n')
	if _, err := lf.WriteAt(out.Bytes(), 0); err != nil {
		return fmt.Errorf("writing roster lock %s: %w", lf.Name(), err)
	}
	if out.Len() < len(b) {
		if err := lf.Truncate(int64(out.Len())); err != nil {
			return fmt.Errorf("writing roster lock %s: %w", lf.Name(), err)
		}
	}
	return nil
}
