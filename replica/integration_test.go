//go:build integration

package replica

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
	"github.com/rs/zerolog"
)

func psql(t *testing.T, pg *testenv.Postgres, port int, sql string) string {
	t.Helper()
	return strings.TrimSpace(testenv.AsPostgres(t, pg.BinDir+"/psql", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
		"-U", "postgres", "-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql))
}

func connstr(pg *testenv.Postgres) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres", pg.Port)
}

type logBuf struct{ bytes.Buffer }

func testLog(t *testing.T) zerolog.Logger {
	var b logBuf
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(b.String())
		}
	})
	return zerolog.New(&b)
}

func takeBackup(t *testing.T, pg *testenv.Postgres, dir, scope, comp string) Meta {
	t.Helper()
	m, err := Backup(context.Background(), BackupOptions{Dir: dir, Scope: scope, Host: "127.0.0.1", Port: pg.Port,
		User: "postgres", Compression: comp, PgBaseBackup: pg.BinDir + "/pg_basebackup", Log: testLog(t)})
	if err != nil {
		t.Fatalf("backup %s: %v", comp, err)
	}
	return m
}

func restore(t *testing.T, pg *testenv.Postgres, dir, scope, dataDir string, keep bool) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return Restore(ctx, RestoreOptions{Args: Args{Scope: scope, DataDir: dataDir, Role: "replica", ConnString: connstr(pg), KeepData: keep},
		BackupDir: dir, ProgressEvery: time.Second, Log: testLog(t)})
}

// startStandby starts PostgreSQL on a restored data directory as a
// standby of pg, the way Patroni would after create_replica exits 0.
func startStandby(t *testing.T, pg *testenv.Postgres, dataDir string) int {
	t.Helper()
	if out, err := exec.Command("chown", "-R", "postgres:postgres", filepath.Dir(dataDir)).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "standby.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	exec.Command("chown", "postgres:postgres", filepath.Join(dataDir, "standby.signal")).Run()
	return launchStandby(t, pg, dataDir)
}

// launchStandby starts PostgreSQL (as postgres) on dataDir, which holds
// its standby.signal, streaming from pg; it is stopped when the test
// ends. It returns the port.
func launchStandby(t *testing.T, pg *testenv.Postgres, dataDir string) int {
	t.Helper()
	port := testenv.FreePort(t)
	sock := filepath.Dir(dataDir)
	testenv.AsPostgres(t, pg.BinDir+"/pg_ctl", "-D", dataDir, "-l", filepath.Join(sock, "standby.log"), "-w", "-t", "30", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c primary_conninfo='%s'", port, sock, connstr(pg)), "start")
	t.Cleanup(func() {
		exec.Command("runuser", "-u", "postgres", "--", pg.BinDir+"/pg_ctl", "-D", dataDir, "-m", "immediate", "-w", "stop").Run()
	})
	return port
}

// waitStreams waits until the standby on port is in recovery, streaming,
// and sel (a scalar subquery on it) returns want: the proof that a restored
// data directory works.
func waitStreams(t *testing.T, pg *testenv.Postgres, port int, what, sel, want string) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, what, func() error {
		out, err := exec.Command("runuser", "-u", "postgres", "--", pg.BinDir+"/psql", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
			"-U", "postgres", "-XAtqc", "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver), "+sel).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != "t|streaming|"+want {
			return fmt.Errorf("%v: %q", err, got)
		}
		return nil
	})
}

func pgTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "pghook-replica-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	exec.Command("chown", "postgres:postgres", d).Run()
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestBackupRestoreIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	psql(t, pg, pg.Port, "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g")
	sysid := psql(t, pg, pg.Port, "SELECT system_identifier FROM pg_control_system()")
	backups := t.TempDir()

	for _, comp := range Compressions {
		t.Run("restore-"+comp, func(t *testing.T) {
			m := takeBackup(t, pg, backups, "main-"+comp, comp)
			if fmt.Sprint(m.SystemID) != sysid || m.PGVersion != 15 || m.Compression != comp {
				t.Fatalf("meta %+v, want sysid %s pg 15 %s", m, sysid, comp)
			}
			if exists(m.Dir+partialSuffix) || !exists(filepath.Join(m.Dir, MetaFile)) {
				t.Fatal("backup not published atomically")
			}
			dataDir := filepath.Join(pgTempDir(t), "data")
			res, err := restore(t, pg, backups, "main-"+comp, dataDir, false)
			if err != nil {
				t.Fatalf("restore: %v (exit %d)", err, CodeOf(err))
			}
			if res.Adopted || fmt.Sprint(res.SystemID) != sysid {
				t.Fatalf("result %+v", res)
			}
			fi, err := os.Stat(dataDir)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("data dir mode: %v %v", fi.Mode(), err)
			}
			if comp != "zstd" && comp != "gzip" {
				return
			}
			// The proof: PostgreSQL starts on it as a standby and streams.
			port := startStandby(t, pg, dataDir)
			psql(t, pg, pg.Port, "INSERT INTO t VALUES (-1, 'after backup "+comp+"')")
			waitStreams(t, pg, port, "standby streams the new row", "(SELECT h FROM t WHERE g = -1 AND h LIKE '%"+comp+"')", "after backup "+comp)
			if n := psql(t, pg, port, "SELECT count(*) FROM t WHERE g > 0"); n != "200000" {
				t.Fatalf("standby has %s rows", n)
			}
		})
	}

	t.Run("keep_data adopts, without keep_data refuses", func(t *testing.T) {
		takeBackup(t, pg, backups, "keep", "lz4")
		dataDir := filepath.Join(pgTempDir(t), "data")
		if _, err := restore(t, pg, backups, "keep", dataDir, false); err != nil {
			t.Fatal(err)
		}
		before := listTree(t, dataDir)
		res, err := restore(t, pg, backups, "keep", dataDir, true)
		if err != nil || !res.Adopted {
			t.Fatalf("keep_data: %+v %v", res, err)
		}
		_, err = restore(t, pg, backups, "keep", dataDir, false)
		if CodeOf(err) != ExitNotEmpty {
			t.Fatalf("without keep_data: exit %d (%v), want %d", CodeOf(err), err, ExitNotEmpty)
		}
		if after := listTree(t, dataDir); after != before {
			t.Fatal("data directory changed")
		}
	})

	other := testenv.StartPostgres(t)
	takeBackup(t, other, backups, "foreign", "lz4")

	// Corrupt copies of the uncompressed backup.
	src := mustNewest(t, backups, "main-none")
	corrupt := func(scope string, f func(dir string)) {
		dst := filepath.Join(backups, scope, src.ID)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if out, err := exec.Command("cp", "-a", src.Dir, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		f(dst)
	}
	corrupt("flipped", func(dir string) { flipInTar(t, filepath.Join(dir, "base.tar"), "global/1262") })
	corrupt("badmanifest", func(dir string) {
		p := filepath.Join(dir, "backup_manifest")
		b, _ := os.ReadFile(p)
		b = bytes.Replace(b, []byte(`"Size": 3,`), []byte(`"Size": 4,`), 1)
		os.WriteFile(p, b, 0o600)
	})
	corrupt("truncated", func(dir string) {
		p := filepath.Join(dir, "base.tar")
		fi, _ := os.Stat(p)
		os.Truncate(p, fi.Size()/2)
	})

	refusals := []struct {
		name, scope string
		want        ExitCode
		preexisting bool // data dir exists (empty but for lost+found)
	}{
		{"no backup", "nothing", ExitNoBackup, false},
		{"other cluster", "foreign", ExitOtherCluster, true},
		{"flipped byte", "flipped", ExitVerify, true},
		{"flipped byte, no data dir", "flipped", ExitVerify, false},
		{"manifest edited", "badmanifest", ExitVerify, false},
		{"truncated archive", "truncated", ExitVerify, true},
	}
	for _, tc := range refusals {
		t.Run("refuse "+tc.name, func(t *testing.T) {
			dataDir := filepath.Join(pgTempDir(t), "sub", "data")
			if tc.preexisting {
				os.MkdirAll(filepath.Join(dataDir, "lost+found"), 0o755)
				os.WriteFile(filepath.Join(dataDir, ".keep"), []byte("x"), 0o644)
			}
			before := listTree(t, filepath.Dir(filepath.Dir(dataDir)))
			_, err := restore(t, pg, backups, tc.scope, dataDir, false)
			t.Logf("exit %d: %v", CodeOf(err), err)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.want)
			}
			if after := listTree(t, filepath.Dir(filepath.Dir(dataDir))); after != before {
				t.Fatalf("data directory not left as found:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}

	// A gzip backup whose trailer CRC-32 was altered: the tar inside is
	// intact, only the decompressor (igzip when installed) can tell. Its
	// own backup, after the copies above have been used (it moves the WAL).
	t.Run("refuse gzip trailer CRC", func(t *testing.T) {
		bad := takeBackup(t, pg, backups, "gzipcrc", "gzip").Dir
		b, err := os.ReadFile(filepath.Join(bad, "base.tar.gz"))
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-8] ^= 0x01
		if err := os.WriteFile(filepath.Join(bad, "base.tar.gz"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		dataDir := filepath.Join(pgTempDir(t), "data")
		_, err = restore(t, pg, backups, "gzipcrc", dataDir, false)
		t.Logf("exit %d: %v", CodeOf(err), err)
		if CodeOf(err) != ExitVerify {
			t.Fatalf("exit %d (%v), want %d", CodeOf(err), err, ExitVerify)
		}
		if exists(dataDir) {
			t.Fatal("data directory left behind")
		}
	})

	// Last, as it recycles the primary's WAL: the backup's WAL is gone.
	t.Run("refuse WAL gone", func(t *testing.T) {
		takeBackup(t, pg, backups, "old", "lz4")
		for i := 0; i < 6; i++ {
			psql(t, pg, pg.Port, "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g; SELECT pg_switch_wal(); CHECKPOINT")
		}
		dataDir := filepath.Join(pgTempDir(t), "data")
		_, err := restore(t, pg, backups, "old", dataDir, false)
		if CodeOf(err) != ExitWALGone || !errors.Is(err, ErrWALGone) {
			t.Fatalf("exit %d (%v), want %d", CodeOf(err), err, ExitWALGone)
		}
		if exists(dataDir) {
			t.Fatal("data directory created")
		}
	})

	t.Run("keep_data: an interrupted restore is restored again, not adopted, and streams", func(t *testing.T) {
		// Its own backup, after the refusals above (it moves the WAL on).
		takeBackup(t, pg, backups, "interrupted", "gzip")
		dataDir := filepath.Join(pgTempDir(t), "data")
		if _, err := restore(t, pg, backups, "interrupted", dataDir, false); err != nil {
			t.Fatal(err)
		}
		// What a restore killed after base.tar leaves: pg_control and
		// backup_label complete, the WAL and a relation file not, the marker.
		if err := os.WriteFile(filepath.Join(dataDir, restoringMarker), []byte(markerHeader), 0o600); err != nil {
			t.Fatal(err)
		}
		wal, _ := filepath.Glob(filepath.Join(dataDir, "pg_wal", "0000*"))
		rel, _ := filepath.Glob(filepath.Join(dataDir, "base", "*", "1259"))
		for _, f := range append(wal, rel...) {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if why := adoptable(dataDir, mustNewest(t, backups, "interrupted").SystemID); why != "" {
			t.Fatalf("the interrupted copy does not look adoptable (%s): the test proves nothing", why)
		}
		res, err := restore(t, pg, backups, "interrupted", dataDir, true)
		if err != nil || res.Adopted {
			t.Fatalf("keep_data on an interrupted restore: %+v %v (exit %d), want restored again", res, err, CodeOf(err))
		}
		if exists(filepath.Join(dataDir, restoringMarker)) {
			t.Fatal("marker left after the restore")
		}
		port := startStandby(t, pg, dataDir)
		psql(t, pg, pg.Port, "INSERT INTO t VALUES (-2, 'after the interrupted restore')")
		waitStreams(t, pg, port, "standby streams the new row", "(SELECT h FROM t WHERE g = -2)", "after the interrupted restore")
	})

	t.Run("keep_data: a diverged former primary is replaced by the backup and streams", func(t *testing.T) {
		takeBackup(t, pg, backups, "diverged", "lz4")
		dataDir := filepath.Join(pgTempDir(t), "data")
		if _, err := restore(t, pg, backups, "diverged", dataDir, false); err != nil {
			t.Fatal(err)
		}
		// Start it, promote it, write on it and stop it: a former primary
		// whose history left the leader's.
		port := startStandby(t, pg, dataDir)
		testenv.AsPostgres(t, pg.BinDir+"/pg_ctl", "-D", dataDir, "-w", "promote")
		psql(t, pg, port, "INSERT INTO t VALUES (-3, 'written on the former primary')")
		testenv.AsPostgres(t, pg.BinDir+"/pg_ctl", "-D", dataDir, "-m", "fast", "-w", "stop")
		if why := adoptable(dataDir, mustNewest(t, backups, "diverged").SystemID); why == "" {
			t.Fatal("a promoted copy looks adoptable: the test proves nothing")
		}
		res, err := restore(t, pg, backups, "diverged", dataDir, true)
		if err != nil || res.Adopted {
			t.Fatalf("keep_data on a former primary: %+v %v (exit %d), want replaced", res, err, CodeOf(err))
		}
		port = startStandby(t, pg, dataDir)
		psql(t, pg, pg.Port, "INSERT INTO t VALUES (-4, 'after the replacement')")
		waitStreams(t, pg, port, "the replaced copy streams, without the diverged row", "(SELECT count(*) FROM t WHERE g = -3), (SELECT h FROM t WHERE g = -4)", "0|after the replacement")
	})
}

func mustNewest(t *testing.T, dir, scope string) Meta {
	all, err := List(dir, scope)
	if err != nil || len(all) == 0 {
		t.Fatalf("list %s: %v %v", scope, all, err)
	}
	return all[0]
}

// flipInTar flips one byte in the middle of entry name of a plain tar.
func flipInTar(t *testing.T, tarPath, name string) {
	flipInTarAt(t, tarPath, name, func(size int64) int64 { return size / 2 }, 0x5a)
}

// flipInTarAt xors the byte at at(entry size) of entry name of a plain tar
// with mask.
func flipInTarAt(t *testing.T, tarPath, name string, at func(size int64) int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(tarPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := &countReader{r: f}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not found in %s: %v", name, tarPath, err)
		}
		if cleanName(h.Name) == name {
			off := cr.n + at(h.Size)
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, off); err != nil {
				t.Fatal(err)
			}
			b[0] ^= mask
			if _, err := f.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// listTree describes every path under root with its mode.
func listTree(t *testing.T, root string) string {
	var b strings.Builder
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		fmt.Fprintf(&b, "%s %v %d\n", p, fi.Mode(), fi.Size())
		return nil
	})
	return b.String()
}
