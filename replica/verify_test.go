package replica

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestVerifyBackup(t *testing.T) {
	const sysid = 7712150698949318755
	tests := []struct {
		name   string
		change func(*synthBackup)
		after  func(t *testing.T, bdir string)
		want   ExitCode
		msg    string
	}{
		{name: "good"},
		{name: "flipped WAL record byte", change: func(s *synthBackup) { s.wal = func(seg []byte) { seg[0x28+24+40] ^= 1 } }, want: ExitVerify, msg: "CRC32C"},
		{name: "WAL ends before the backup does", change: func(s *synthBackup) {
			s.wal = func(seg []byte) { clear(seg[0x28+72+72:]) } // the third record gone
		}, want: ExitVerify, msg: "invalid length 0"},
		{name: "flipped data file", change: func(s *synthBackup) { s.base[4].body = []byte(strings.Repeat("y", 8192)) }, want: ExitVerify, msg: "checksum"},
		{name: "pghook.json of another system", after: func(t *testing.T, bdir string) {
			writeMeta(t, bdir, fmt.Sprintf(`{"id":"b","scope":"s","system_identifier":"%d","created_at":"2026-01-01T00:00:00Z"}`, sysid+1))
		}, want: ExitVerify, msg: "says system"},
		{name: "a file pghook.json lists is missing", after: func(t *testing.T, bdir string) {
			writeMeta(t, bdir, fmt.Sprintf(`{"id":"b","scope":"s","system_identifier":"%d","created_at":"2026-01-01T00:00:00Z","files":["base.tar","pg_wal.tar","backup_manifest","16407.tar.zst"]}`, sysid))
		}, want: ExitVerify, msg: "lists 16407.tar.zst, which is missing"},
		{name: "no pg_wal.tar", after: func(t *testing.T, bdir string) { os.Remove(filepath.Join(bdir, "pg_wal.tar")) }, want: ExitVerify, msg: "no pg_wal.tar (nor .tar.gz)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSynth(sysid)
			if tc.change != nil {
				tc.change(s)
			}
			bdir := s.write(t, t.TempDir(), "s", "b")
			if tc.after != nil {
				tc.after(t, bdir)
			}
			res, err := VerifyBackup(context.Background(), bdir, nil, zerolog.Nop())
			t.Logf("exit %d: %v", CodeOf(err), err)
			if CodeOf(err) != tc.want || (tc.msg != "" && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("exit %d (%v), want %d with %q", CodeOf(err), err, tc.want, tc.msg)
			}
			if tc.want == 0 && (res.WALRecords != 3 || res.Backup.SystemID != sysid) {
				t.Fatalf("verified %d records of system %d", res.WALRecords, res.Backup.SystemID)
			}
		})
	}
}
