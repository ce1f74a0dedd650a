//go:build integration

package postinit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pghook/pghook/internal/testenv"
	"github.com/rs/zerolog"
)

func TestRunAgainstRealServer(t *testing.T) {
	pg := testenv.StartPostgres(t)
	dsn := fmt.Sprintf("dbname=postgres user=postgres host=%s port=%d", pg.SocketDir, pg.Port)
	sqlDir := t.TempDir()
	os.WriteFile(filepath.Join(sqlDir, "01_schema.sql"), []byte("CREATE TABLE app_t (id int); INSERT INTO app_t VALUES (1);"), 0o644)
	os.WriteFile(filepath.Join(sqlDir, "02_more.sql"), []byte("INSERT INTO app_t VALUES (2);"), 0o644)
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("s3cr'et\n"), 0o600)
	plan := Plan{
		RewindUser: "rewind_user",
		Roles: []Role{
			{Name: "app", Login: true, Options: []string{"CREATEDB", "CONNECTION LIMIT 5"}, PasswordFile: pwFile},
			{Name: "readers"},
			{Name: "bob", Login: true, InRoles: []string{"readers"}},
		},
		Databases: []Database{{Name: "appdb", Owner: "app"}},
		SQLDir:    sqlDir,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for run := 1; run <= 2; run++ { // idempotent: the second run converges, changes nothing
		if err := Run(ctx, dsn, plan, zerolog.Nop()); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, fn := range RewindFunctions {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT has_function_privilege('rewind_user', $1, 'EXECUTE')", fn).Scan(&ok); err != nil || !ok {
			t.Fatalf("rewind_user lacks EXECUTE on %s (%v)", fn, err)
		}
	}
	var createdb, hasPw bool
	var connlimit int
	conn.QueryRow(ctx, "SELECT rolcreatedb, rolconnlimit, rolpassword IS NOT NULL FROM pg_authid WHERE rolname='app'").Scan(&createdb, &connlimit, &hasPw)
	if !createdb || connlimit != 5 || !hasPw {
		t.Fatalf("role app: createdb %v connlimit %d password %v", createdb, connlimit, hasPw)
	}
	var member, owner bool
	conn.QueryRow(ctx, "SELECT pg_has_role('bob', 'readers', 'MEMBER')").Scan(&member)
	conn.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) = 'app' FROM pg_database WHERE datname='appdb'").Scan(&owner)
	if !member || !owner {
		t.Fatalf("membership %v owner %v", member, owner)
	}
	var rows int
	conn.QueryRow(ctx, "SELECT count(*) FROM app_t").Scan(&rows)
	if rows != 2 {
		t.Fatalf("SQL files applied %d rows, want 2 (each file once)", rows)
	}

	// A failing file: named in the error, rolled back, recorded nowhere;
	// fixing it and re-running applies it.
	bad := filepath.Join(sqlDir, "03_bad.sql")
	os.WriteFile(bad, []byte("CREATE TABLE half_done (id int); SELECT 1/0;"), 0o644)
	err = Run(ctx, dsn, plan, zerolog.Nop())
	var se *StepError
	if !errors.As(err, &se) || !strings.Contains(se.Step, "03_bad.sql") {
		t.Fatalf("err %v does not name the file", err)
	}
	var exists bool
	conn.QueryRow(ctx, "SELECT to_regclass('half_done') IS NOT NULL").Scan(&exists)
	if exists {
		t.Fatal("a failed file was not rolled back")
	}
	os.WriteFile(bad, []byte("CREATE TABLE half_done (id int);"), 0o644)
	if err := Run(ctx, dsn, plan, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	conn.QueryRow(ctx, "SELECT to_regclass('half_done') IS NOT NULL").Scan(&exists)
	if !exists {
		t.Fatal("fixed file not applied")
	}
}
