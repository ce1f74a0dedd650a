package netvip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/ctxtime"
)

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		want    vip
		wantErr string
	}{
		{
			name: "ipv4 defaults",
			s:    Settings{Address: "192.0.2.10/24", Interface: "eth0"},
			want: vip{prefix: netip.MustParsePrefix("192.0.2.10/24"), ifname: "eth0", rounds: 5, interval: time.Second, takeoverWait: 3 * time.Second, probeTimeout: defaultProbeTimeout},
		},
		{
			name: "full label kept",
			s:    Settings{Address: "192.0.2.10/24", Interface: "eth0", Label: "eth0:vip", Announcements: 2, AnnounceInterval: 2 * time.Second, TakeoverWait: -1},
			want: vip{prefix: netip.MustParsePrefix("192.0.2.10/24"), ifname: "eth0", label: "eth0:vip", rounds: 2, interval: 2 * time.Second, takeoverWait: -1, probeTimeout: defaultProbeTimeout},
		},
		{
			name: "short label gets the interface name",
			s:    Settings{Address: "192.0.2.10/24", Interface: "eth0", Label: "vip"},
			want: vip{prefix: netip.MustParsePrefix("192.0.2.10/24"), ifname: "eth0", label: "eth0:vip", rounds: 5, interval: time.Second, takeoverWait: 3 * time.Second, probeTimeout: defaultProbeTimeout},
		},
		{
			name: "ipv6 ignores the label",
			s:    Settings{Address: "2001:db8::10/64", Interface: "eth0", Label: "vip"},
			want: vip{prefix: netip.MustParsePrefix("2001:db8::10/64"), ifname: "eth0", rounds: 5, interval: time.Second, takeoverWait: 3 * time.Second, probeTimeout: defaultProbeTimeout},
		},
		{name: "no address", s: Settings{Interface: "eth0"}, wantErr: "no vip address configured"},
		{name: "not a cidr", s: Settings{Address: "192.0.2.10", Interface: "eth0"}, wantErr: `parsing vip address "192.0.2.10"`},
		{name: "garbage", s: Settings{Address: "192.0.2.300/24", Interface: "eth0"}, wantErr: `parsing vip address "192.0.2.300/24"`},
		{name: "multicast", s: Settings{Address: "224.0.0.1/24", Interface: "eth0"}, wantErr: "224.0.0.1/24 is not a unicast"},
		{name: "link-local v6", s: Settings{Address: "fe80::1/64", Interface: "eth0"}, wantErr: "fe80::1/64 is not a unicast"},
		{name: "no interface", s: Settings{Address: "192.0.2.10/24"}, wantErr: "vip 192.0.2.10/24: no interface configured"},
		{name: "bad interface", s: Settings{Address: "192.0.2.10/24", Interface: "eth0:vip"}, wantErr: `interface name "eth0:vip" is not valid`},
		{name: "long interface", s: Settings{Address: "192.0.2.10/24", Interface: "abcdefghijklmnop"}, wantErr: "longer than 15"},
		{name: "long label", s: Settings{Address: "192.0.2.10/24", Interface: "eth0", Label: "averylonglabel"}, wantErr: `label "eth0:averylonglabel" is longer`},
		{name: "negative announcements", s: Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: -1}, wantErr: "announcements -1 is negative"},
		{name: "negative interval", s: Settings{Address: "192.0.2.10/24", Interface: "eth0", AnnounceInterval: -time.Second}, wantErr: "interval -1s is negative"},
		{name: "too many announcements", s: Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: 2000}, wantErr: "announcements 2000: at most 30"},
		{name: "interval too short", s: Settings{Address: "192.0.2.10/24", Interface: "eth0", AnnounceInterval: time.Millisecond}, wantErr: "announce interval 1ms: want 100ms to 10s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSettings(tt.s)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewNetlinkBackend(t *testing.T) {
	b, err := New(Settings{Backend: "netlink", Address: "192.0.2.10/24", Interface: "eth0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "netlink" {
		t.Errorf("Name() = %q", b.Name())
	}
	if _, err := New(Settings{Backend: "netlink", Address: "nope", Interface: "eth0"}, testLogger(t)); err == nil {
		t.Error("New accepted a bad address")
	}
}

var otherMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}

