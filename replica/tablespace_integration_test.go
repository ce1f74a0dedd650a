//go:build integration

package replica

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
)

// createTablespace makes pg.Dir/dir (as postgres) and creates tablespace
// name there; it returns the directory.
func createTablespace(t *testing.T, pg *testenv.Postgres, name, dir string) string {
	t.Helper()
	loc := filepath.Join(pg.Dir, dir)
	testenv.AsPostgres(t, "mkdir", "-m", "0700", loc)
	psql(t, pg, pg.Port, "CREATE TABLESPACE "+name+" LOCATION '"+loc+"'")
	return loc
}

// TestTablespaceIntegration: a PostgreSQL 15 primary with a tablespace
// holding a table → pghook backup → restore with a tablespace mapping (on
// this shared file system the primary's own directory is taken) → the
// restored server starts as a standby, streams and reads the table.
func TestTablespaceIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	tsOld := createTablespace(t, pg, "ts1", "ts1")
	psql(t, pg, pg.Port, "CREATE TABLE tst TABLESPACE ts1 AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g")
	createTablespace(t, pg, "ts_empty", "ts2") // holds no file
	backups := t.TempDir()

	// The backup keeps one archive per tablespace and names them in pghook.json.
	for _, comp := range []string{"zstd", "none"} {
		m := takeBackup(t, pg, backups, "ts-"+comp, comp)
		if len(m.Tablespaces) != 2 || len(m.Files) != 5 {
			t.Fatalf("%s: tablespaces %v files %v", comp, m.Tablespaces, m.Files)
		}
	}

	argsFor := func(scope, dataDir string, mapping ...string) Args {
		argv := []string{"--keep_data=False", "--scope=" + scope, "--role=replica", "--datadir=" + dataDir, "--connstring=" + connstr(pg)}
		for _, m := range mapping {
			argv = append([]string{"--tablespace_mapping=" + m}, argv...)
		}
		a, err := ParseArgs(argv)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	run := func(a Args) (Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return Restore(ctx, RestoreOptions{Args: a, BackupDir: backups, ProgressEvery: time.Second, Log: testLog(t)})
	}

	t.Run("restore with a mapping, start as a standby", func(t *testing.T) {
		parent := pgTempDir(t)
		dataDir := filepath.Join(parent, "data")
		ts1, ts2 := filepath.Join(parent, "ts1"), filepath.Join(parent, "other", "ts2")
		if _, err := run(argsFor("ts-zstd", dataDir, tsOld+"="+ts1+","+filepath.Join(pg.Dir, "ts2")+"="+ts2)); err != nil {
			t.Fatalf("restore: %v (exit %d)", err, CodeOf(err))
		}
		port := startStandby(t, pg, dataDir)
		psql(t, pg, pg.Port, "INSERT INTO tst VALUES (-1, 'after backup')")
		waitStreams(t, pg, port, "standby streams the new row of the tablespace table", "(SELECT h FROM tst WHERE g = -1)", "after backup")
		if n := psql(t, pg, port, "SELECT count(*) FROM tst WHERE g > 0"); n != "50000" {
			t.Fatalf("standby reads %s rows of the tablespace table", n)
		}
		if loc := psql(t, pg, port, "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'"); loc != ts1 {
			t.Fatalf("standby's ts1 is at %q, want %s", loc, ts1)
		}
		// The table's files are in the mapped directory, not the primary's.
		rel := psql(t, pg, port, "SELECT pg_relation_filepath('tst')")
		if _, err := os.Stat(filepath.Join(dataDir, rel)); err != nil {
			t.Fatal(err)
		}
		if real, _ := filepath.EvalSymlinks(filepath.Join(dataDir, rel)); !strings.HasPrefix(real, ts1+"/") {
			t.Fatalf("%s resolves to %s, not under %s", rel, real, ts1)
		}
	})

	failures := []struct {
		name    string
		scope   string
		prepare func(t *testing.T, parent string) // before the restore
		mapping func(parent string) []string
		want    ExitCode
	}{
		{name: "no mapping: the primary's directory is not empty", scope: "ts-none", want: ExitNotEmpty,
			mapping: func(parent string) []string { return nil }},
		{name: "mapping target not empty", scope: "ts-none", want: ExitNotEmpty,
			prepare: func(t *testing.T, parent string) {
				os.MkdirAll(filepath.Join(parent, "ts1", "PG_15_202209061"), 0o700)
			},
			mapping: func(parent string) []string {
				return []string{tsOld + "=" + filepath.Join(parent, "ts1"), filepath.Join(pg.Dir, "ts2") + "=" + filepath.Join(parent, "ts2")}
			}},
		{name: "corrupt tablespace archive: created directories removed", scope: "ts-flipped", want: ExitVerify,
			mapping: func(parent string) []string {
				return []string{tsOld + "=" + filepath.Join(parent, "new", "ts1"), filepath.Join(pg.Dir, "ts2") + "=" + filepath.Join(parent, "ts2")}
			}},
	}
	src := mustNewest(t, backups, "ts-none")
	dst := filepath.Join(backups, "ts-flipped", src.ID)
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if out, err := exec.Command("cp", "-a", src.Dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	var tsTar string
	for _, f := range src.Files {
		if oid, ok := tablespaceArchiveOID(f); ok && src.Tablespaces[0].OID == oid && src.Tablespaces[0].Path == tsOld {
			tsTar = f
		}
	}
	if tsTar == "" {
		t.Fatalf("no archive of %s in %v", tsOld, src)
	}
	rel := psql(t, pg, pg.Port, "SELECT pg_relation_filepath('tst')") // pg_tblspc/OID/PG_15_…/DB/REL
	flipInTar(t, filepath.Join(dst, tsTar), strings.SplitN(rel, "/", 3)[2])

	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			parent := pgTempDir(t)
			if tc.prepare != nil {
				tc.prepare(t, parent)
			}
			beforeParent, beforePrimary := listTree(t, parent), listTree(t, tsOld)
			_, err := run(argsFor(tc.scope, filepath.Join(parent, "data"), tc.mapping(parent)...))
			t.Logf("exit %d: %v", CodeOf(err), err)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.want)
			}
			if after := listTree(t, parent); after != beforeParent {
				t.Fatalf("left behind:\nbefore\n%s\nafter\n%s", beforeParent, after)
			}
			if after := listTree(t, tsOld); after != beforePrimary {
				t.Fatal("the primary's tablespace directory changed")
			}
		})
	}
}
