package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads text exposition with Prometheus's own parser.
func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("Prometheus's parser refuses the output: %v", err)
	}
	return fams
}

// value returns the value of the sample of name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	for _, m := range f.Metric {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	t.Fatalf("no sample of %s with %v", name, want)
	return 0
}

func TestWriteParses(t *testing.T) {
	var b bytes.Buffer
	err := Write(&b, []Family{
		{Name: "pghook_b", Help: "second\nline \\ here", Type: Counter, Samples: []Sample{{L("scope", `a"b\c`+"\n"), 3}}},
		{Name: "pghook_a", Help: "first", Type: Gauge, Samples: []Sample{{nil, 1.5}, {L("x", "y"), 2e-9}}},
		{Name: "pghook_empty", Help: "no samples", Type: Gauge},
	})
	if err != nil {
		t.Fatal(err)
	}
	fams := parse(t, &b)
	if got := value(t, fams, "pghook_b", map[string]string{"scope": "a\"b\\c\n"}); got != 3 {
		t.Errorf("escaped label: %v", got)
	}
	if got := value(t, fams, "pghook_a", map[string]string{"x": "y"}); got != 2e-9 {
		t.Errorf("pghook_a{x=y} = %v", got)
	}
	if fams["pghook_b"].GetHelp() != "second\nline \\ here" {
		t.Errorf("help %q", fams["pghook_b"].GetHelp())
	}
}

func TestWriteRefusesBadNames(t *testing.T) {
	for _, f := range []Family{
		{Name: "pghook-vip", Type: Gauge},
		{Name: "", Type: Gauge},
		{Name: "ok", Type: Gauge, Samples: []Sample{{L("bad-label", "v"), 1}}},
		{Name: "ok", Type: Gauge, Samples: []Sample{{L("__reserved", "v"), 1}}},
	} {
		if err := Write(io.Discard, []Family{f}); err == nil {
			t.Errorf("Write accepted %+v", f)
		}
	}
}

// Every figure of the watcher moves as its event says, on a fake clock.
func TestVIPFigures(t *testing.T) {
	now := time.Unix(1000, 0)
	v := NewVIP("main", "netlink", func() time.Time { return now })
	read := func() map[string]*dto.MetricFamily {
		var b bytes.Buffer
		if err := Write(&b, v.Families()); err != nil {
			t.Fatal(err)
		}
		return parse(t, &b)
	}
	base := map[string]string{"scope": "main", "backend": "netlink"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"scope": "main", "backend": "netlink"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	f := read()
	if value(t, f, "pghook_vip_held", base) != 0 || value(t, f, "pghook_vip_transitions_total", with("direction", "hold", "cause", "patroni")) != 0 {
		t.Fatal("a new watcher reports activity")
	}
	now = now.Add(90 * time.Second)
	v.Transition(Hold, CausePatroni, 12*time.Millisecond, nil)
	v.TakeoverWait(400 * time.Millisecond)
	v.Request(Hold, 9*time.Millisecond, nil)
	v.Request(Release, time.Millisecond, errors.New("x"))
	v.DCSError()
	v.PatroniError()
	v.PatroniError()
	f = read()
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pghook_vip_held", base, 1},
		{"pghook_vip_watch_up_seconds", base, 90},
		{"pghook_vip_watch_start_time_seconds", base, 1000},
		{"pghook_vip_transitions_total", with("direction", "hold", "cause", "patroni"), 1},
		{"pghook_vip_last_transition_seconds", with("direction", "hold"), 0.012},
		{"pghook_vip_probe_conflicts_total", base, 1},
		{"pghook_vip_takeover_wait_seconds_total", base, 0.4},
		{"pghook_vip_requests_total", with("op", "hold", "result", "ok"), 1},
		{"pghook_vip_requests_total", with("op", "release", "result", "error"), 1},
		{"pghook_vip_request_seconds_total", with("op", "hold"), 0.009},
		{"pghook_vip_dcs_errors_total", base, 1},
		{"pghook_vip_patroni_errors_total", base, 2},
	}
	for _, c := range checks {
		if got := value(t, f, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	v.Transition(Release, CauseDCS, 3*time.Millisecond, nil)
	v.Transition(Hold, CauseCallback, 0, errors.New("busy"))
	f = read()
	if value(t, f, "pghook_vip_held", base) != 0 || value(t, f, "pghook_vip_transitions_total", with("direction", "release", "cause", "dcs")) != 1 ||
		value(t, f, "pghook_vip_failures_total", with("direction", "hold")) != 1 {
		t.Errorf("after a release by the DCS and a failed hold: %v", f)
	}
	var nilVIP *VIP
	nilVIP.Transition(Hold, CausePatroni, 0, nil) // off: records nothing, no panic
}

func TestWriteTextfile(t *testing.T) {
	dir := t.TempDir()
	fams := []Family{{Name: "pghook_callback_success", Help: "h", Type: Gauge, Samples: []Sample{{L("scope", "main"), 1}}}}
	if err := WriteTextfile(dir, "callback_main_on_start", fams); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "pghook_callback_main_on_start.prom")
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if value(t, parse(t, fh), "pghook_callback_success", map[string]string{"scope": "main"}) != 1 {
		t.Error("textfile content")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 1 {
		t.Errorf("files left beside it: %v", left)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if err := WriteTextfile(dir, bad, fams); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if err := WriteTextfile(filepath.Join(dir, "missing"), "x", fams); err == nil || !strings.Contains(err.Error(), "metrics_textfile_dir") {
		t.Errorf("missing dir: %v", err)
	}
	if got := FileName("my scope/1"); got != "my_scope_1" {
		t.Errorf("FileName = %q", got)
	}
}

// The endpoint serves /metrics and nothing else.
func TestServer(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v := NewVIP("main", "netlink", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, v.Families) }()
	base := "http://" + ln.Addr().String()
	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/metrics", 200},
		{"HEAD", "/metrics", 200},
		{"POST", "/metrics", 405},
		{"GET", "/", 404},
		{"GET", "/debug/pprof/", 404},
		{"GET", "/metrics/x", 404},
		{"GET", "/config", 404},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.code)
		}
		if tt.code == 200 && tt.method == "GET" {
			parse(t, bytes.NewReader(body))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"9187", "localhost", "256.0.0.1:x"} {
		if _, err := Listen(bad); err == nil || !strings.Contains(err.Error(), "metrics_listen") {
			t.Errorf("Listen(%q): %v", bad, err)
		}
	}
}
