package replica

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestRestoreChoosesBackup: which backup a restore takes, which it refuses
// and what it says when none will do.
func TestRestoreChoosesBackup(t *testing.T) {
	const sysid = 7712150698949318755
	older := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	newer := older.Add(time.Hour)
	synth := func(id uint64, at time.Time, change func(*synthBackup)) func(t *testing.T, dir, name string) {
		return func(t *testing.T, dir, name string) {
			s := newSynth(id)
			s.created = at
			if change != nil {
				change(s)
			}
			s.write(t, dir, "s", name)
		}
	}
	flipWAL := func(s *synthBackup) { s.wal = func(seg []byte) { seg[0x28+24+10] ^= 0x20 } }
	tests := []struct {
		name     string
		backups  map[string]func(t *testing.T, dir, name string)
		dial     error
		want     ExitCode
		restored string   // the backup restored
		msg      []string // in the error
	}{
		{name: "the newest good one", backups: map[string]func(*testing.T, string, string){
			"old": synth(sysid, older, nil), "new": synth(sysid, newer, nil)}, restored: "new"},
		{name: "newest with a corrupt WAL record: the older one", backups: map[string]func(*testing.T, string, string){
			"old": synth(sysid, older, nil), "new": synth(sysid, newer, flipWAL)}, restored: "old"},
		{name: "newest missing a file its pghook.json lists: the older one", backups: map[string]func(*testing.T, string, string){
			"old": synth(sysid, older, nil), "new": func(t *testing.T, dir, name string) {
				synth(sysid, newer, nil)(t, dir, name)
				writeMeta(t, filepath.Join(dir, "s", name), `{"id":"new","scope":"s","system_identifier":"7712150698949318755","created_at":"2026-01-01T01:00:00Z","files":["base.tar","pg_wal.tar.zst","backup_manifest"]}`)
			}}, restored: "old"},
		{name: "all corrupt: 4, naming each", backups: map[string]func(*testing.T, string, string){
			"old": synth(sysid, older, flipWAL), "new": synth(sysid, newer, flipWAL)}, want: ExitVerify,
			msg: []string{"tried 2 backups", "new: exit 4", "old: exit 4", "CRC32C"}},
		{name: "newest of another cluster: 5, no older one tried", backups: map[string]func(*testing.T, string, string){
			"old": synth(sysid, older, nil), "new": synth(99, newer, nil)}, want: ExitOtherCluster},
		{name: "a hand-made backup: 3 with the way to adopt it", backups: map[string]func(*testing.T, string, string){
			"handmade": func(t *testing.T, dir, name string) {
				synth(sysid, older, nil)(t, dir, name)
				os.Remove(filepath.Join(dir, "s", name, MetaFile))
			}}, want: ExitNoBackup, msg: []string{"handmade: no pghook.json", "pghook backup import"}},
		{name: "an unreadable pghook.json: 3 naming the file and the field", backups: map[string]func(*testing.T, string, string){
			"b": func(t *testing.T, dir, name string) {
				synth(sysid, older, nil)(t, dir, name)
				writeMeta(t, filepath.Join(dir, "s", name), `{"id":"b","scope":"s","system_identifier":7712150698949318755,"created_at":"2026-01-01T00:00:00Z"}`)
			}}, want: ExitNoBackup, msg: []string{"pghook.json is unreadable", "field system_identifier"}},
		{name: "no backup and no leader: 3 before dialing", dial: errors.New("connection refused"), want: ExitNoBackup},
		{name: "a backup and no leader: 6", backups: map[string]func(*testing.T, string, string){"b": synth(sysid, older, nil)},
			dial: errors.New("dial tcp 10.0.0.1:5432: connect: connection refused"), want: ExitWALGone, msg: []string{"no leader"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range tc.backups {
				b(t, dir, name)
			}
			data := filepath.Join(t.TempDir(), "data")
			dialled := false
			res, err := Restore(context.Background(), RestoreOptions{Args: Args{Scope: "s", DataDir: data, ConnString: "host=x"}, BackupDir: dir,
				Dial: func(context.Context, string) (Leader, error) {
					dialled = true
					if tc.dial != nil {
						return nil, tc.dial
					}
					return &fakeLeader{sysid: sysid}, nil
				}, Log: zerolog.Nop()})
			t.Logf("exit %d: %v", CodeOf(err), err)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.want)
			}
			for _, m := range tc.msg {
				if err == nil || !strings.Contains(err.Error(), m) {
					t.Errorf("error %v does not say %q", err, m)
				}
			}
			if tc.want == ExitNoBackup && len(tc.backups) == 0 && dialled {
				t.Errorf("dialled the leader with no backup to restore")
			}
			if tc.restored != "" && res.Backup.ID != tc.restored {
				t.Fatalf("restored %q, want %q", res.Backup.ID, tc.restored)
			}
			if tc.want != 0 {
				if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("data directory left behind: %v", err)
				}
			}
		})
	}
}

func writeMeta(t *testing.T, bdir, js string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(bdir, MetaFile), []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreCancelledSaysWhy: a restore stopped by SIGTERM says so, not
// "context canceled", exits 1 and leaves nothing.
func TestRestoreCancelledSaysWhy(t *testing.T) {
	const sysid = 7712150698949318755
	dir := t.TempDir()
	newSynth(sysid).write(t, dir, "s", "b1")
	ctx, cancel := context.WithCancelCause(context.Background())
	data := filepath.Join(t.TempDir(), "data")
	_, err := Restore(ctx, RestoreOptions{Args: Args{Scope: "s", DataDir: data, ConnString: "host=x"}, BackupDir: dir,
		Dial: func(context.Context, string) (Leader, error) {
			cancel(errors.New("interrupted by SIGTERM"))
			return &fakeLeader{sysid: sysid}, nil
		}, Log: zerolog.Nop()})
	if CodeOf(err) != ExitFailure || !strings.Contains(err.Error(), "interrupted by SIGTERM") || strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("exit %d: %v", CodeOf(err), err)
	}
	if _, serr := os.Stat(data); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("data directory left: %v", serr)
	}
}
