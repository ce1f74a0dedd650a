package shellenv_test

import (
	"fmt"
	"os"

	"github.com/pghook/pghook/internal/shellenv"
)

// What `eval "$(pghook env main)"` sets for a roster row: the socket
// directory from patroni.yml wins over the listen address, the cluster's
// bin directory goes first on PATH, and no password appears.
func ExampleTarget_Vars() {
	t := shellenv.Target{Scope: "main", Node: "n1", DataDir: "/var/lib/postgresql/15/main",
		Listen: "0.0.0.0:5433", BinDir: "/usr/lib/postgresql/15/bin", SocketDir: "/run/postgresql"}
	if err := shellenv.WriteExports(os.Stdout, t.Vars(nil, "/usr/bin:/bin")); err != nil {
		fmt.Println(err)
	}
	// Output:
	// export PGDATA='/var/lib/postgresql/15/main'
	// export PGHOST='/run/postgresql'
	// export PGPORT='5433'
	// export PGUSER='postgres'
	// export PGHOOK_SCOPE='main'
	// export PGHOOK_NODE='n1'
	// export PATH='/usr/lib/postgresql/15/bin:/usr/bin:/bin'
}

// Quote makes any value safe for a POSIX shell's eval.
func ExampleQuote() {
	fmt.Println(shellenv.Quote(`it's $HOME`))
	// Output: 'it'\''s $HOME'
}
