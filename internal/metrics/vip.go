package metrics

import (
	"sort"
	"sync"
	"time"
)

// VIP holds the figures of one scope's VIP watcher. Its methods are safe
// for concurrent use; a nil *VIP records nothing, so callers need no
// checks when metrics are off.
type VIP struct {
	Scope, Backend string
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu          sync.Mutex
	start       time.Time
	held        float64
	transitions map[[2]string]float64 // direction, cause
	last        map[string]float64    // direction → seconds of the last one
	failures    map[string]float64    // direction → failed operations
	conflicts   float64
	waitSeconds float64
	dcsErrors   float64
	restErrors  float64
	requests    map[[2]string]float64 // op, result
	reqSeconds  map[string]float64    // op → total seconds
}

// Directions of transitions.
const (
	Hold    = "hold"
	Release = "release"
)

// Cause is what decided a transition: the cause label of
// pghook_vip_transitions_total.
type Cause string

// Causes of transitions.
const (
	CausePatroni  Cause = "patroni"  // Patroni's REST API decided
	CauseDCS      Cause = "dcs"      // the leader key decided
	CauseCallback Cause = "callback" // a callback asked over the control socket
	CauseGrace    Cause = "grace"    // neither answered past watch_grace
)

// NewVIP starts the figures of a watcher; its up time counts from now.
func NewVIP(scope, backend string, now func() time.Time) *VIP {
	if now == nil {
		now = time.Now
	}
	return &VIP{Scope: scope, Backend: backend, Now: now, start: now(),
		transitions: map[[2]string]float64{}, last: map[string]float64{}, failures: map[string]float64{},
		requests: map[[2]string]float64{}, reqSeconds: map[string]float64{}}
}

// Held records whether this node holds the VIP now.
func (v *VIP) Held(held bool) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.held = 0
	if held {
		v.held = 1
	}
}

// Transition records a hold or release that changed (or re-asserted) the
// VIP, why, and how long it took; err non-nil counts a failure instead.
func (v *VIP) Transition(direction string, cause Cause, took time.Duration, err error) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.failures[direction]++
		return
	}
	v.transitions[[2]string{direction, string(cause)}]++
	v.last[direction] = took.Seconds()
	v.held = 0
	if direction == Hold {
		v.held = 1
	}
}

// TakeoverWait records a probe that found another holder and how long the
// takeover then waited for it to let go.
func (v *VIP) TakeoverWait(waited time.Duration) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.conflicts++
	v.waitSeconds += waited.Seconds()
}

// DCSError and PatroniError count failed reads of the leader key and of
// Patroni's REST API.
func (v *VIP) DCSError() {
	if v == nil {
		return
	}
	v.mu.Lock()
	v.dcsErrors++
	v.mu.Unlock()
}

func (v *VIP) PatroniError() {
	if v == nil {
		return
	}
	v.mu.Lock()
	v.restErrors++
	v.mu.Unlock()
}

// Request records a callback's request over the control socket.
func (v *VIP) Request(op string, took time.Duration, err error) {
	if v == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.requests[[2]string{op, result}]++
	v.reqSeconds[op] += took.Seconds()
}

// Families returns the current figures.
func (v *VIP) Families() []Family {
	v.mu.Lock()
	defer v.mu.Unlock()
	base := func(extra ...string) []Label {
		return L(append([]string{"scope", v.Scope, "backend", v.Backend}, extra...)...)
	}
	fams := []Family{
		{Name: "pghook_vip_held", Help: "1 while this node holds the scope's VIP, else 0.", Type: Gauge,
			Samples: []Sample{{base(), v.held}}},
		{Name: "pghook_vip_watch_start_time_seconds", Help: "When the VIP watcher started (Unix time).", Type: Gauge,
			Samples: []Sample{{base(), float64(v.start.UnixNano()) / 1e9}}},
		{Name: "pghook_vip_watch_up_seconds", Help: "How long the VIP watcher has run.", Type: Gauge,
			Samples: []Sample{{base(), v.Now().Sub(v.start).Seconds()}}},
		{Name: "pghook_vip_probe_conflicts_total", Help: "Takeovers whose probe found another host still answering for the VIP.", Type: Counter,
			Samples: []Sample{{base(), v.conflicts}}},
		{Name: "pghook_vip_takeover_wait_seconds_total", Help: "Time takeovers waited for another holder to let go.", Type: Counter,
			Samples: []Sample{{base(), v.waitSeconds}}},
		{Name: "pghook_vip_dcs_errors_total", Help: "Failed reads of the DCS leader key.", Type: Counter,
			Samples: []Sample{{base(), v.dcsErrors}}},
		{Name: "pghook_vip_patroni_errors_total", Help: "Failed reads of the local Patroni REST API.", Type: Counter,
			Samples: []Sample{{base(), v.restErrors}}},
	}
	tr := Family{Name: "pghook_vip_transitions_total", Help: "VIP holds and releases by direction and cause (patroni, dcs, callback, grace).", Type: Counter}
	for _, dir := range []string{Hold, Release} {
		for _, cause := range []Cause{CausePatroni, CauseDCS, CauseCallback, CauseGrace} {
			tr.Samples = append(tr.Samples, Sample{base("direction", dir, "cause", string(cause)), v.transitions[[2]string{dir, string(cause)}]})
		}
	}
	last := Family{Name: "pghook_vip_last_transition_seconds", Help: "Duration of the last successful hold and release.", Type: Gauge}
	fail := Family{Name: "pghook_vip_failures_total", Help: "Holds and releases that failed (the watcher retries them).", Type: Counter}
	for _, dir := range []string{Hold, Release} {
		if s, ok := v.last[dir]; ok {
			last.Samples = append(last.Samples, Sample{base("direction", dir), s})
		}
		fail.Samples = append(fail.Samples, Sample{base("direction", dir), v.failures[dir]})
	}
	req := Family{Name: "pghook_vip_requests_total", Help: "Callbacks served over the control socket, by operation and result.", Type: Counter}
	reqS := Family{Name: "pghook_vip_request_seconds_total", Help: "Time spent serving callbacks over the control socket, by operation.", Type: Counter}
	keys := make([][2]string, 0, len(v.requests))
	for k := range v.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		req.Samples = append(req.Samples, Sample{base("op", k[0], "result", k[1]), v.requests[k]})
	}
	for _, op := range []string{Hold, Release} {
		reqS.Samples = append(reqS.Samples, Sample{base("op", op), v.reqSeconds[op]})
	}
	return append(fams, tr, last, fail, req, reqS)
}
