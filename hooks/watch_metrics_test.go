package hooks

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/metrics"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/rs/zerolog"
)

// The watcher tells its metrics what it saw and did: the VIP held, each
// transition with its cause, failed reads of Patroni and the DCS.
func TestWatcherMetrics(t *testing.T) {
	probe := &fakeProbe{primary: true}
	dcs := &fakeLeader{name: "me"}
	vip := &stateVIP{}
	m := metrics.NewVIP("s", "state", nil)
	w := &Watcher{VIP: vip, Patroni: probe, DCS: dcs, Me: "me", Log: zerolog.Nop(), Metrics: m}
	read := func() string {
		var b bytes.Buffer
		if err := metrics.Write(&b, m.Families()); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"primary: hold by patroni", func() { _ = w.Step(context.Background()) }, []string{
			`pghook_vip_held{scope="s",backend="state"} 1`,
			`pghook_vip_transitions_total{scope="s",backend="state",direction="hold",cause="patroni"} 1`}},
		{"the key moves: release by the dcs", func() { dcs.name = "n2"; _ = w.Step(context.Background()) }, []string{
			`pghook_vip_held{scope="s",backend="state"} 0`,
			`pghook_vip_transitions_total{scope="s",backend="state",direction="release",cause="dcs"} 1`}},
		{"a callback asks: hold by callback", func() { _ = w.Request(context.Background(), true) }, []string{
			`pghook_vip_transitions_total{scope="s",backend="state",direction="hold",cause="callback"} 1`}},
		{"both silent: errors counted", func() { probe.err, dcs.err = errDown, errDown; _ = w.Step(context.Background()) }, []string{
			`pghook_vip_patroni_errors_total{scope="s",backend="state"} 1`,
			`pghook_vip_dcs_errors_total{scope="s",backend="state"} 1`}},
	}
	for _, s := range steps {
		s.do()
		out := read()
		for _, want := range s.want {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("after %q: no line %q in\n%s", s.name, want, out)
			}
		}
	}
}

// TestRuleCause: every row of the watcher's table names what decided it —
// the label its transition is counted under.
func TestRuleCause(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	running := patroni.PrimaryStatus{Leader: true, State: "running", Role: "master"}
	stopped := patroni.PrimaryStatus{State: "stopped", Role: "demoted"}
	tests := []struct {
		name     string
		st       patroni.PrimaryStatus
		perr     error
		known    bool
		leader   string
		holding  *bool
		answered time.Duration // how long ago Patroni last answered; 0 never
		handover time.Duration // a hand-over hold began this long ago; 0 none
		hold     bool
		cause    metrics.Cause
	}{
		{name: "patroni: primary", st: running, known: true, leader: "me", hold: true, cause: metrics.CausePatroni},
		{name: "patroni: not primary", st: patroni.PrimaryStatus{State: "running", Role: "replica"}, cause: metrics.CausePatroni},
		{name: "patroni: leader, postgresql stopping", st: patroni.PrimaryStatus{Leader: true, State: "stopping"}, cause: metrics.CausePatroni},
		{name: "key names another while patroni says primary", st: running, known: true, leader: "n2", cause: metrics.CauseDCS},
		{name: "key names another", perr: errDown, known: true, leader: "n2", cause: metrics.CauseDCS},
		{name: "key names another: hand-over done", st: stopped, known: true, leader: "n2", handover: time.Second, cause: metrics.CauseDCS},
		{name: "promoting", st: patroni.PrimaryStatus{State: "running", Role: "replica"}, known: true, leader: "me", hold: true, cause: metrics.CauseDCS},
		{name: "hand-over hold", st: stopped, known: true, holding: ptr(true), hold: true, cause: metrics.CauseDCS},
		{name: "hand-over hold ended", st: stopped, known: true, holding: ptr(true), handover: time.Minute, cause: metrics.CausePatroni},
		{name: "patroni silent, key ours", perr: errDown, known: true, leader: "me", hold: true, cause: metrics.CauseDCS},
		{name: "patroni silent, key empty", perr: errDown, known: true, cause: metrics.CauseDCS},
		{name: "both silent past the grace period", perr: errDown, answered: time.Minute, cause: metrics.CauseGrace},
		{name: "both silent within the grace period", perr: errDown, answered: time.Second, holding: ptr(true), hold: true, cause: metrics.CauseGrace},
		{name: "both silent within the grace period, nothing done yet", perr: errDown, answered: time.Second, cause: metrics.CauseDCS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &Watcher{DCS: &watchedLeader{&fakeLeader{}}, Me: "me", Grace: 3 * time.Second, HandoverMax: 10 * time.Second, holding: tc.holding}
			if tc.answered > 0 {
				w.lastAnswer = t0.Add(-tc.answered)
			}
			if tc.handover > 0 {
				w.handoverSince = t0.Add(-tc.handover)
			}
			d := w.rule(t0, tc.st, tc.perr, tc.known, tc.leader)
			if d.hold != tc.hold || d.cause != tc.cause {
				t.Errorf("rule: hold %v cause %q (%s); want hold %v cause %q", d.hold, d.cause, d.reason, tc.hold, tc.cause)
			}
		})
	}
}

// A Patroni that does not answer within the step's wait is a Patroni
// error, whoever the key names — only the waits the watcher skips on
// purpose (the new leader's, the hand-over's end) are not.
func TestWatcherPatroniTimeoutCounted(t *testing.T) {
	for _, leader := range []string{"me", "n2", ""} {
		t.Run("key "+quoteEmpty(leader), func(t *testing.T) {
			m := metrics.NewVIP("s", "state", nil)
			w := &Watcher{VIP: &stateVIP{}, Patroni: &fakeProbe{primary: true, delay: 5 * time.Second},
				DCS: &fakeLeader{name: leader}, Me: "me", Log: zerolog.Nop(), Metrics: m}
			_ = w.Step(context.Background())
			var b bytes.Buffer
			if err := metrics.Write(&b, m.Families()); err != nil {
				t.Fatal(err)
			}
			if want := `pghook_vip_patroni_errors_total{scope="s",backend="state"} 1` + "\n"; !strings.Contains(b.String(), want) {
				t.Errorf("no line %q in\n%s", want, b.String())
			}
		})
	}
}
