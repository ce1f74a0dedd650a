package hooks

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/pghook/pghook/internal/metrics"
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

func TestCauseOf(t *testing.T) {
	for reason, want := range map[string]string{
		"callback request": metrics.CauseCallback,
		"patroni silent and leader unknown past the grace period": metrics.CauseGrace,
		"leader key is n2":                    metrics.CauseDCS,
		"patroni silent; leader key is empty": metrics.CauseDCS,
		"patroni: primary":                    metrics.CausePatroni,
		"patroni: not primary":                metrics.CausePatroni,
	} {
		if got := causeOf(reason); got != want {
			t.Errorf("causeOf(%q) = %s, want %s", reason, got, want)
		}
	}
}
