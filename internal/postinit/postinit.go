// Package postinit is Patroni's bootstrap.post_init done over a real
// connection: the one-time setup of a new cluster on its first primary.
// Every step is idempotent, so a re-run (or a rerun after a fix) converges
// instead of failing: the pg_rewind user with exactly the grants pg_rewind
// needs, the roles and databases named in pghook's config, and the *.sql
// files of a directory, each applied once (recorded in a table) in its own
// transaction.
//
// Patroni aborts the bootstrap when post_init exits non-zero, so Run
// returns an error only for a real failure, naming the step.
package postinit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// RewindFunctions are the functions pg_rewind calls on the source server
// (PostgreSQL docs, pg_rewind "Notes"), by signature.
var RewindFunctions = []string{
	"pg_catalog.pg_ls_dir(text, boolean, boolean)",
	"pg_catalog.pg_stat_file(text, boolean)",
	"pg_catalog.pg_read_binary_file(text)",
	"pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
}

// Role is a role to make sure of. Its password, if any, is read from
// PasswordFile (never from the config or a command line).
type Role struct {
	Name         string   `yaml:"name"`
	Login        bool     `yaml:"login"`
	Options      []string `yaml:"options"` // e.g. CREATEDB, REPLICATION, "CONNECTION LIMIT 10"
	InRoles      []string `yaml:"in_roles"`
	PasswordFile string   `yaml:"password_file"`
}

// Database is a database to make sure of.
type Database struct {
	Name  string `yaml:"name"`
	Owner string `yaml:"owner"`
}

// Plan is what to set up.
type Plan struct {
	RewindUser string // "" skips the rewind grants
	Roles      []Role
	Databases  []Database
	SQLDir     string // "" skips SQL files
}

// StepError names the step that failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

var ident = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$-]{0,62}$`) })

var allowedOption = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)^(NO)?(SUPERUSER|CREATEDB|CREATEROLE|INHERIT|LOGIN|REPLICATION|BYPASSRLS)$|^CONNECTION LIMIT -?[0-9]+$`)
})

