package install

import (
	"fmt"
	"sort"
	"strings"
)

// rewindFunctions are the functions pg_rewind calls on the source server
// (PostgreSQL's documentation of pg_rewind: a non-superuser needs EXECUTE on
// them).
var rewindFunctions = []string{
	"pg_catalog.pg_ls_dir(text, boolean, boolean)",
	"pg_catalog.pg_stat_file(text, boolean)",
	"pg_catalog.pg_read_binary_file(text)",
	"pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
}

// roleRow is one role as the adopted server reports it.
type roleRow struct {
	Name        string
	Super       bool
	Login       bool
	Replication bool
	Password    string // rolpassword: a verifier or hash
	// Rewind: EXECUTE on every rewindFunctions (or superuser).
	Rewind bool
}

// roleNeed is what Patroni needs of one role of the scope.
type roleNeed struct {
	Kind     string // secret kind: superuser, replication, rewind
	Name     string
	Password string
}

// roleFix is a statement that makes a role what Patroni needs. SQL holds
// at most a password verifier, never a password; What describes it for
// the operator.
type roleFix struct {
	What string
	SQL  string
}

// evalRoles compares the roles of the adopted server with what Patroni
// needs: the problems (each naming the role, what is wrong and what to do)
// and the statements that fix them. verifier makes a password verifier.
func evalRoles(rows []roleRow, needs []roleNeed, secretsDir string, verifier func(string) (string, error)) (problems []string, fixes []roleFix, err error) {
	byName := map[string]roleRow{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	for _, n := range needs {
		r, ok := byName[n.Name]
		file := secretsDir + "/" + n.Kind
		pw := func() (string, error) {
			v, err := verifier(n.Password)
			return quoteLiteral(v), err
		}
		ident := quoteIdent(n.Name)
		if !ok {
			attrs := "LOGIN"
			switch n.Kind {
			case "superuser":
				attrs = "SUPERUSER LOGIN"
			case "replication":
				attrs = "LOGIN REPLICATION"
			}
			v, err := pw()
			if err != nil {
				return nil, nil, err
			}
			problems = append(problems, fmt.Sprintf("role %s (%s) does not exist", n.Name, n.Kind))
			fixes = append(fixes, roleFix{What: "create role " + n.Name, SQL: fmt.Sprintf("CREATE ROLE %s %s PASSWORD %s;", ident, attrs, v)})
			if n.Kind == "rewind" {
				fixes = append(fixes, grantRewind(n.Name))
			}
			continue
		}
		var attrs []string
		switch {
		case n.Kind == "superuser" && !r.Super:
			problems = append(problems, fmt.Sprintf("role %s is not a superuser (Patroni's superuser must be)", n.Name))
			attrs = append(attrs, "SUPERUSER")
		case n.Kind == "replication" && !r.Replication && !r.Super:
			problems = append(problems, fmt.Sprintf("role %s lacks REPLICATION", n.Name))
			attrs = append(attrs, "REPLICATION")
		}
		if !r.Login {
			problems = append(problems, fmt.Sprintf("role %s cannot log in", n.Name))
			attrs = append(attrs, "LOGIN")
		}
		if len(attrs) > 0 {
			fixes = append(fixes, roleFix{What: "alter role " + n.Name + " " + strings.Join(attrs, " "), SQL: fmt.Sprintf("ALTER ROLE %s %s;", ident, strings.Join(attrs, " "))})
		}
		if !passwordMatches(r.Password, n.Name, n.Password) {
			what := "has another password than " + file
			if r.Password == "" {
				what = "has no password"
			}
			problems = append(problems, fmt.Sprintf("role %s %s", n.Name, what))
			v, err := pw()
			if err != nil {
				return nil, nil, err
			}
			fixes = append(fixes, roleFix{What: "set the password of " + n.Name + " (from " + file + ")", SQL: fmt.Sprintf("ALTER ROLE %s PASSWORD %s;", ident, v)})
		}
		if n.Kind == "rewind" && !r.Rewind {
			problems = append(problems, fmt.Sprintf("role %s lacks EXECUTE on pg_rewind's functions (pg_ls_dir, pg_stat_file, pg_read_binary_file)", n.Name))
			fixes = append(fixes, grantRewind(n.Name))
		}
	}
	sort.Strings(problems)
	return problems, fixes, nil
}

func grantRewind(role string) roleFix {
	var b strings.Builder
	for _, f := range rewindFunctions {
		fmt.Fprintf(&b, "GRANT EXECUTE ON FUNCTION %s TO %s;\n", f, quoteIdent(role))
	}
	return roleFix{What: "grant " + role + " EXECUTE on pg_rewind's functions", SQL: b.String()}
}

// rolesQuery lists the roles named by needs, one per line:
// name|super|login|replication|rolpassword|rewind (booleans as t/f).
func rolesQuery(needs []roleNeed) string {
	var names []string
	for _, n := range needs {
		names = append(names, quoteLiteral(n.Name))
	}
	var rw []string
	for _, f := range rewindFunctions {
		rw = append(rw, fmt.Sprintf("has_function_privilege(a.oid, %s, 'EXECUTE')", quoteLiteral(f)))
	}
	return fmt.Sprintf("SELECT a.rolname, a.rolsuper, a.rolcanlogin, a.rolreplication, coalesce(a.rolpassword, ''), a.rolsuper OR (%s) FROM pg_catalog.pg_authid a WHERE a.rolname IN (%s) ORDER BY 1;\n",
		strings.Join(rw, " AND "), strings.Join(names, ", "))
}

// parseRoles reads rolesQuery's unaligned output (psql -At -F '|').
func parseRoles(out string) ([]roleRow, error) {
	var rows []roleRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 6 {
			return nil, fmt.Errorf("unexpected line from the roles query: %d fields", len(f))
		}
		rows = append(rows, roleRow{Name: f[0], Super: f[1] == "t", Login: f[2] == "t", Replication: f[3] == "t", Password: f[4], Rewind: f[5] == "t"})
	}
	return rows, nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func quoteIdent(s string) string   { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
