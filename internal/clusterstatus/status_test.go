package clusterstatus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/netvip"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeAPI answers like one member's REST API.
type fakeAPI struct {
	base    string
	cluster *patroni.Cluster
	reps    []patroni.Replica
	err     error
	asked   int
}

func (f *fakeAPI) Base() string { return f.base }
func (f *fakeAPI) Cluster(context.Context) (*patroni.Cluster, error) {
	f.asked++
	if f.err != nil {
		return nil, f.err
	}
	return f.cluster, nil
}
func (f *fakeAPI) Replication(context.Context) ([]patroni.Replica, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.reps, nil
}

type fakeLeader struct {
	name string
	err  error
}

func (f fakeLeader) Leader(context.Context) (string, error) { return f.name, f.err }
func (f fakeLeader) Source() string                         { return "etcd3 /service/pg/leader" }

// fakeVIP returns a fixed answer.
type fakeVIP struct {
	v   *VIP
	err error
}

func (f fakeVIP) Look(context.Context, []Member) (*VIP, error) { return f.v, f.err }

func i64(v int64) *int64 { return &v }

// threeNodes is a healthy cluster as Patroni 3.0.2 reports it: replicas
// "running", n3 lagging 5 MiB.
func threeNodes() *patroni.Cluster {
	return &patroni.Cluster{Members: []patroni.ClusterMember{
		{Name: "n1", Role: "leader", State: "running", APIURL: "http://10.0.0.11:8008/patroni", Host: "10.0.0.11", Port: 5432, Timeline: 2},
		{Name: "n2", Role: "replica", State: "running", APIURL: "http://10.0.0.12:8008/patroni", Host: "10.0.0.12", Port: 5432, Timeline: 2, Lag: i64(0)},
		{Name: "n3", Role: "sync_standby", State: "running", APIURL: "http://10.0.0.13:8008/patroni", Host: "10.0.0.13", Port: 5432, Timeline: 2, Lag: i64(5 << 20)},
	}}
}

var streaming = []patroni.Replica{{ApplicationName: "n2", State: "streaming"}, {ApplicationName: "n3", State: "streaming", SyncState: "sync"}}

func vipOn(holders ...Holder) fakeVIP {
	return fakeVIP{v: &VIP{Backend: "netlink", Address: "10.0.0.100/24", Interface: "eth0", Holders: holders,
		HeldLocally: len(holders) > 0 && holders[0].Local}}
}

func TestGatherExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		local    *fakeAPI
		leader   fakeLeader
		vip      VIPView
		standby  bool
		want     int
		problems []string // substrings, in order
		answer   string
	}{
		{name: "healthy, VIP on the leader (this host)", leader: fakeLeader{name: "n1"},
			vip: vipOn(Holder{Member: "n1", Local: true}), want: CodeOK, answer: "n1"},
		{name: "no VIP configured", leader: fakeLeader{name: "n1"}, want: CodeOK},
		{name: "VIP on a replica", leader: fakeLeader{name: "n1"},
			vip: vipOn(Holder{Member: "n2", MAC: "02:00:00:00:00:02"}), want: CodeVIPNotOnLeader,
			problems: []string{"the VIP answers on n2, not on the leader n1"}, answer: "n2"},
		{name: "VIP nowhere", leader: fakeLeader{name: "n1"}, vip: vipOn(), want: CodeVIPNotOnLeader,
			problems: []string{"nobody answers for the VIP; the leader is n1"}, answer: "nobody"},
		{name: "VIP on an unknown MAC", leader: fakeLeader{name: "n1"}, vip: vipOn(Holder{MAC: "02:00:00:00:00:99"}),
			want: CodeVIPNotOnLeader, problems: []string{"MAC 02:00:00:00:00:99, not on the leader n1"}, answer: "MAC 02:00:00:00:00:99"},
		{name: "VIP on two hosts", leader: fakeLeader{name: "n1"},
			vip:  vipOn(Holder{Member: "n1", Local: true}, Holder{Member: "n3", MAC: "02:00:00:00:00:03"}),
			want: CodeVIPOnTwoHosts, problems: []string{"the VIP answers on 2 hosts: n1, n3"}, answer: "2 hosts!"},
		{name: "no leader", leader: fakeLeader{name: ""}, vip: vipOn(), want: CodeNoLeader,
			problems: []string{"no leader"}, answer: "nobody"},
		{name: "no leader and VIP on two hosts", leader: fakeLeader{name: ""},
			vip:  vipOn(Holder{Member: "n1", Local: true}, Holder{Member: "n2"}),
			want: CodeVIPOnTwoHosts, problems: []string{"no leader", "2 hosts"}},
		{name: "VIP unknown", leader: fakeLeader{name: "n1"}, vip: fakeVIP{err: errors.New("helper missing")},
			want: CodeUnknown, problems: []string{"VIP: helper missing"}, answer: "unknown"},
		{name: "no REST API answers", local: &fakeAPI{base: "http://127.0.0.1:8008", err: patroni.ErrNoAnswer},
			leader: fakeLeader{name: "n1"}, vip: vipOn(Holder{Member: "", Local: true}), want: CodeUnknown,
			problems: []string{"no Patroni REST API answered"}},
		{name: "DCS unreadable: leader from /cluster", leader: fakeLeader{err: errors.New("etcd down")},
			vip: vipOn(Holder{Member: "n1", Local: true}), want: CodeOK, problems: []string{"leader key unread (etcd down): leader taken from /cluster"}},
		{name: "standby leader without standby_leader_vip holds no VIP", leader: fakeLeader{name: "n1"}, vip: vipOn(),
			want: CodeOK, answer: "nobody"},
		{name: "standby leader with standby_leader_vip", leader: fakeLeader{name: "n1"}, standby: true,
			vip: vipOn(Holder{Member: "n1", Local: true}), want: CodeOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := threeNodes()
			if strings.HasPrefix(tt.name, "standby leader") {
				cl.Members[0].Role = "standby_leader"
			}
			local := tt.local
			if local == nil {
				local = &fakeAPI{base: "http://127.0.0.1:8008", cluster: cl, reps: streaming}
			}
			in := Inputs{Scope: "pg", Me: "n1", Local: local, Leader: tt.leader, VIP: tt.vip, StandbyLeaderVIP: tt.standby}
			r := Gather(context.Background(), in)
			if r.ExitCode != tt.want {
				t.Errorf("exit code %d, want %d; problems %q", r.ExitCode, tt.want, r.Problems)
			}
			if len(r.Problems) != len(tt.problems) {
				t.Errorf("problems %q, want %d like %q", r.Problems, len(tt.problems), tt.problems)
			}
			for i, p := range tt.problems {
				if i < len(r.Problems) && !strings.Contains(r.Problems[i], p) {
					t.Errorf("problem %d = %q, want it to say %q", i, r.Problems[i], p)
				}
			}
			if tt.answer != "" && (r.VIP == nil || r.VIP.Answer != tt.answer) {
				t.Errorf("VIP answer %+v, want %q", r.VIP, tt.answer)
			}
		})
	}
}

