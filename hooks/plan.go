package hooks

// VIPIntent is what the VIP backend must make true.
type VIPIntent int

// VIP intents.
const (
	VIPLeave   VIPIntent = iota // unknown input: touch nothing
	VIPHold                     // this node is the primary: hold the address
	VIPRelease                  // this node is not the primary: drop it
)

func (v VIPIntent) String() string {
	switch v {
	case VIPHold:
		return "hold"
	case VIPRelease:
		return "release"
	}
	return "leave"
}

// Plan is the desired state for one event.
type Plan struct {
	VIP VIPIntent
	// RosterRole is the role to record; empty means leave the roster alone.
	RosterRole Role
	// Reason explains a VIPLeave plan, for the log.
	Reason string
}

// Policy holds the choices the table leaves to configuration.
type Policy struct {
	// StandbyLeaderHoldsVIP makes the leader of a standby cluster hold the
	// VIP (default false: a standby cluster is read-only).
	StandbyLeaderHoldsVIP bool
}

// Decide derives the desired state from the event alone (level-triggered):
//
//	action                                role                    VIP      roster
//	on_start/role_change/restart/reload   primary (master)        hold     primary
//	on_start/role_change/restart/reload   replica/demoted/uninit  release  that role
//	any but on_stop                       standby_leader          policy   standby_leader
//	on_stop                               any known               release  stopped
//	unknown action or unknown role                                leave    leave
//
// on_reload and on_restart with a primary role mean hold: Patroni sends
// "on_reload master" to a healthy primary on `patronictl reload`.
func Decide(ev Event, p Policy) Plan {
	if !ev.Action.Known() {
		return Plan{VIP: VIPLeave, Reason: "unknown action " + string(ev.Action)}
	}
	if ev.Role == Unknown {
		return Plan{VIP: VIPLeave, Reason: "unknown role " + ev.RawRole}
	}
	if ev.Action == OnStop {
		return Plan{VIP: VIPRelease, RosterRole: Stopped}
	}
	switch ev.Role {
	case Primary:
		return Plan{VIP: VIPHold, RosterRole: Primary}
	case StandbyLeader:
		if p.StandbyLeaderHoldsVIP {
			return Plan{VIP: VIPHold, RosterRole: StandbyLeader}
		}
		return Plan{VIP: VIPRelease, RosterRole: StandbyLeader}
	default:
		return Plan{VIP: VIPRelease, RosterRole: ev.Role}
	}
}