func TestHold(t *testing.T) {
	v4 := Settings{Address: "192.0.2.10/24", Interface: "eth0", Label: "vip"}
	tests := []struct {
		name    string
		s       Settings
		setup   func(f *fakeSystem)
		want    string // ops
		wantErr string
	}{
		{
			name: "ipv4",
			s:    v4,
			want: `probe 192.0.2.10 dev eth0
addr replace 192.0.2.10/24 dev eth0 label eth0:vip noprefixroute
announce 192.0.2.10 dev eth0
announcer --interface eth0 --address 192.0.2.10 --rounds 4 --interval 1s --delay 1s`,
		},
		{
			name: "ipv6",
			s:    Settings{Address: "2001:db8::10/64", Interface: "eth0", Announcements: 3, AnnounceInterval: 2 * time.Second},
			want: `probe 2001:db8::10 dev eth0
addr replace 2001:db8::10/64 dev eth0 noprefixroute nodad
announce 2001:db8::10 dev eth0
announcer --interface eth0 --address 2001:db8::10 --rounds 2 --interval 2s --delay 2s`,
		},
		{
			name:  "already held: no probe, refresh and announce",
			s:     v4,
			setup: func(f *fakeSystem) { f.setAddr("eth0", addrInfo{Prefix: netip.MustParsePrefix("192.0.2.10/24")}) },
			want: `addr replace 192.0.2.10/24 dev eth0 label eth0:vip noprefixroute
announce 192.0.2.10 dev eth0
announcer --interface eth0 --address 192.0.2.10 --rounds 4 --interval 1s --delay 1s`,
		},
		{
			name: "waits while the old holder answers",
			s:    Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: 1},
			setup: func(f *fakeSystem) {
				f.probeFn = func(n int) (net.HardwareAddr, bool, error) { return otherMAC, n < 3, nil }
			},
			want: `probe 192.0.2.10 dev eth0
probe 192.0.2.10 dev eth0
probe 192.0.2.10 dev eth0
addr replace 192.0.2.10/24 dev eth0 noprefixroute
announce 192.0.2.10 dev eth0`,
		},
		{
			name: "probe failure does not block the takeover",
			s:    Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: 1},
			setup: func(f *fakeSystem) {
				f.probeFn = func(int) (net.HardwareAddr, bool, error) { return nil, false, errors.New("operation not permitted") }
			},
			want: `probe 192.0.2.10 dev eth0
addr replace 192.0.2.10/24 dev eth0 noprefixroute
announce 192.0.2.10 dev eth0`,
		},
		{
			name: "negative takeover wait skips the probe",
			s:    Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: 1, TakeoverWait: -1},
			want: `addr replace 192.0.2.10/24 dev eth0 noprefixroute
announce 192.0.2.10 dev eth0`,
		},
		{
			name:    "missing interface",
			s:       Settings{Address: "192.0.2.10/24", Interface: "eth9"},
			wantErr: "adding vip 192.0.2.10/24 to eth9: interface eth9: no such interface",
		},
		{
			name:  "address does not stick",
			s:     v4,
			setup: func(f *fakeSystem) { f.hideAdds = true },
			want: `probe 192.0.2.10 dev eth0
addr replace 192.0.2.10/24 dev eth0 label eth0:vip noprefixroute`,
			wantErr: "not usable: 192.0.2.10/24 not on eth0",
		},
		{
			name:  "dad failed",
			s:     Settings{Address: "2001:db8::10/64", Interface: "eth0"},
			setup: func(f *fakeSystem) { f.addFlags = ifaDADFailed },
			want: `probe 2001:db8::10 dev eth0
addr replace 2001:db8::10/64 dev eth0 noprefixroute nodad`,
			wantErr: "duplicate address detection failed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWith(tt.setup)
			n := newTestBackend(t, tt.s, f)
			err := n.Hold(context.Background())
			checkErr(t, err, tt.wantErr)
			if got := f.Ops(); got != tt.want {
				t.Errorf("ops:\n%s\nwant:\n%s", got, tt.want)
			}
			if tt.wantErr == "" {
				st, err := n.Status(context.Background())
				if err != nil || !st.Held {
					t.Errorf("Status after Hold = %+v, %v; want held", st, err)
				}
			}
		})
	}
}

