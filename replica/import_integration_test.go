//go:build integration

package replica

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
)

// handMade runs the seed's procedure: pg_basebackup -F t -X stream -c fast
// (with -Z compress when not empty) into a new directory, as postgres.
func handMade(t *testing.T, pg *testenv.Postgres, compress string) string {
	t.Helper()
	dir := filepath.Join(pgTempDir(t), "backup")
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-D", dir, "-F", "t", "-X", "stream", "-c", "fast"}
	if compress != "" {
		args = append(args, "-Z", compress)
	}
	testenv.AsPostgres(t, pg.BinDir+"/pg_basebackup", args...)
	return dir
}

// flipWALRecord flips a byte of the header of the WAL record at the
// backup's start LSN (covered by its CRC32C) in an uncompressed pg_wal.tar.
func flipWALRecord(t *testing.T, bdir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bdir, "backup_manifest"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	tli, start := m.Start()
	const seg = 16 << 20
	name := SegmentName(tli, start, seg)
	at := func(int64) int64 { return int64(uint64(start)%seg) + 16 } // xl_info
	flipInTarAt(t, filepath.Join(bdir, "pg_wal.tar"), name, at, 0x01)
}

// TestImportIntegration: the seed's hand-made backups (each compression,
// with a tablespace) are imported, restored and stream; a flipped WAL byte
// is refused by import, verify and create-replica (4); a corrupt newest
// backup gives way to an older good one.
func TestImportIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	tsOld := createTablespace(t, pg, "ts1", "ts1")
	psql(t, pg, pg.Port, "CREATE TABLE tst TABLESPACE ts1 AS SELECT g, md5(g::text) AS h FROM generate_series(1, 30000) g")
	psql(t, pg, pg.Port, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
	// Each backup's checkpoint may recycle the WAL an older backup needs.
	psql(t, pg, pg.Port, "ALTER SYSTEM SET wal_keep_size = '2GB'")
	psql(t, pg, pg.Port, "SELECT pg_reload_conf()")
	backups := t.TempDir()
	ctx := context.Background()

	restoreInto := func(t *testing.T, scope string) (Result, string, error) {
		parent := pgTempDir(t)
		dataDir := filepath.Join(parent, "data")
		a, err := ParseArgs([]string{"--scope=" + scope, "--role=replica", "--datadir=" + dataDir, "--connstring=" + connstr(pg),
			"--tablespace_mapping=" + tsOld + "=" + filepath.Join(parent, "ts1")})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		res, err := Restore(rctx, RestoreOptions{Args: a, BackupDir: backups, Log: testLog(t)})
		return res, dataDir, err
	}

	for _, tc := range []struct{ name, compress, want string }{
		{"none", "", "none"}, {"gzip", "client-gzip", "gzip"}, {"lz4", "client-lz4", "lz4"}, {"zstd", "client-zstd", "zstd"}, {"server-zstd", "server-zstd", "zstd"},
	} {
		t.Run("import "+tc.name+" then restore and stream", func(t *testing.T) {
			src := handMade(t, pg, tc.compress)
			scope := "imp-" + tc.name
			// Before import, create-replica says why there is nothing to restore.
			if _, _, err := restoreInto(t, scope); err == nil {
				t.Fatal("restored before import")
			}
			os.MkdirAll(filepath.Join(backups, scope), 0o755)
			hidden := filepath.Join(backups, scope, "by-hand")
			if out, err := exec.Command("cp", "-a", src, hidden).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			_, _, err := restoreInto(t, scope)
			if CodeOf(err) != ExitNoBackup || !strings.Contains(err.Error(), "pghook backup import") {
				t.Fatalf("a hand-made backup in the scope directory: exit %d %v, want 3 with the way to import it", CodeOf(err), err)
			}
			os.RemoveAll(hidden)

			m, err := Import(ctx, ImportOptions{Dir: backups, Scope: scope, Source: src, Log: testLog(t)})
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			if m.Compression != tc.want || len(m.Tablespaces) != 1 || len(m.Files) != 4 || m.PGVersion != 15 {
				t.Fatalf("imported %+v", m)
			}
			v, err := VerifyBackup(ctx, m.Dir, nil, testLog(t))
			if err != nil || v.WALRecords == 0 {
				t.Fatalf("verify the imported backup: %d records, %v", v.WALRecords, err)
			}
			res, dataDir, err := restoreInto(t, scope)
			if err != nil || res.Backup.ID != m.ID {
				t.Fatalf("restore: %v", err)
			}
			port := startStandby(t, pg, dataDir)
			waitStreams(t, pg, port, "imported "+tc.name, "(SELECT count(*) FROM tst)", "30000")
		})
	}

	t.Run("a flipped WAL byte: import, verify and create-replica refuse with 4", func(t *testing.T) {
		src := handMade(t, pg, "")
		good, err := Import(ctx, ImportOptions{Dir: backups, Scope: "flip", Source: src, Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		bad := handMade(t, pg, "")
		flipWALRecord(t, bad)
		if _, err := Import(ctx, ImportOptions{Dir: backups, Scope: "flip2", Source: bad, Log: testLog(t)}); CodeOf(err) != ExitVerify || !strings.Contains(err.Error(), "CRC32C") {
			t.Fatalf("import: exit %d %v, want 4 (CRC32C)", CodeOf(err), err)
		}
		flipWALRecord(t, good.Dir)
		if _, err := VerifyBackup(ctx, good.Dir, nil, testLog(t)); CodeOf(err) != ExitVerify {
			t.Fatalf("verify: exit %d %v, want 4", CodeOf(err), err)
		}
		_, dataDir, err := restoreInto(t, "flip")
		if CodeOf(err) != ExitVerify || !strings.Contains(err.Error(), "WAL record") {
			t.Fatalf("create-replica: exit %d %v, want 4", CodeOf(err), err)
		}
		if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
			t.Fatalf("data directory left: %v", err)
		}
	})

	t.Run("newest corrupt, older good: restored from the older, streams", func(t *testing.T) {
		older, err := Import(ctx, ImportOptions{Dir: backups, Scope: "fallback", Source: handMade(t, pg, "client-lz4"), Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // a later START TIME
		newer, err := Import(ctx, ImportOptions{Dir: backups, Scope: "fallback", Source: handMade(t, pg, ""), Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		flipWALRecord(t, newer.Dir)
		res, dataDir, err := restoreInto(t, "fallback")
		if err != nil || res.Backup.ID != older.ID {
			t.Fatalf("restored %q (%v), want the older %q", res.Backup.ID, err, older.ID)
		}
		port := startStandby(t, pg, dataDir)
		waitStreams(t, pg, port, "fallback", "(SELECT count(*) FROM t)", "1000")
	})
}

// TestBackupFromReplicaIntegration: a backup taken on a streaming replica
// (BACKUP FROM: standby, no WAL switch at its end) is verified, WAL records
// included, and restores a replica of the primary that streams.
func TestBackupFromReplicaIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	psql(t, pg, pg.Port, "ALTER SYSTEM SET wal_keep_size = '1GB'")
	psql(t, pg, pg.Port, "SELECT pg_reload_conf()")
	psql(t, pg, pg.Port, "CREATE TABLE rep AS SELECT g FROM generate_series(1, 2000) g")
	backups := t.TempDir()
	takeBackup(t, pg, backups, "seed", "lz4")
	seedDir := filepath.Join(pgTempDir(t), "data")
	if _, err := restore(t, pg, backups, "seed", seedDir, false); err != nil {
		t.Fatal(err)
	}
	replicaPort := startStandby(t, pg, seedDir)
	waitStreams(t, pg, replicaPort, "the replica", "(SELECT count(*) FROM rep)", "2000")
	// A restartpoint on the replica, so that its backup starts at a recent redo point.
	psql(t, pg, pg.Port, "CHECKPOINT")
	psql(t, pg, pg.Port, "INSERT INTO rep VALUES (-1)")
	waitStreams(t, pg, replicaPort, "the replica replays", "(SELECT count(*) FROM rep)", "2001")

	onReplica := *pg
	onReplica.Port = replicaPort
	m := takeBackup(t, &onReplica, backups, "fromreplica", "zstd")
	if !m.FromStandby {
		t.Fatalf("backup from the replica not marked as such: %+v", m)
	}
	v, err := VerifyBackup(context.Background(), m.Dir, nil, testLog(t))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	t.Logf("backup from the replica: %s..%s, %d WAL records", m.StartLSN, m.EndLSN, v.WALRecords)
	psql(t, pg, pg.Port, "INSERT INTO rep VALUES (-2)")
	dataDir := filepath.Join(pgTempDir(t), "data")
	if _, err := restore(t, pg, backups, "fromreplica", dataDir, false); err != nil {
		t.Fatalf("restore: %v", err)
	}
	port := startStandby(t, pg, dataDir)
	waitStreams(t, pg, port, "restored from the replica's backup", "(SELECT count(*) FROM rep)", "2002")
}

// TestRestoreAsRootIntegration: create-replica run as root writes files
// owned by the data directory's parent's owner (postgres), which then
// starts without any chown; a root-owned parent is refused with 2 and
// nothing written. Root's setuid is for the whole process, so each run is
// a child process of the test binary.
func TestRestoreAsRootIntegration(t *testing.T) {
	if os.Getenv("PGHOOK_IT_ROOT_RESTORE") != "" {
		rootRestoreChild()
		return
	}
	pg := testenv.StartPostgres(t)
	psql(t, pg, pg.Port, "CREATE TABLE r AS SELECT g FROM generate_series(1, 500) g")
	backups := pgTempDir(t)
	takeBackup(t, pg, backups, "root", "zstd")
	exec.Command("chown", "-R", "postgres:postgres", backups).Run()

	run := func(dataDir string) (int, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreAsRootIntegration$")
		cmd.Env = append(os.Environ(), "PGHOOK_IT_ROOT_RESTORE=1", "IT_BACKUPS="+backups, "IT_DATADIR="+dataDir, "IT_CONNSTR="+connstr(pg))
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}

	t.Run("postgres-owned parent: files are postgres's, the standby starts", func(t *testing.T) {
		dataDir := filepath.Join(pgTempDir(t), "data")
		if code, out := run(dataDir); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		filepath.Walk(dataDir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Sys().(*syscall.Stat_t).Uid == 0 {
				t.Errorf("%s is owned by root", p)
			}
			return nil
		})
		port := startStandbyAsIs(t, pg, dataDir)
		waitStreams(t, pg, port, "restored as root", "(SELECT count(*) FROM r)", "500")
	})
	t.Run("root-owned parent: 2, nothing written", func(t *testing.T) {
		parent := t.TempDir()
		dataDir := filepath.Join(parent, "data")
		code, out := run(dataDir)
		if code != int(ExitUsage) || !strings.Contains(out, "runuser -u postgres") {
			t.Fatalf("exit %d, want 2 saying how to run it: %s", code, out)
		}
		if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
			t.Fatalf("data directory written: %v", err)
		}
	})
}

// rootRestoreChild is the child of TestRestoreAsRootIntegration: a
// create-replica as cmd/pghook wires it (BecomeDataOwner before writing).
func rootRestoreChild() {
	dataDir := os.Getenv("IT_DATADIR")
	a, err := ParseArgs([]string{"--scope=root", "--role=replica", "--datadir=" + dataDir, "--connstring=" + os.Getenv("IT_CONNSTR")})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err = Restore(ctx, RestoreOptions{Args: a, BackupDir: os.Getenv("IT_BACKUPS"),
			BeforeWrite: func() error { _, err := BecomeDataOwner(dataDir); return err }})
	}
	if err != nil {
		fmt.Println(err)
	}
	os.Exit(int(CodeOf(err)))
}

// startStandbyAsIs is startStandby without its chown: the restore's own
// ownership must do.
func startStandbyAsIs(t *testing.T, pg *testenv.Postgres, dataDir string) int {
	t.Helper()
	testenv.AsPostgres(t, "touch", filepath.Join(dataDir, "standby.signal"))
	return launchStandby(t, pg, dataDir)
}
