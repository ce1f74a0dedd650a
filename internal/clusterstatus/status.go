// Package clusterstatus gathers what `pghook status` shows for a Patroni
// scope: the members with their roles, states, timelines and lag (from a
// member's REST API /cluster), the leader key (from the DCS), and which
// host answers for the VIP; and it renders that as a patronictl-style
// table or JSON, with an exit code for monitoring. It only reads: it
// never moves the VIP or writes what Patroni owns.
package clusterstatus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pghook/pghook/internal/patroni"
)

// Exit codes of `pghook status`, for monitoring. With several scopes the
// highest code of any scope is the result.
const (
	// CodeOK: the cluster has a leader and the VIP (if the scope has
	// one) answers on the leader's host only.
	CodeOK = 0
	// CodeUnknown: no member's REST API answered, or where the VIP is could
	// not be found out.
	CodeUnknown = 1
	// CodeVIPNotOnLeader: the VIP answers on nobody, or on another host
	// than the leader's.
	CodeVIPNotOnLeader = 3
	// CodeNoLeader: nobody holds the leader lock.
	CodeNoLeader = 4
	// CodeVIPOnTwoHosts: more than one host answers for the VIP.
	CodeVIPOnTwoHosts = 5
)

// Report is the status of one scope: one element of "scopes" in what
// WriteJSON prints.
type Report struct {
	Scope string `json:"scope"`
	// Source is the REST API that answered /cluster ("" when none did).
	Source string `json:"source"`
	// Leader is the member named by the DCS leader key ("": nobody), or,
	// when the DCS could not be read, the member /cluster shows as leader.
	Leader       string   `json:"leader"`
	LeaderSource string   `json:"leader_source"`
	Paused       bool     `json:"paused"`
	Members      []Member `json:"members"`
	// VIP is nil when the scope has no VIP (backend none).
	VIP *VIP `json:"vip"`
	// Problems say, in words, why ExitCode is not 0.
	Problems []string `json:"problems"`
	ExitCode int      `json:"exit_code"`
}

// Member is one row of the table.
type Member struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Port     int    `json:"port,omitempty"`
	Role     string `json:"role"` // as Patroni's /cluster says: leader, replica, sync_standby, standby_leader
	State    string `json:"state"`
	Timeline int    `json:"timeline,omitempty"`
	// LagBytes is the replay lag behind the cluster's last LSN: null for
	// the leader and when Patroni does not know it (LagUnknown).
	LagBytes   *int64 `json:"lag_bytes"`
	LagUnknown bool   `json:"lag_unknown,omitempty"`
	// VIP is set when this member's host answers for the VIP.
	VIP bool `json:"vip"`
	// Local marks the member this host runs.
	Local bool `json:"local,omitempty"`

	apiURL string
}

// VIP says who answers for the scope's VIP.
type VIP struct {
	Backend   string `json:"backend"`
	Address   string `json:"address,omitempty"`
	Interface string `json:"interface,omitempty"`
	Resource  string `json:"resource,omitempty"`
	// HeldLocally reports whether this host holds it.
	HeldLocally bool `json:"held_locally"`
	// Holders is every host seen answering for it (netlink: this host if
	// it holds it, and every MAC that answered the ARP / NS probe; pcs:
	// the nodes crm_resource --locate names).
	Holders []Holder `json:"holders"`
	// Answer is the summary: a member name, "nobody", "N hosts!", or
	// "unknown" when Error is set.
	Answer string `json:"answer"`
	Error  string `json:"error,omitempty"`
}

// Holder is one host that answers for the VIP.
type Holder struct {
	// Member is the member whose host it is, "" when it is none of them.
	Member string `json:"member,omitempty"`
	MAC    string `json:"mac,omitempty"`  // netlink: who answered
	Node   string `json:"node,omitempty"` // pcs: the Pacemaker node
	IP     string `json:"ip,omitempty"`   // dns: an address the name resolves to
	Local  bool   `json:"local,omitempty"`
}

// label names a holder for the summary line.
func (h Holder) label() string {
	switch {
	case h.Member != "":
		return h.Member
	case h.Node != "":
		return "node " + h.Node
	case h.IP != "":
		return "address " + h.IP
	case h.MAC != "":
		return "MAC " + h.MAC
	case h.Local:
		return "this host"
	}
	return "?"
}