func TestHoldTakesOverAfterTheBound(t *testing.T) {
	f := newFake()
	f.probeFn = func(int) (net.HardwareAddr, bool, error) { return otherMAC, true, nil }
	n := newTestBackend(t, Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: 1, TakeoverWait: 50 * time.Millisecond}, f)
	start := time.Now()
	if err := n.Hold(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 50*time.Millisecond || took > 2*time.Second {
		t.Errorf("Hold took %v, want about the 50ms takeover wait", took)
	}
	ops := f.Ops()
	if f.probes < 2 || !strings.HasSuffix(ops, "addr replace 192.0.2.10/24 dev eth0 noprefixroute\nannounce 192.0.2.10 dev eth0") {
		t.Errorf("%d probes, ops:\n%s", f.probes, ops)
	}
}

// A takeover that met another holder reports how long it waited; one that
// met nobody reports nothing.
func TestHoldReportsTakeoverWaits(t *testing.T) {
	for _, tt := range []struct {
		name     string
		answers  int // probes answered by another host before it lets go
		wantWait bool
	}{
		{name: "nobody answers", answers: 0},
		{name: "the old holder lets go after two probes", answers: 2, wantWait: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.probeFn = func(i int) (net.HardwareAddr, bool, error) { return otherMAC, i <= tt.answers, nil }
			var waits []time.Duration
			n := newTestBackend(t, Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: 1, TakeoverWait: time.Second}, f)
			WithTakeoverWaits(func(d time.Duration) { waits = append(waits, d) })(n)
			if err := n.Hold(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := len(waits) == 1; got != tt.wantWait || len(waits) > 1 {
				t.Fatalf("waits reported %v, want one: %t", waits, tt.wantWait)
			}
		})
	}
}

// While another host answers, the pauses between probes start short and
// double up to probeEvery: a switchover's old holder lets go milliseconds
// after the new one's first probe.
func TestProbePause(t *testing.T) {
	n := &Netlink{probeEvery: probeEvery}
	var got []time.Duration
	var sum time.Duration
	for i := 1; i <= 8; i++ {
		got = append(got, n.probePause(i))
		sum += n.probePause(i)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 100, 100, 100}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("pauses %v, want %v ms", got, want)
		}
	}
	if sum > 500*time.Millisecond {
		t.Fatalf("8 pauses take %v: more probes than a 100 ms period would send in the first half second", sum)
	}
	n.probeEvery = time.Millisecond // the tests' setting: never above it
	if p := n.probePause(1); p != time.Millisecond {
		t.Fatalf("first pause %v with probeEvery 1ms", p)
	}
}

func TestHoldStopsWaitingWhenCancelled(t *testing.T) {
	f := newFake()
	f.probeFn = func(int) (net.HardwareAddr, bool, error) { return otherMAC, true, nil }
	n := newTestBackend(t, Settings{Address: "192.0.2.10/24", Interface: "eth0", TakeoverWait: time.Hour}, f)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := n.Hold(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hold = %v, want deadline exceeded", err)
	}
	if strings.Contains(f.Ops(), "addr replace") {
		t.Errorf("added the vip after the context ended:\n%s", f.Ops())
	}
}

