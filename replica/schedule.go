package replica

import (
	"fmt"
	"sort"
	"time"
)

// Member is what ChooseBackupNode needs of a cluster member (Patroni's
// GET /cluster).
type Member struct {
	Name  string
	Role  string // leader, standby_leader, sync_standby, replica
	State string // streaming; running (Patroni before 3.0.4 for a replica too), …
	Lag   *int64 // replay lag in bytes; nil: the leader, or unknown
}

// ChooseBackupNode picks the one member that takes a scheduled backup:
// the streaming replica with the least lag (ties: the first name), so the
// leader does not pay for it; else the leader. Every node's timer asks
// the same question of the same cluster view, so one answers "me".
//
// A replica qualifies when Patroni reports its replay lag (a number: it
// knows the replica's position) and its state is "streaming" or
// "running": Patroni before 3.0.4 (Debian 12 ships 3.0.2) reports every
// running replica as "running", streaming or not. A replica that is not
// streaming falls behind, so the least lag still names a streaming one
// whenever there is one; "starting", "stopped", "crashed", "creating
// replica" and the like never qualify.
func ChooseBackupNode(ms []Member) (string, string) {
	var replicas []Member
	leader := ""
	for _, m := range ms {
		switch {
		case m.Role == "leader" || m.Role == "standby_leader" || m.Role == "master" || m.Role == "primary":
			leader = m.Name
		case (m.State == "streaming" || m.State == "running") && m.Lag != nil:
			replicas = append(replicas, m)
		}
	}
	if len(replicas) > 0 {
		sort.Slice(replicas, func(i, j int) bool {
			if *replicas[i].Lag != *replicas[j].Lag {
				return *replicas[i].Lag < *replicas[j].Lag
			}
			return replicas[i].Name < replicas[j].Name
		})
		return replicas[0].Name, fmt.Sprintf("the streaming replica with the least lag (%d bytes)", *replicas[0].Lag)
	}
	if leader != "" {
		return leader, "the leader (no streaming replica)"
	}
	return "", "no leader and no streaming replica"
}

// RecentBackup returns the newest published backup of scope when it is
// younger than within (a scheduled run then has nothing to do: another
// node took this round's backup).
func RecentBackup(dir, scope string, within time.Duration) (Meta, bool) {
	all, err := List(dir, scope)
	if err != nil || len(all) == 0 || within <= 0 {
		return Meta{}, false
	}
	return all[0], time.Since(all[0].CreatedAt) < within
}