// API is a member's REST API (patroni.Rest).
type API interface {
	Base() string
	Cluster(ctx context.Context) (*patroni.Cluster, error)
	Replication(ctx context.Context) ([]patroni.Replica, error)
}

// VIPView finds out who answers for the VIP. members are the cluster's
// members, to name the holders (empty when no REST API answered).
type VIPView interface {
	Look(ctx context.Context, members []Member) (*VIP, error)
}

// Inputs are the sources of one scope's report.
type Inputs struct {
	Scope string
	// Me is this host's member name (patroni.yml's name).
	Me string
	// Local is this member's REST API.
	Local API
	// Others lists the other members' REST APIs (from the DCS), asked in
	// order when Local does not answer. Nil: no fallback.
	Others func(ctx context.Context) ([]API, error)
	// At returns a client of the REST API at a member's api_url, to ask
	// the leader which replicas stream from it. Nil: not asked.
	At func(apiURL string) (API, error)
	// Leader reads the DCS leader key; nil when it cannot be read.
	Leader patroni.LeaderReader
	// VIP is nil when the scope has no VIP.
	VIP VIPView
	// StandbyLeaderVIP: a standby cluster's leader should hold the VIP.
	StandbyLeaderVIP bool
}

// Gather builds the report of one scope. It always returns a report;
// what it could not read is in Problems and ExitCode.
func Gather(ctx context.Context, in Inputs) *Report {
	r := &Report{Scope: in.Scope, Members: []Member{}, Problems: []string{}}
	var (
		wg         sync.WaitGroup
		keyLeader  string
		keyErr     error
		cl         *patroni.Cluster
		api        API
		clusterErr error
	)
	if in.Leader != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keyLeader, keyErr = in.Leader.Leader(ctx)
		}()
	} else {
		keyErr = errors.New("the DCS cannot be read")
	}
	cl, api, clusterErr = cluster(ctx, in)
	wg.Wait()

	if cl != nil {
		r.Source = api.Base()
		r.Paused = cl.Pause
		r.Members = members(cl, in.Me)
	} else {
		r.Problems = append(r.Problems, fmt.Sprintf("no Patroni REST API answered: %v", clusterErr))
	}
	switch {
	case keyErr == nil:
		r.Leader = keyLeader
		r.LeaderSource = in.Leader.Source()
	case cl != nil:
		r.Leader = clusterLeader(r.Members)
		r.LeaderSource = "patroni " + r.Source + "/cluster"
		r.Problems = append(r.Problems, fmt.Sprintf("leader key unread (%v): leader taken from /cluster", keyErr))
	default:
		r.Problems = append(r.Problems, fmt.Sprintf("leader key unread: %v", keyErr))
	}
	if cl != nil {
		markStreaming(ctx, in, api, r)
	}
	if in.VIP != nil {
		v, err := in.VIP.Look(ctx, r.Members)
		if v == nil {
			v = &VIP{}
		}
		if err != nil {
			v.Error = err.Error()
			v.Answer = "unknown"
		}
		r.VIP = v
		for i, h := range v.Holders {
			if h.Local && h.Member == "" {
				v.Holders[i].Member = in.Me // named even when no REST API answered
			}
		}
		for i := range r.Members {
			for _, h := range v.Holders {
				if h.Member != "" && h.Member == r.Members[i].Name {
					r.Members[i].VIP = true
				}
			}
		}
	}
	judge(r, in.StandbyLeaderVIP, cl != nil)
	return r
}

