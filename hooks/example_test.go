package hooks_test

import (
	"fmt"

	"github.com/pghook/pghook/hooks"
)

// Patroni's arguments become an Event, and the Event alone decides the
// VIP and the roster: the same callback run twice plans the same.
func ExampleDecide() {
	for _, args := range [][]string{
		{"on_role_change", "master", "main"},
		{"on_start", "replica", "main"},
		{"on_stop", "master", "main"},
		{"on_role_change", "standby_leader", "main"},
	} {
		ev, err := hooks.ParseArgs(args)
		if err != nil {
			fmt.Println(err)
			continue
		}
		p := hooks.Decide(ev, hooks.Policy{})
		fmt.Printf("%s %s: vip %s, roster %q\n", args[0], args[1], p.VIP, p.RosterRole)
	}
	// Output:
	// on_role_change master: vip hold, roster "primary"
	// on_start replica: vip release, roster "replica"
	// on_stop master: vip release, roster "stopped"
	// on_role_change standby_leader: vip release, roster "standby_leader"
}
