package patroni

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Rest is a client of one member's Patroni REST API.
type Rest struct {
	base string
	http *http.Client
	auth *BasicAuth
}

// RestClient returns a client of this member's REST API (restapi section:
// connect_address or listen, TLS when certfile is set). timeout bounds
// each request.
func (c *Config) RestClient(timeout time.Duration) (*Rest, error) {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second}
	if c.RestAPI.CertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.RestAPI.CAFile != "" {
			pem, err := os.ReadFile(c.RestAPI.CAFile)
			if err != nil {
				return nil, fmt.Errorf("key restapi.cafile in %s: %w", c.Path, err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tc.RootCAs = pool
		} else {
			// The member's own API, addressed by IP: the certificate names
			// the host, not the address we dial.
			tc.InsecureSkipVerify = true //nolint:gosec // local member, read-only GET
		}
		tr.TLSClientConfig = tc
	}
	if timeout <= 0 {
		timeout = time.Second
	}
	return &Rest{base: c.RestURL(), http: &http.Client{Transport: tr, Timeout: timeout}, auth: c.RestAPI.Auth}, nil
}

// Base is the base URL.
func (r *Rest) Base() string { return r.base }

// Close releases idle connections.
func (r *Rest) Close() { r.http.CloseIdleConnections() }

// ErrNoAnswer wraps a REST call that got no HTTP answer (Patroni down,
// hung, or unreachable).
var ErrNoAnswer = errors.New("patroni: REST API did not answer")

// PrimaryStatus is what GET /primary tells about this member: the code
// says whether Patroni holds the leader lock (in memory, as Patroni last
// saw the DCS), the body what PostgreSQL does. Patroni 3.0.2 sends the same
// body as GET /patroni: state (running, stopping, stopped, starting,
// restarting, crashed, unknown…) and role — while PostgreSQL runs, from
// pg_is_in_recovery() (master or replica); while it does not, Patroni's own
// (master, demoted, replica…).
type PrimaryStatus struct {
	Leader bool   // HTTP 200: Patroni holds the leader lock
	State  string // PostgreSQL's state as Patroni sees it; "" when the body had none
	Role   string
}

// Running reports whether PostgreSQL runs (or the body did not say).
func (s PrimaryStatus) Running() bool { return s.State == "" || s.State == "running" }

// Primary asks GET /primary. Any outcome but 200 or 503 is an error
// wrapping ErrNoAnswer (no answer) or naming the code.
func (r *Rest) Primary(ctx context.Context) (PrimaryStatus, error) {
	code, body, err := r.get(ctx, "/primary")
	if err != nil {
		return PrimaryStatus{}, err
	}
	if code != http.StatusOK && code != http.StatusServiceUnavailable {
		return PrimaryStatus{}, fmt.Errorf("GET %s/primary: unexpected HTTP %d", r.base, code)
	}
	st := PrimaryStatus{Leader: code == http.StatusOK}
	var b struct {
		State string `json:"state"`
		Role  string `json:"role"`
	}
	if json.Unmarshal(body, &b) == nil {
		st.State, st.Role = b.State, b.Role
	}
	return st, nil
}

// IsPrimary asks GET /primary: 200 means this member holds the leader lock
// and runs as a read-write primary; 503 means it does not. A 200 whose body
// says PostgreSQL is not running (Patroni keeps role master while it stops
// PostgreSQL — an isolated primary's shutdown waits for its unreachable
// replicas for many seconds) counts as not primary: nobody can write there.
// Any other outcome is an error wrapping ErrNoAnswer (no answer) or naming
// the code.
func (r *Rest) IsPrimary(ctx context.Context) (bool, error) {
	st, err := r.Primary(ctx)
	if err != nil {
		return false, err
	}
	return st.Leader && st.Running(), nil
}

// ServesReads asks GET /replica: 200 means PostgreSQL runs here as a
// replica and the member is not tagged noloadbalance (the check load
// balancers use to send read-only clients); 503 means it is not such a
// replica. Any other outcome is an error wrapping ErrNoAnswer (no answer)
// or naming the code.
func (r *Rest) ServesReads(ctx context.Context) (bool, error) {
	code, _, err := r.get(ctx, "/replica")
	if err != nil {
		return false, err
	}
	switch code {
	case http.StatusOK:
		return true, nil
	case http.StatusServiceUnavailable:
		return false, nil
	}
	return false, fmt.Errorf("GET %s/replica: unexpected HTTP %d", r.base, code)
}