// Validate checks the plan before any connection is made.
func (p Plan) Validate() error {
	if p.RewindUser != "" && !ident().MatchString(p.RewindUser) {
		return fmt.Errorf("rewind user %q: not a plain role name", p.RewindUser)
	}
	for _, r := range p.Roles {
		if !ident().MatchString(r.Name) {
			return fmt.Errorf("role %q: not a plain role name", r.Name)
		}
		for _, o := range r.Options {
			if !allowedOption().MatchString(strings.TrimSpace(o)) {
				return fmt.Errorf("role %s: option %q is not a role option (SUPERUSER, CREATEDB, CREATEROLE, INHERIT, LOGIN, REPLICATION, BYPASSRLS, their NO forms, CONNECTION LIMIT n)", r.Name, o)
			}
		}
		for _, in := range r.InRoles {
			if !ident().MatchString(in) {
				return fmt.Errorf("role %s: in_roles %q: not a plain role name", r.Name, in)
			}
		}
	}
	for _, d := range p.Databases {
		if !ident().MatchString(d.Name) || (d.Owner != "" && !ident().MatchString(d.Owner)) {
			return fmt.Errorf("database %q (owner %q): not plain names", d.Name, d.Owner)
		}
	}
	if p.SQLDir != "" {
		fi, err := os.Stat(p.SQLDir)
		if err != nil {
			return fmt.Errorf("sql_dir: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("sql_dir %s: not a directory", p.SQLDir)
		}
	}
	return nil
}

// Run connects with dsn (Patroni's key/value DSN; the password comes from
// PGPASSFILE) and applies the plan.
func Run(ctx context.Context, dsn string, p Plan, log zerolog.Logger) error {
	if err := p.Validate(); err != nil {
		return &StepError{Step: "config", Err: err}
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx quotes the DSN in its error, masking the password only where
		// it recognises one (not in "password = '…'", nor in a key/value
		// string it fails to split): FuzzRunDSN. So no part of it is shown.
		return &StepError{Step: "dsn", Err: errors.New("the DSN Patroni passed is not a valid libpq connection string " +
			"(not shown: it may hold a password); Patroni builds it from postgresql.connect_address and authentication.superuser of patroni.yml")}
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return &StepError{Step: "connect", Err: err}
	}
	defer conn.Close(context.Background())
	start := time.Now()
	if p.RewindUser != "" {
		if err := rewindUser(ctx, conn, p.RewindUser); err != nil {
			return &StepError{Step: "rewind user " + p.RewindUser, Err: err}
		}
		log.Info().Str("action", "post-init").Str("step", "rewind user").Str("role", p.RewindUser).Msg("rewind user and grants in place")
	}
	for _, r := range p.Roles {
		if err := ensureRole(ctx, conn, r); err != nil {
			return &StepError{Step: "role " + r.Name, Err: err}
		}
		log.Info().Str("action", "post-init").Str("step", "role").Str("name", r.Name).Msg("role in place")
	}
	for _, d := range p.Databases {
		if err := ensureDatabase(ctx, conn, d); err != nil {
			return &StepError{Step: "database " + d.Name, Err: err}
		}
		log.Info().Str("action", "post-init").Str("step", "database").Str("name", d.Name).Msg("database in place")
	}
	if p.SQLDir != "" {
		n, err := applySQL(ctx, conn, p.SQLDir, log)
		if err != nil {
			return err
		}
		log.Info().Str("action", "post-init").Str("step", "sql").Int("applied", n).Msg("sql files applied")
	}
	log.Info().Str("action", "post-init").Dur("took_ms", time.Since(start)).Msg("post-init done")
	return nil
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func rewindUser(ctx context.Context, conn *pgx.Conn, name string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		// Patroni sets its password (authentication.rewind) right after
		// post_init; creating it here lets the grants be made now.
		if _, err := conn.Exec(ctx, "CREATE ROLE "+quoteIdent(name)+" LOGIN"); err != nil {
			return err
		}
	}
	for _, fn := range RewindFunctions {
		if _, err := conn.Exec(ctx, "GRANT EXECUTE ON FUNCTION "+fn+" TO "+quoteIdent(name)); err != nil {
			return fmt.Errorf("granting %s: %w", fn, err)
		}
	}
	return nil
}

func ensureRole(ctx context.Context, conn *pgx.Conn, r Role) error {
	opts := append([]string{}, r.Options...)
	if r.Login {
		opts = append(opts, "LOGIN")
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r.Name).Scan(&exists); err != nil {
		return err
	}
	verb := "ALTER ROLE "
	if !exists {
		verb = "CREATE ROLE "
	}
	stmt := verb + quoteIdent(r.Name)
	if len(opts) > 0 {
		stmt += " WITH " + strings.Join(opts, " ")
	}
	if exists && len(opts) == 0 {
		stmt = ""
	}
	if stmt != "" {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	if r.PasswordFile != "" {
		b, err := os.ReadFile(r.PasswordFile)
		if err != nil {
			return fmt.Errorf("password_file: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		// The password travels as a bind parameter into a transaction-local
		// setting read by a DO block: it is never part of a statement text
		// that log_statement could show.
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SELECT set_config('pghook.pw', $1, true)", pw); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`DO $$BEGIN EXECUTE format('ALTER ROLE %%I PASSWORD %%L', %s, current_setting('pghook.pw')); END$$`, quoteLiteral(r.Name))); err != nil {
			return fmt.Errorf("setting password: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	}
	for _, in := range r.InRoles {
		if _, err := conn.Exec(ctx, "GRANT "+quoteIdent(in)+" TO "+quoteIdent(r.Name)); err != nil {
			return fmt.Errorf("granting %s: %w", in, err)
		}
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func ensureDatabase(ctx context.Context, conn *pgx.Conn, d Database) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", d.Name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		stmt := "CREATE DATABASE " + quoteIdent(d.Name)
		if d.Owner != "" {
			stmt += " OWNER " + quoteIdent(d.Owner)
		}
		_, err := conn.Exec(ctx, stmt)
		return err
	}
	if d.Owner != "" {
		_, err := conn.Exec(ctx, "ALTER DATABASE "+quoteIdent(d.Name)+" OWNER TO "+quoteIdent(d.Owner))
		return err
	}
	return nil
}

// appliedTable records the SQL files already applied.
const appliedTable = "pghook.applied_sql"

func applySQL(ctx context.Context, conn *pgx.Conn, dir string, log zerolog.Logger) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return 0, &StepError{Step: "sql_dir " + dir, Err: err}
	}
	sort.Strings(files)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS pghook;
		CREATE TABLE IF NOT EXISTS `+appliedTable+` (name text PRIMARY KEY, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, &StepError{Step: "creating " + appliedTable, Err: err}
	}
	applied := 0
	for _, f := range files {
		name := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			return applied, &StepError{Step: "sql file " + name, Err: err}
		}
		sum := sha256.Sum256(b)
		hexsum := hex.EncodeToString(sum[:])
		var prev string
		err = conn.QueryRow(ctx, "SELECT sha256 FROM "+appliedTable+" WHERE name = $1", name).Scan(&prev)
		switch {
		case err == nil:
			if prev != hexsum {
				log.Warn().Str("action", "post-init").Str("file", name).Msg("sql file changed since it was applied: not applied again")
			}
			continue
		case !errors.Is(err, pgx.ErrNoRows):
			return applied, &StepError{Step: "sql file " + name, Err: err}
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return applied, &StepError{Step: "sql file " + name, Err: err}
		}
		// Simple protocol: a file may hold several statements.
		if _, err := tx.Exec(ctx, string(b), pgx.QueryExecModeSimpleProtocol); err != nil {
			tx.Rollback(ctx)
			return applied, &StepError{Step: "sql file " + name + " (rolled back)", Err: err}
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+appliedTable+" (name, sha256) VALUES ($1, $2)", name, hexsum); err != nil {
			tx.Rollback(ctx)
			return applied, &StepError{Step: "sql file " + name, Err: err}
		}
		if err := tx.Commit(ctx); err != nil {
			return applied, &StepError{Step: "sql file " + name, Err: err}
		}
		applied++
		log.Info().Str("action", "post-init").Str("file", name).Msg("sql file applied")
	}
	return applied, nil
}