func TestGatherFallsBackToAnotherMember(t *testing.T) {
	local := &fakeAPI{base: "http://10.0.0.11:8008", err: patroni.ErrNoAnswer}
	n2 := &fakeAPI{base: "http://10.0.0.12:8008", err: patroni.ErrNoAnswer}
	n3 := &fakeAPI{base: "http://10.0.0.13:8008", cluster: threeNodes(), reps: streaming}
	leaderAPI := &fakeAPI{base: "http://10.0.0.11:8008", reps: streaming}
	var atURL string
	in := Inputs{Scope: "pg", Me: "n1", Local: local, Leader: fakeLeader{name: "n1"},
		Others: func(context.Context) ([]API, error) { return []API{local, n2, n3}, nil },
		At:     func(u string) (API, error) { atURL = u; return leaderAPI, nil },
	}
	r := Gather(context.Background(), in)
	if r.Source != n3.base || len(r.Members) != 3 || r.ExitCode != CodeOK {
		t.Fatalf("source %q, %d members, code %d, problems %q; want n3's answer", r.Source, len(r.Members), r.ExitCode, r.Problems)
	}
	if local.asked != 1 || n2.asked != 1 || n3.asked != 1 {
		t.Errorf("asked local %d, n2 %d, n3 %d times; want each once (local not twice)", local.asked, n2.asked, n3.asked)
	}
	// The leader is not the member that answered: its own API says who streams.
	if atURL != "http://10.0.0.11:8008/patroni" || r.Members[1].State != "streaming" {
		t.Errorf("asked %q for replication; n2 state %q", atURL, r.Members[1].State)
	}
	if !r.Members[0].Local || r.Members[1].Local {
		t.Errorf("local flags: %+v", r.Members)
	}

	// Nobody answers, and the DCS cannot list members.
	in.Others = func(context.Context) ([]API, error) { return nil, errors.New("consul: cannot list") }
	n3.err = patroni.ErrNoAnswer
	r = Gather(context.Background(), in)
	if r.ExitCode != CodeUnknown || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "consul: cannot list") || !strings.Contains(r.Problems[0], "did not answer") {
		t.Fatalf("code %d problems %q", r.ExitCode, r.Problems)
	}
}

func TestMarkStreamingOnlyWhatTheLeaderSees(t *testing.T) {
	local := &fakeAPI{base: "l", cluster: threeNodes(), reps: []patroni.Replica{{ApplicationName: "n2", State: "streaming"}, {ApplicationName: "n3", State: "catchup"}}}
	r := Gather(context.Background(), Inputs{Scope: "pg", Me: "n1", Local: local, Leader: fakeLeader{name: "n1"}})
	got := []string{r.Members[0].State, r.Members[1].State, r.Members[2].State}
	if want := []string{"running", "streaming", "running"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("states %q, want %q", got, want)
	}
}

