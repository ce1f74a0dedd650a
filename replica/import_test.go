package replica

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestImport(t *testing.T) {
	const sysid = 7712150698949318755
	handmade := func(t *testing.T, change func(*synthBackup)) string {
		s := newSynth(sysid)
		if change != nil {
			change(s)
		}
		src := t.TempDir()
		bdir := s.write(t, src, "x", "hand")
		os.Remove(filepath.Join(bdir, MetaFile))
		return bdir
	}
	tests := []struct {
		name   string
		change func(*synthBackup)
		prep   func(t *testing.T, src, root string)
		move   bool
		sysid  uint64
		want   ExitCode
		msg    string
	}{
		{name: "copy"},
		{name: "move", move: true},
		{name: "flipped WAL byte", change: func(s *synthBackup) { s.wal = func(seg []byte) { seg[0x28+24+10] ^= 0x20 } }, want: ExitVerify, msg: "CRC32C"},
		{name: "no manifest", prep: func(t *testing.T, src, _ string) { os.Remove(filepath.Join(src, "backup_manifest")) }, want: ExitVerify, msg: "no backup_manifest"},
		{name: "other cluster than told", sysid: 5, want: ExitOtherCluster},
		{name: "other cluster than the scope's backups", prep: func(t *testing.T, _, root string) {
			newSynth(6).write(t, root, "s", "theirs")
		}, want: ExitOtherCluster, msg: "theirs"},
		{name: "already a pghook backup", prep: func(t *testing.T, src, _ string) { writeMeta(t, src, "{}") }, want: ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := handmade(t, tc.change)
			root := t.TempDir()
			if tc.prep != nil {
				tc.prep(t, src, root)
			}
			m, err := Import(context.Background(), ImportOptions{Dir: root, Scope: "s", Source: src, Move: tc.move, SystemID: tc.sysid, Log: zerolog.Nop()})
			t.Logf("exit %d: %v", CodeOf(err), err)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.want)
			}
			if tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("error %v does not say %q", err, tc.msg)
			}
			if tc.want != 0 {
				if ents, _ := os.ReadDir(filepath.Join(root, "s")); len(ents) > 2 { // the lock, and a backup the test made
					t.Fatalf("left in the scope directory: %v", ents)
				}
				return
			}
			if _, err := os.Stat(src); tc.move != os.IsNotExist(err) {
				t.Fatalf("source after import (move %v): %v", tc.move, err)
			}
			all, err := List(root, "s")
			if err != nil || len(all) != 1 || all[0].ID != m.ID || all[0].SystemID != sysid || all[0].Compression != "none" || len(all[0].Files) != 3 {
				t.Fatalf("published: %+v %v", all, err)
			}
			res, err := Restore(context.Background(), RestoreOptions{Args: Args{Scope: "s", DataDir: filepath.Join(t.TempDir(), "d"), ConnString: "host=x"}, BackupDir: root,
				Dial: func(context.Context, string) (Leader, error) { return &fakeLeader{sysid: sysid}, nil }, Log: zerolog.Nop()})
			if err != nil || res.Backup.ID != m.ID {
				t.Fatalf("restoring the imported backup: %v", err)
			}
		})
	}
}