func TestRelease(t *testing.T) {
	held := func(f *fakeSystem) {
		f.setAddr("eth0", addrInfo{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Label: "eth0:vip"})
	}
	tests := []struct {
		name    string
		s       Settings
		setup   func(f *fakeSystem)
		want    string
		wantErr string
	}{
		{name: "held", s: Settings{Address: "192.0.2.10/24", Interface: "eth0", Label: "vip"}, setup: held, want: "addr del 192.0.2.10/24 dev eth0"},
		{name: "not held", s: Settings{Address: "192.0.2.10/24", Interface: "eth0"}, want: ""},
		{
			name: "other prefix length is not the vip",
			s:    Settings{Address: "192.0.2.10/24", Interface: "eth0"},
			setup: func(f *fakeSystem) {
				f.setAddr("eth0", addrInfo{Prefix: netip.MustParsePrefix("192.0.2.10/32")})
			},
			want: "",
		},
		{
			name:  "kernel says already gone",
			s:     Settings{Address: "192.0.2.10/24", Interface: "eth0"},
			setup: func(f *fakeSystem) { held(f); f.delErr = errEADDRNOTAVAIL },
			want:  "addr del 192.0.2.10/24 dev eth0",
		},
		{
			name:    "kernel refuses",
			s:       Settings{Address: "192.0.2.10/24", Interface: "eth0"},
			setup:   func(f *fakeSystem) { held(f); f.delErr = errors.New("operation not permitted") },
			want:    "addr del 192.0.2.10/24 dev eth0",
			wantErr: "removing vip 192.0.2.10/24 from eth0: operation not permitted",
		},
		{name: "interface gone", s: Settings{Address: "192.0.2.10/24", Interface: "eth9"}, want: ""},
		{
			name:  "ipv6",
			s:     Settings{Address: "2001:db8::10/64", Interface: "eth0"},
			setup: func(f *fakeSystem) { f.setAddr("eth0", addrInfo{Prefix: netip.MustParsePrefix("2001:db8::10/64")}) },
			want:  "addr del 2001:db8::10/64 dev eth0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWith(tt.setup)
			n := newTestBackend(t, tt.s, f)
			checkErr(t, n.Release(context.Background()), tt.wantErr)
			if got := f.Ops(); got != tt.want {
				t.Errorf("ops:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestHoldReleaseTwice(t *testing.T) {
	f := newFake()
	n := newTestBackend(t, Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: 1}, f)
	ctx := context.Background()
	for _, step := range []struct {
		do   func(context.Context) error
		held bool
	}{{n.Hold, true}, {n.Hold, true}, {n.Release, false}, {n.Release, false}, {n.Hold, true}} {
		if err := step.do(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := n.Status(ctx)
		if err != nil || st.Held != step.held {
			t.Fatalf("Status = %+v, %v; want held %t", st, err, step.held)
		}
	}
	want := `probe 192.0.2.10 dev eth0
addr replace 192.0.2.10/24 dev eth0 noprefixroute
announce 192.0.2.10 dev eth0
addr replace 192.0.2.10/24 dev eth0 noprefixroute
announce 192.0.2.10 dev eth0
addr del 192.0.2.10/24 dev eth0
probe 192.0.2.10 dev eth0
addr replace 192.0.2.10/24 dev eth0 noprefixroute
announce 192.0.2.10 dev eth0`
	if got := f.Ops(); got != want {
		t.Errorf("ops:\n%s\nwant:\n%s", got, want)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name  string
		s     Settings
		addrs []addrInfo
		want  Status
	}{
		{name: "held with label", s: Settings{Address: "192.0.2.10/24", Interface: "eth0"},
			addrs: []addrInfo{{Prefix: netip.MustParsePrefix("192.0.2.1/24")}, {Prefix: netip.MustParsePrefix("192.0.2.10/24"), Label: "eth0:vip"}},
			want:  Status{Held: true, Detail: "192.0.2.10/24 on eth0 label eth0:vip"}},
		{name: "not held", s: Settings{Address: "192.0.2.10/24", Interface: "eth0"},
			addrs: []addrInfo{{Prefix: netip.MustParsePrefix("192.0.2.1/24")}},
			want:  Status{Detail: "192.0.2.10/24 not on eth0"}},
		{name: "tentative", s: Settings{Address: "2001:db8::10/64", Interface: "eth0"},
			addrs: []addrInfo{{Prefix: netip.MustParsePrefix("2001:db8::10/64"), Flags: ifaTentative}},
			want:  Status{Detail: "2001:db8::10/64 on eth0 but tentative (duplicate address detection running)"}},
		{name: "no interface", s: Settings{Address: "192.0.2.10/24", Interface: "eth9"},
			want: Status{Detail: "192.0.2.10/24 not held: interface eth9 does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			for _, a := range tt.addrs {
				f.setAddr("eth0", a)
			}
			got, err := newTestBackend(t, tt.s, f).Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAnnounceStopsWhenAddressGone(t *testing.T) {
	f := newFake()
	p := netip.MustParsePrefix("192.0.2.10/24")
	f.setAddr("eth0", addrInfo{Prefix: p})
	f.onAnnounce = func(f *fakeSystem) {
		if f.announces == 2 {
			f.dropAddr("eth0", p)
		}
	}
	r := AnnounceRequest{Interface: "eth0", Addr: p.Addr(), Rounds: 10, Interval: time.Millisecond}
	if err := announce(context.Background(), f, r, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if f.announces != 2 {
		t.Errorf("%d rounds sent, want 2 (stop once the address is gone)", f.announces)
	}
}

func TestAnnounceRounds(t *testing.T) {
	f := newFake()
	f.setAddr("eth0", addrInfo{Prefix: netip.MustParsePrefix("2001:db8::10/64")})
	r := AnnounceRequest{Interface: "eth0", Addr: netip.MustParseAddr("2001:db8::10"), Rounds: 3, Interval: 20 * time.Millisecond, Delay: 10 * time.Millisecond}
	start := time.Now()
	if err := (InProcess{Log: testLogger(t), sys: f}).Announce(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("3 rounds took %v, want at least delay + 2 intervals = 50ms", took)
	}
	want := "announce 2001:db8::10 dev eth0\nannounce 2001:db8::10 dev eth0\nannounce 2001:db8::10 dev eth0"
	if got := f.Ops(); got != want {
		t.Errorf("ops:\n%s\nwant:\n%s", got, want)
	}
}

func TestBackgroundAnnouncer(t *testing.T) {
	f := newFake()
	f.setAddr("eth0", addrInfo{Prefix: netip.MustParsePrefix("192.0.2.10/24")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := AnnounceRequest{Interface: "eth0", Addr: vip4, Rounds: 2, Interval: 50 * time.Millisecond, Delay: 50 * time.Millisecond}
	if err := (Background{Ctx: ctx, Log: testLogger(t), sys: f}).Announce(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got := f.Ops(); got != "" {
		t.Errorf("Announce did not return before the first round: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.Ops() != "announce 192.0.2.10 dev eth0\nannounce 192.0.2.10 dev eth0" {
		if time.Now().After(deadline) {
			t.Fatalf("rounds after 5s: %q", f.Ops())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAnnounceArgsRoundTrip(t *testing.T) {
	r := AnnounceRequest{Interface: "eth0", Addr: netip.MustParseAddr("2001:db8::10"), Rounds: 4, Interval: 1500 * time.Millisecond, Delay: time.Second}
	got, err := ParseAnnounceArgs(r.Args())
	if err != nil {
		t.Fatal(err)
	}
	if got != r {
		t.Errorf("got %+v, want %+v", got, r)
	}
	for _, bad := range [][]string{
		{"--interface", "eth0"},
		{"--interface", "eth0", "--address", "192.0.2.300"},
		{"--address", "192.0.2.10"},
		{"--interface", "eth0", "--address", "192.0.2.10", "--rounds", "-1"},
		{"--interface", "eth0", "--address", "192.0.2.10", "extra"},
		{"--nope"},
		// Bounded: a caller cannot flood the link.
		{"--interface", "eth0", "--address", "192.0.2.10", "--rounds", "2000", "--interval", "1s"},
		{"--interface", "eth0", "--address", "192.0.2.10", "--rounds", "5", "--interval", "0s"},
		{"--interface", "eth0", "--address", "192.0.2.10", "--rounds", "5", "--interval", "1h"},
		{"--interface", "eth0", "--address", "192.0.2.10", "--delay", "1h"},
	} {
		if _, err := ParseAnnounceArgs(bad); err == nil {
			t.Errorf("ParseAnnounceArgs(%q) accepted it", bad)
		}
	}
}

func TestCapEff(t *testing.T) {
	tests := []struct {
		name, status string
		want         uint64
		wantErr      bool
	}{
		{name: "root", status: "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n", want: 0x1ffffffffff},
		{name: "net admin and raw", status: "CapEff:\t0000000000003000\n", want: 0x3000},
		{name: "none", status: "CapEff:\t0000000000000000\n"},
		{name: "missing", status: "Name:\tx\n", wantErr: true},
		{name: "garbage", status: "CapEff:\tzz\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := capEff(strings.NewReader(tt.status))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("capEff = %#x, %v; want %#x, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
	HaveCaps() // must not panic wherever it runs
}

func newTestBackend(t *testing.T, s Settings, f *fakeSystem) *Netlink {
	t.Helper()
	v, err := parseSettings(s)
	if err != nil {
		t.Fatal(err)
	}
	n := newNetlink(v, f, testLogger(t))
	n.ann = recAnnouncer{f}
	n.probeEvery = time.Millisecond
	return n
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error = %v, want one containing %q", err, want)
	}
}

func TestHoldIfGate(t *testing.T) {
	errNo := errors.New("the leader key names another member")
	tests := []struct {
		name      string
		gate      Gate
		probeWait time.Duration // how long the fake probe takes
		wantErr   error
		wantAdd   bool
		maxTook   time.Duration // gate and probe run at the same time
	}{
		{
			name:    "gate passes: added",
			gate:    func(context.Context) error { return nil },
			wantAdd: true,
		},
		{
			name:    "gate refuses: nothing changed",
			gate:    func(context.Context) error { return errNo },
			wantErr: errNo,
		},
		{
			name:      "gate runs while the probe waits",
			gate:      func(ctx context.Context) error { return ctxtime.Sleep(ctx, 150*time.Millisecond) },
			probeWait: 150 * time.Millisecond,
			wantAdd:   true,
			maxTook:   270 * time.Millisecond, // one after the other: >= 300 ms
		},
		{
			name: "slow refusal after a quick probe: nothing changed",
			gate: func(ctx context.Context) error {
				if err := ctxtime.Sleep(ctx, 20*time.Millisecond); err != nil {
					return err
				}
				return errNo
			},
			wantErr: errNo,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.probeFn = func(int) (net.HardwareAddr, bool, error) {
				time.Sleep(tt.probeWait)
				return nil, false, nil
			}
			n := newTestBackend(t, Settings{Address: "192.0.2.10/24", Interface: "eth0", Announcements: 1}, f)
			start := time.Now()
			err := n.HoldIf(context.Background(), tt.gate)
			took := time.Since(start)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("HoldIf = %v, want %v", err, tt.wantErr)
			}
			added := strings.Contains(f.Ops(), "addr replace")
			if added != tt.wantAdd {
				t.Errorf("added = %t, want %t; ops:\n%s", added, tt.wantAdd, f.Ops())
			}
			if f.probes == 0 {
				t.Errorf("no probe: the gate must not replace the address probe")
			}
			if tt.maxTook > 0 && took > tt.maxTook {
				t.Errorf("HoldIf took %v: gate and probe ran one after the other (want < %v)", took, tt.maxTook)
			}
		})
	}
}

// A refusal of the gate (the leader key names another member) ends the wait
// for another holder at once instead of after takeover_wait: a stale
// callback must not linger (and then overwrite the roster after newer ones).
func TestHoldIfRefusalCutsTheTakeoverWait(t *testing.T) {
	f := newFake()
	f.probeFn = func(int) (net.HardwareAddr, bool, error) { return otherMAC, true, nil }
	n := newTestBackend(t, Settings{Address: "192.0.2.10/24", Interface: "eth0", TakeoverWait: 3 * time.Second}, f)
	errNo := errors.New("the leader key names n1")
	start := time.Now()
	err := n.HoldIf(context.Background(), func(ctx context.Context) error {
		if err := ctxtime.Sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
		return errNo
	})
	if !errors.Is(err, errNo) {
		t.Fatalf("HoldIf = %v, want the gate's refusal", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("HoldIf took %v: it waited for the other holder after the gate refused", took)
	}
	if strings.Contains(f.Ops(), "addr replace") {
		t.Errorf("added the vip although the gate refused:\n%s", f.Ops())
	}
}

// newFakeWith is a fake system that setup (if any) has prepared.
func newFakeWith(setup func(*fakeSystem)) *fakeSystem {
	f := newFake()
	if setup != nil {
		setup(f)
	}
	return f
}