func TestMapAnswers(t *testing.T) {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	a := netip.MustParseAddr
	neigh := []netvip.Neighbour{
		{Addr: a("10.0.0.12"), MAC: mac("02:00:00:00:00:02")},
		{Addr: a("10.0.0.13"), MAC: mac("02:00:00:00:00:03")},
		{Addr: a("fe80::3"), MAC: mac("02:00:00:00:00:03")},
		{Addr: a("10.0.0.1"), MAC: mac("02:00:00:00:00:fe")}, // the gateway: no member
	}
	addrs := map[string][]netip.Addr{"n2": {a("10.0.0.12")}, "n3": {a("10.0.0.13")}, "n4": {a("10.0.0.14")}}
	tests := []struct {
		name    string
		answers []string
		want    []Holder
	}{
		{"nobody", nil, []Holder{}},
		{"a member", []string{"02:00:00:00:00:03"}, []Holder{{Member: "n3", MAC: "02:00:00:00:00:03"}}},
		{"two members", []string{"02:00:00:00:00:02", "02:00:00:00:00:03"},
			[]Holder{{Member: "n2", MAC: "02:00:00:00:00:02"}, {Member: "n3", MAC: "02:00:00:00:00:03"}}},
		{"not a member (the gateway's MAC)", []string{"02:00:00:00:00:fe"}, []Holder{{MAC: "02:00:00:00:00:fe"}}},
		{"a MAC with no neighbour entry", []string{"02:00:00:00:00:77"}, []Holder{{MAC: "02:00:00:00:00:77"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms []net.HardwareAddr
			for _, s := range tt.answers {
				ms = append(ms, mac(s))
			}
			if got := MapAnswers(ms, neigh, addrs); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNetlinkViewLook(t *testing.T) {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	ms := members(threeNodes(), "n1")
	var dialed []string
	view := func(held bool, answers ...string) NetlinkView {
		return NetlinkView{
			Prefix: netip.MustParsePrefix("10.0.0.100/24"), Interface: "eth0",
			Held: func(context.Context) (bool, error) { return held, nil },
			Ask: func(context.Context) ([]net.HardwareAddr, error) {
				var out []net.HardwareAddr
				for _, a := range answers {
					out = append(out, mac(a))
				}
				return out, nil
			},
			Neighbours: func(string) ([]netvip.Neighbour, error) {
				return []netvip.Neighbour{{Addr: netip.MustParseAddr("10.0.0.13"), MAC: mac("02:00:00:00:00:03")}}, nil
			},
			Dial: func(_ context.Context, hp string) error { dialed = append(dialed, hp); return nil },
		}
	}
	v, err := view(true, "02:00:00:00:00:03").Look(context.Background(), ms)
	if err != nil {
		t.Fatal(err)
	}
	want := []Holder{{Member: "n1", Local: true}, {Member: "n3", MAC: "02:00:00:00:00:03"}}
	if !v.HeldLocally || !reflect.DeepEqual(v.Holders, want) {
		t.Fatalf("holders %+v, want %+v", v.Holders, want)
	}
	// The REST ports of the other members were dialled (not this host's).
	for _, hp := range dialed {
		if strings.HasPrefix(hp, "10.0.0.11:") {
			t.Errorf("dialled this host's member: %v", dialed)
		}
	}
	if !strings.Contains(strings.Join(dialed, " "), "10.0.0.12:8008") || !strings.Contains(strings.Join(dialed, " "), "10.0.0.13:8008") {
		t.Errorf("dialled %v, want the REST ports of n2 and n3", dialed)
	}
	v, err = view(false).Look(context.Background(), ms)
	if err != nil || v.HeldLocally || len(v.Holders) != 0 {
		t.Fatalf("nobody: %+v %v", v, err)
	}
	bad := view(false)
	bad.Ask = func(context.Context) ([]net.HardwareAddr, error) { return nil, errors.New("no CAP_NET_RAW") }
	if _, err := bad.Look(context.Background(), ms); err == nil || !strings.Contains(err.Error(), "no CAP_NET_RAW") {
		t.Fatalf("probe failure: %v", err)
	}
}

func TestPcsViewLook(t *testing.T) {
	ms := members(threeNodes(), "n1")
	tests := []struct {
		name string
		on   []string
		self string
		want []Holder
	}{
		{"on this node", []string{"n1"}, "n1", []Holder{{Member: "n1", Node: "n1", Local: true}}},
		{"on another member by host", []string{"10.0.0.12"}, "n1", []Holder{{Member: "n2", Node: "10.0.0.12"}}},
		{"this node under another name", []string{"db-a"}, "db-a", []Holder{{Member: "n1", Node: "db-a", Local: true}}},
		{"stopped", nil, "n1", []Holder{}},
		{"unknown node", []string{"other"}, "n1", []Holder{{Node: "other"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := PcsView{Resource: "vip", Locate: func(context.Context) ([]string, string, error) { return tt.on, tt.self, nil }}.Look(context.Background(), ms)
			if err != nil || !reflect.DeepEqual(v.Holders, tt.want) {
				t.Fatalf("got %+v %v, want %+v", v.Holders, err, tt.want)
			}
		})
	}
}

func TestExitCodeIsTheHighest(t *testing.T) {
	tests := []struct {
		codes []int
		want  int
	}{{nil, 0}, {[]int{0, 0}, 0}, {[]int{0, 3}, 3}, {[]int{5, 1, 4}, 5}, {[]int{1, 0}, 1}}
	for _, tt := range tests {
		var rs []*Report
		for _, c := range tt.codes {
			rs = append(rs, &Report{ExitCode: c})
		}
		if got := ExitCode(rs); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.codes, got, tt.want)
		}
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", p, got, want)
	}
}

// sampleReports are two scopes on one host, each with its own VIP: one
// healthy, one with its VIP on two hosts.
func sampleReports() []*Report {
	ok := Gather(context.Background(), Inputs{Scope: "pg", Me: "n1",
		Local:  &fakeAPI{base: "http://10.0.0.11:8008", cluster: threeNodes(), reps: streaming},
		Leader: fakeLeader{name: "n1"}, VIP: vipOn(Holder{Member: "n1", Local: true})})
	cl := threeNodes()
	for i := range cl.Members {
		cl.Members[i].Port = 5433
	}
	cl.Members[2].Lag, cl.Members[2].LagUnknown = nil, true
	bad := Gather(context.Background(), Inputs{Scope: "billing", Me: "n1",
		Local:  &fakeAPI{base: "http://10.0.0.11:8009", cluster: cl},
		Leader: fakeLeader{name: "n1"},
		VIP: fakeVIP{v: &VIP{Backend: "netlink", Address: "10.0.0.101/24", Interface: "eth0", HeldLocally: true,
			Holders: []Holder{{Member: "n1", Local: true}, {Member: "n2", MAC: "02:00:00:00:00:02"}}}}})
	return []*Report{ok, bad}
}

func TestWriteTableGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sampleReports()); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.txt", b.Bytes())

	// Without a VIP there is no VIP column or line; no REST answer: no rows.
	noVIP := Gather(context.Background(), Inputs{Scope: "plain", Me: "n1",
		Local: &fakeAPI{base: "http://127.0.0.1:8008", err: patroni.ErrNoAnswer}, Leader: fakeLeader{err: errors.New("etcd down")}})
	b.Reset()
	WriteTable(&b, []*Report{noVIP})
	golden(t, "status-unknown.txt", b.Bytes())
}

func TestWriteJSONShape(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleReports()); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.json", b.Bytes())
	var doc struct {
		Scopes []struct {
			Scope    string   `json:"scope"`
			Leader   string   `json:"leader"`
			ExitCode *int     `json:"exit_code"`
			Problems []string `json:"problems"`
			Members  []struct {
				Name     string `json:"name"`
				Role     string `json:"role"`
				State    string `json:"state"`
				LagBytes *int64 `json:"lag_bytes"`
				VIP      *bool  `json:"vip"`
			} `json:"members"`
			VIP *struct {
				Answer  string `json:"answer"`
				Holders []struct {
					Member string `json:"member"`
				} `json:"holders"`
			} `json:"vip"`
		} `json:"scopes"`
		ExitCode *int `json:"exit_code"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Scopes) != 2 || doc.ExitCode == nil || *doc.ExitCode != CodeVIPOnTwoHosts {
		t.Fatalf("scopes/exit_code: %+v", doc)
	}
	s := doc.Scopes[0]
	if s.Scope != "pg" || s.Leader != "n1" || *s.ExitCode != 0 || s.Problems == nil || len(s.Members) != 3 ||
		s.Members[0].LagBytes != nil || *s.Members[2].LagBytes != 5<<20 || s.Members[1].State != "streaming" ||
		!*s.Members[0].VIP || *s.Members[1].VIP || s.VIP == nil || s.VIP.Answer != "n1" {
		t.Fatalf("first scope: %+v", s)
	}
	if a := doc.Scopes[1].VIP.Answer; a != "2 hosts!" {
		t.Fatalf("second scope's VIP answer %q", a)
	}
	// An empty report list is still one object.
	b.Reset()
	WriteJSON(&b, nil)
	if strings.TrimSpace(b.String()) != "{\n  \"scopes\": [],\n  \"exit_code\": 0\n}" {
		t.Fatalf("empty: %s", b.String())
	}
}

func TestRoleTitle(t *testing.T) {
	for in, want := range map[string]string{"leader": "Leader", "sync_standby": "Sync Standby", "standby_leader": "Standby Leader", "": ""} {
		if got := roleTitle(in); got != want {
			t.Errorf("roleTitle(%q) = %q, want %q", in, got, want)
		}
	}
}
