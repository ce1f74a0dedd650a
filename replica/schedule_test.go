package replica

import "testing"

func TestChooseBackupNode(t *testing.T) {
	lag := func(n int64) *int64 { return &n }
	tests := []struct {
		name    string
		members []Member
		want    string
	}{
		{"least lag replica", []Member{{Name: "n1", Role: "leader", State: "running"}, {Name: "n2", Role: "replica", State: "streaming", Lag: lag(100)}, {Name: "n3", Role: "sync_standby", State: "streaming", Lag: lag(0)}}, "n3"},
		{"tie: first name", []Member{{Name: "n1", Role: "leader"}, {Name: "n3", Role: "replica", State: "streaming", Lag: lag(0)}, {Name: "n2", Role: "replica", State: "streaming", Lag: lag(0)}}, "n2"},
		{"a replica of unknown lag is passed over", []Member{{Name: "n1", Role: "leader"}, {Name: "n3", Role: "replica", State: "streaming"}}, "n1"},
		{"Patroni 3.0.2: a running replica qualifies", []Member{{Name: "n1", Role: "leader", State: "running"}, {Name: "n2", Role: "replica", State: "running", Lag: lag(0)}}, "n2"},
		{"a streaming replica behind a running one by lag", []Member{{Name: "n1", Role: "leader"}, {Name: "n2", Role: "replica", State: "running", Lag: lag(4096)}, {Name: "n3", Role: "replica", State: "streaming", Lag: lag(16)}}, "n3"},
		{"a replica that is not running never qualifies", []Member{{Name: "n1", Role: "leader"}, {Name: "n2", Role: "replica", State: "starting", Lag: lag(0)}, {Name: "n3", Role: "replica", State: "creating replica", Lag: lag(0)}, {Name: "n4", Role: "replica", State: "stopped", Lag: lag(0)}}, "n1"},
		{"leader alone", []Member{{Name: "n1", Role: "leader", State: "running"}}, "n1"},
		{"nobody", []Member{{Name: "n2", Role: "replica", State: "stopped"}}, ""},
	}
	for _, tc := range tests {
		if got, why := ChooseBackupNode(tc.members); got != tc.want {
			t.Errorf("%s: %q (%s), want %q", tc.name, got, why, tc.want)
		}
	}
}