// cluster asks the local REST API, then the others, for /cluster.
func cluster(ctx context.Context, in Inputs) (*patroni.Cluster, API, error) {
	var errs []error
	if in.Local != nil {
		cl, err := in.Local.Cluster(ctx)
		if err == nil {
			return cl, in.Local, nil
		}
		errs = append(errs, err)
	}
	if in.Others != nil {
		others, err := in.Others(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("finding the other members: %w", err))
		}
		for _, o := range others {
			if in.Local != nil && o.Base() == in.Local.Base() {
				continue
			}
			cl, err := o.Cluster(ctx)
			if err == nil {
				return cl, o, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no REST API to ask"))
	}
	return nil, nil, errors.Join(errs...)
}

func members(cl *patroni.Cluster, me string) []Member {
	out := make([]Member, 0, len(cl.Members))
	for _, m := range cl.Members {
		out = append(out, Member{Name: m.Name, Host: m.Host, Port: m.Port, Role: m.Role, State: m.State,
			Timeline: m.Timeline, LagBytes: m.Lag, LagUnknown: m.LagUnknown, Local: m.Name == me, apiURL: m.APIURL})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func isLeaderRole(role string) bool {
	return role == "leader" || role == "standby_leader" || role == "master" || role == "primary"
}

func clusterLeader(ms []Member) string {
	for _, m := range ms {
		if isLeaderRole(m.Role) {
			return m.Name
		}
	}
	return ""
}

// markStreaming asks the leader which replicas stream from it and shows
// them as "streaming" where Patroni (before 3.0.4) says only "running".
func markStreaming(ctx context.Context, in Inputs, answered API, r *Report) {
	var leader *Member
	for i := range r.Members {
		if isLeaderRole(r.Members[i].Role) {
			leader = &r.Members[i]
		}
	}
	if leader == nil {
		return
	}
	api := answered
	if !(leader.Local && in.Local != nil && answered == in.Local) {
		if in.At == nil || leader.apiURL == "" {
			return
		}
		a, err := in.At(leader.apiURL)
		if err != nil {
			return
		}
		api = a
	}
	reps, err := api.Replication(ctx)
	if err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("replication state unread from the leader %s: %v", leader.Name, err))
		return
	}
	for i := range r.Members {
		m := &r.Members[i]
		if isLeaderRole(m.Role) || m.State != "running" {
			continue
		}
		for _, rep := range reps {
			if rep.ApplicationName == m.Name && rep.State == "streaming" {
				m.State = "streaming"
			}
		}
	}
}

// judge sets Problems and ExitCode from what was gathered.
func judge(r *Report, standbyLeaderVIP, haveCluster bool) {
	code := CodeOK
	raise := func(c int, msg string) {
		code = max(code, c)
		r.Problems = append(r.Problems, msg)
	}
	if !haveCluster {
		code = max(code, CodeUnknown)
	}
	if r.Leader == "" && (haveCluster || r.LeaderSource != "") {
		raise(CodeNoLeader, "no leader: nobody holds the leader lock")
	} else if r.Leader == "" {
		code = max(code, CodeUnknown)
	}
	if v := r.VIP; v != nil {
		want := r.Leader
		for _, m := range r.Members {
			if m.Name == r.Leader && m.Role == "standby_leader" && !standbyLeaderVIP {
				want = "" // standby_leader_vip: false, the VIP stays down
			}
		}
		switch {
		case v.Error != "":
			raise(CodeUnknown, "VIP: "+v.Error)
		case len(v.Holders) > 1:
			raise(CodeVIPOnTwoHosts, fmt.Sprintf("the VIP answers on %d hosts: %s", len(v.Holders), holderList(v.Holders)))
		case r.Leader == "":
		case want == "" && len(v.Holders) == 1:
			raise(CodeVIPNotOnLeader, fmt.Sprintf("the VIP answers on %s, but the standby leader %s should not hold it (standby_leader_vip: false)", holderList(v.Holders), r.Leader))
		case want != "" && len(v.Holders) == 0:
			raise(CodeVIPNotOnLeader, fmt.Sprintf("nobody answers for the VIP; the leader is %s", r.Leader))
		case want != "" && v.Holders[0].Member != want:
			raise(CodeVIPNotOnLeader, fmt.Sprintf("the VIP answers on %s, not on the leader %s", holderList(v.Holders), want))
		}
		if v.Answer == "" {
			switch len(v.Holders) {
			case 0:
				v.Answer = "nobody"
			case 1:
				v.Answer = v.Holders[0].label()
			default:
				v.Answer = fmt.Sprintf("%d hosts!", len(v.Holders))
			}
		}
	}
	r.ExitCode = code
}

func holderList(hs []Holder) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.label()
	}
	return strings.Join(s, ", ")
}

// ExitCode is the highest exit code of the reports.
func ExitCode(rs []*Report) int {
	code := CodeOK
	for _, r := range rs {
		code = max(code, r.ExitCode)
	}
	return code
}

// Timeout bounds how long one scope's report may take by default.
const Timeout = 5 * time.Second
