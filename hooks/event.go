// Package hooks turns what Patroni passes to a callback into an Event, and
// an Event into the desired state of this node (the intents): whether the
// VIP is held, and the role recorded in the roster. It decides; netvip and
// pgtab act, through the interfaces Runner (a callback's plan) and Watcher
// (`pghook vip watch`, which reconciles the VIP) are given.
//
// Callbacks are level-triggered: the desired state depends on the role
// alone, never on what an earlier (possibly SIGKILLed) callback did, so
// the next callback always heals a half-finished one.
package hooks

import (
	"errors"
	"fmt"
	"strings"
)

// Action is the callback Patroni ran.
type Action string

// Callback actions Patroni passes (postgresql.callbacks in patroni.yml).
const (
	OnStart      Action = "on_start"
	OnStop       Action = "on_stop"
	OnRestart    Action = "on_restart"
	OnReload     Action = "on_reload"
	OnRoleChange Action = "on_role_change"
)

// Known reports whether a is an action Patroni sends.
func (a Action) Known() bool {
	switch a {
	case OnStart, OnStop, OnRestart, OnReload, OnRoleChange:
		return true
	}
	return false
}

// Role is a PostgreSQL role as Patroni names it, normalised.
type Role string

// Normalised roles. Patroni 2.x/3.x say "master", 4.x "primary"; 3.0.0 sent
// "promoted" after a promote.
const (
	Primary       Role = "primary"
	Replica       Role = "replica"
	StandbyLeader Role = "standby_leader"
	Demoted       Role = "demoted"
	Uninitialized Role = "uninitialized"
	Stopped       Role = "stopped" // recorded in the roster after on_stop
	Unknown       Role = ""
)

// ParseRole normalises a role name from any Patroni version. The second
// result reports whether the name was recognised.
func ParseRole(s string) (Role, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "master", "primary", "promoted":
		return Primary, true
	case "replica", "standby":
		return Replica, true
	case "standby_leader", "standby-leader":
		return StandbyLeader, true
	case "demoted":
		return Demoted, true
	case "uninitialized":
		return Uninitialized, true
	}
	return Unknown, false
}

// Event is one callback invocation.
type Event struct {
	Action  Action
	Role    Role
	RawRole string // as passed, for the log
	Scope   string
	// Legacy carries what the seed's callback.sh received before the three
	// standard arguments. Its password is dropped at parse time.
	Legacy *Legacy
}

// Legacy holds the seed's positional arguments (scope, node, data dir,
// listen, bin dir; the sixth, a password, is never kept).
type Legacy struct {
	Scope, Node, DataDir, Listen, BinDir string
}

// ErrUsage marks an argument vector that is not a callback invocation.
var ErrUsage = errors.New("hooks: usage")

// ParseArgs reads the positional arguments of a callback: ACTION ROLE SCOPE
// (Patroni appends them to the configured command), optionally preceded by
// the seed's six legacy arguments. The action and role are returned even
// when unknown; callers log those and leave state alone.
func ParseArgs(args []string) (Event, error) {
	switch len(args) {
	case 3:
	case 9:
	default:
		return Event{}, fmt.Errorf("%w: want ACTION ROLE SCOPE (Patroni appends them), optionally after the 6 legacy arguments SCOPE NODE DATA_DIR LISTEN BIN_DIR PASSWORD; got %d arguments", ErrUsage, len(args))
	}
	tail := args[len(args)-3:]
	ev := Event{Action: Action(strings.TrimSpace(tail[0])), RawRole: tail[1], Scope: strings.TrimSpace(tail[2])}
	ev.Role, _ = ParseRole(tail[1])
	if ev.Scope == "" {
		return Event{}, fmt.Errorf("%w: empty scope (third of ACTION ROLE SCOPE)", ErrUsage)
	}
	if len(args) == 9 {
		ev.Legacy = &Legacy{Scope: args[0], Node: args[1], DataDir: args[2], Listen: args[3], BinDir: args[4]}
		// args[5] is the seed's superuser password: deliberately dropped.
	}
	return ev, nil
}