// Status is the part of GET /patroni that pghook reads.
type Status struct {
	State   string `json:"state"`
	Role    string `json:"role"`
	Patroni struct {
		Version string `json:"version"`
		Scope   string `json:"scope"`
		Name    string `json:"name"`
	} `json:"patroni"`
	SystemID string `json:"database_system_identifier"`
	Timeline int    `json:"timeline"`
}

// Status returns GET /patroni.
func (r *Rest) Status(ctx context.Context) (*Status, error) {
	code, body, err := r.get(ctx, "/patroni")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s/patroni: HTTP %d", r.base, code)
	}
	var s Status
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("GET %s/patroni: %w", r.base, err)
	}
	return &s, nil
}

func (r *Rest) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if r.auth != nil && r.auth.Username != "" {
		req.SetBasicAuth(r.auth.Username, r.auth.Password)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: GET %s%s: %v", ErrNoAnswer, r.base, path, strings.TrimPrefix(err.Error(), "Get "))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: GET %s%s: %v", ErrNoAnswer, r.base, path, err)
	}
	return resp.StatusCode, b, nil
}

// ClusterMember is one entry of GET /cluster (Patroni's cluster_as_json).
type ClusterMember struct {
	Name     string `json:"name"`
	Role     string `json:"role"` // leader, standby_leader, sync_standby, replica
	State    string `json:"state"`
	APIURL   string `json:"api_url"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Timeline int    `json:"timeline"`
	// Lag is the replay lag in bytes behind the cluster's last LSN; nil
	// for the leader and when Patroni reports it as "unknown".
	Lag *int64 `json:"-"`
	// LagUnknown is set when Patroni reported "unknown".
	LagUnknown bool `json:"-"`
}

// UnmarshalJSON reads lag, which Patroni sends as a number or "unknown".
func (m *ClusterMember) UnmarshalJSON(b []byte) error {
	type plain ClusterMember
	var v struct {
		plain
		Lag json.RawMessage `json:"lag"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = ClusterMember(v.plain)
	switch lag := strings.TrimSpace(string(v.Lag)); {
	case lag == "" || lag == "null":
	case strings.HasPrefix(lag, `"`):
		m.LagUnknown = true
	default:
		var n json.Number
		if err := json.Unmarshal(v.Lag, &n); err != nil {
			return fmt.Errorf("lag %s: %w", lag, err)
		}
		i, err := n.Int64()
		if err != nil {
			f, ferr := n.Float64()
			if ferr != nil {
				return fmt.Errorf("lag %s: %w", lag, err)
			}
			i = int64(f)
		}
		m.Lag = &i
	}
	return nil
}

// Cluster is GET /cluster: every member as the DCS shows it.
type Cluster struct {
	Members []ClusterMember `json:"members"`
	Pause   bool            `json:"pause"`
}

// Cluster returns GET /cluster.
func (r *Rest) Cluster(ctx context.Context) (*Cluster, error) {
	code, body, err := r.get(ctx, "/cluster")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s/cluster: HTTP %d", r.base, code)
	}
	var cl Cluster
	if err := json.Unmarshal(body, &cl); err != nil {
		return nil, fmt.Errorf("GET %s/cluster: %w", r.base, err)
	}
	return &cl, nil
}

// Replica is one row of a primary's pg_stat_replication, as GET /patroni
// shows it.
type Replica struct {
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
}

// Replication returns the replication section of GET /patroni: the
// replicas streaming from this member (empty on a replica).
func (r *Rest) Replication(ctx context.Context) ([]Replica, error) {
	code, body, err := r.get(ctx, "/patroni")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK && code != http.StatusServiceUnavailable {
		return nil, fmt.Errorf("GET %s/patroni: HTTP %d", r.base, code)
	}
	var s struct {
		Replication []Replica `json:"replication"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("GET %s/patroni: %w", r.base, err)
	}
	return s.Replication, nil
}

// RestClientAt returns a client of another member's REST API at apiURL
// (a member's api_url such as http://10.0.0.2:8008/patroni; the path is
// dropped), with this member's TLS and authentication settings: Patroni
// members of one cluster share them.
func (c *Config) RestClientAt(apiURL string, timeout time.Duration) (*Rest, error) {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("member REST address %q is not an http(s) URL", apiURL)
	}
	r, err := c.RestClient(timeout)
	if err != nil {
		return nil, err
	}
	r.base = u.Scheme + "://" + u.Host
	return r, nil
}
