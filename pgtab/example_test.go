package pgtab_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/pghook/pghook/pgtab"
)

// A roster in the seed's format (its PWD column is dropped) is read, a
// callback's row is merged in, and the roster is written in pghook's
// format, without the password.
func Example() {
	seed := "SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,PWD,ROLE\n" +
		"main,n1,/var/lib/postgresql/15/main,0.0.0.0:5432,/usr/lib/postgresql/15/bin,secret,replica\n"
	rows, err := pgtab.Parse(strings.NewReader(seed))
	if err != nil {
		fmt.Println(err)
		return
	}
	rows = pgtab.Merge(rows, pgtab.Row{Scope: "main", Node: "n1", DataDir: "/var/lib/postgresql/15/main",
		Listen: "0.0.0.0:5432", BinDir: "/usr/lib/postgresql/15/bin", Role: "primary"})
	if err := pgtab.Encode(os.Stdout, rows); err != nil {
		fmt.Println(err)
	}
	// Output:
	// SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,ROLE,PATRONI_CONFIG,UPDATED_AT
	// main,n1,/var/lib/postgresql/15/main,0.0.0.0:5432,/usr/lib/postgresql/15/bin,primary,,
}

// Select finds a scope's rows; an empty node matches every node.
func ExampleSelect() {
	rows := []pgtab.Row{{Scope: "main", Node: "n1"}, {Scope: "main", Node: "n2"}, {Scope: "other", Node: "n1"}}
	for _, r := range pgtab.Select(rows, "main", "") {
		fmt.Println(r.Scope, r.Node)
	}
	// Output:
	// main n1
	// main n2
}
