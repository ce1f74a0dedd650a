package hooks

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		in   string
		want Role
		ok   bool
	}{
		{"master", Primary, true}, {"primary", Primary, true}, {"promoted", Primary, true},
		{"MASTER", Primary, true}, {"replica", Replica, true}, {"standby_leader", StandbyLeader, true},
		{"demoted", Demoted, true}, {"uninitialized", Uninitialized, true},
		{"leader", Unknown, false}, {"", Unknown, false},
	}
	for _, tt := range tests {
		got, ok := ParseRole(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRole(%q) = %q,%v want %q,%v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Event
		legacy  *Legacy
		wantErr bool
	}{
		{name: "patroni 3 form", args: []string{"on_role_change", "master", "batman"},
			want: Event{Action: OnRoleChange, Role: Primary, RawRole: "master", Scope: "batman"}},
		{name: "patroni 4 form", args: []string{"on_start", "primary", "pg"},
			want: Event{Action: OnStart, Role: Primary, RawRole: "primary", Scope: "pg"}},
		{name: "legacy seed form drops password", args: []string{"postgres", "postgresql1", "/var/lib/postgresql/15/main", "0.0.0.0:5432", "/usr/lib/postgresql/15/bin", "qaz1", "on_stop", "replica", "postgres"},
			want:   Event{Action: OnStop, Role: Replica, RawRole: "replica", Scope: "postgres"},
			legacy: &Legacy{Scope: "postgres", Node: "postgresql1", DataDir: "/var/lib/postgresql/15/main", Listen: "0.0.0.0:5432", BinDir: "/usr/lib/postgresql/15/bin"}},
		{name: "unknown action and role still parse", args: []string{"on_coffee", "barista", "s"},
			want: Event{Action: "on_coffee", Role: Unknown, RawRole: "barista", Scope: "s"}},
		{name: "too few", args: []string{"on_start", "master"}, wantErr: true},
		{name: "four", args: []string{"x", "on_start", "master", "s"}, wantErr: true},
		{name: "empty scope", args: []string{"on_start", "master", " "}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args)
			if tt.wantErr {
				if !errors.Is(err, ErrUsage) {
					t.Fatalf("err = %v, want ErrUsage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			leg := got.Legacy
			got.Legacy = nil
			if got != tt.want {
				t.Fatalf("got %+v want %+v", got, tt.want)
			}
			if (leg == nil) != (tt.legacy == nil) || (leg != nil && *leg != *tt.legacy) {
				t.Fatalf("legacy %+v want %+v", leg, tt.legacy)
			}
			if leg != nil && strings.Contains(strings.Join([]string{leg.Scope, leg.Node, leg.DataDir, leg.Listen, leg.BinDir}, " "), "qaz1") {
				t.Fatal("password kept")
			}
		})
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		action Action
		role   string
		policy Policy
		vip    VIPIntent
		roster Role
	}{
		{OnStart, "master", Policy{}, VIPHold, Primary},
		{OnRoleChange, "primary", Policy{}, VIPHold, Primary},
		{OnRoleChange, "promoted", Policy{}, VIPHold, Primary},
		{OnReload, "master", Policy{}, VIPHold, Primary}, // patronictl reload on a healthy primary
		{OnRestart, "master", Policy{}, VIPHold, Primary},
		{OnStart, "replica", Policy{}, VIPRelease, Replica},
		{OnRoleChange, "replica", Policy{}, VIPRelease, Replica},
		{OnRoleChange, "demoted", Policy{}, VIPRelease, Demoted},
		{OnStart, "uninitialized", Policy{}, VIPRelease, Uninitialized},
		{OnReload, "replica", Policy{}, VIPRelease, Replica},
		{OnStop, "master", Policy{}, VIPRelease, Stopped},
		{OnStop, "demoted", Policy{}, VIPRelease, Stopped},
		{OnRoleChange, "standby_leader", Policy{}, VIPRelease, StandbyLeader},
		{OnRoleChange, "standby_leader", Policy{StandbyLeaderHoldsVIP: true}, VIPHold, StandbyLeader},
		{"on_coffee", "master", Policy{}, VIPLeave, ""},
		{OnStart, "barista", Policy{}, VIPLeave, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.action)+"/"+tt.role, func(t *testing.T) {
			ev, err := ParseArgs([]string{string(tt.action), tt.role, "s"})
			if err != nil {
				t.Fatal(err)
			}
			p := Decide(ev, tt.policy)
			if p.VIP != tt.vip || p.RosterRole != tt.roster {
				t.Fatalf("Decide = %v/%q, want %v/%q", p.VIP, p.RosterRole, tt.vip, tt.roster)
			}
			if p.VIP == VIPLeave && p.Reason == "" {
				t.Fatal("leave without a reason")
			}
		})
	}
}
