package patroni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// LeaderReader reads who holds the leader lock: "" means nobody.
type LeaderReader interface {
	Leader(ctx context.Context) (string, error)
	Source() string
}

// NewLeaderReader returns the view of the leader lock that fits the DCS
// section of c: the etcd v3 API for etcd3, the v2 keys API for etcd, and
// the local Patroni's /cluster otherwise. Calls are bounded by timeout and
// by the caller's context.
func (c *Config) NewLeaderReader(timeout time.Duration) (LeaderReader, error) {
	switch c.DCS() {
	case "etcd3":
		cli, err := c.EtcdClient(timeout)
		if err != nil {
			return nil, err
		}
		return &etcd3Leader{cfg: c, cli: cli}, nil
	case "etcd":
		eps, err := c.Etcd.Endpoints()
		if err != nil {
			return nil, fmt.Errorf("key etcd in %s: %w", c.Path, err)
		}
		tr := &http.Transport{Proxy: nil}
		if c.Etcd.CACert != "" || c.Etcd.Cert != "" {
			tc, err := tlsConfig(c.Etcd)
			if err != nil {
				return nil, fmt.Errorf("key etcd in %s: %w", c.Path, err)
			}
			tr.TLSClientConfig = tc
		}
		return &etcd2Leader{cfg: c, endpoints: eps, http: &http.Client{Transport: tr, Timeout: timeout}}, nil
	}
	r, err := c.RestClient(timeout)
	if err != nil {
		return nil, err
	}
	return &restLeader{rest: r}, nil
}

type etcd3Leader struct {
	cfg *Config
	cli *Etcd3
}

func (l *etcd3Leader) Leader(ctx context.Context) (string, error) { return l.cfg.Leader(ctx, l.cli) }
func (l *etcd3Leader) Source() string                             { return "etcd3 " + l.cfg.LeaderKey() }

// etcd2Leader reads the leader key through etcd's v2 keys API (Patroni's
// etcd: section), with a quorum read.
type etcd2Leader struct {
	cfg       *Config
	endpoints []string
	http      *http.Client
}

func (l *etcd2Leader) Source() string { return "etcd v2 " + l.cfg.LeaderKey() }

func (l *etcd2Leader) Leader(ctx context.Context) (string, error) {
	return l.read(ctx, l.cfg.LeaderKey())
}

// read returns the value of key ("" when absent) from the first endpoint
// that answers.
func (l *etcd2Leader) read(ctx context.Context, key string) (string, error) {
	v, err := firstAnswer(ctx, l.endpoints, func(ep string) (string, error) { return l.get(ctx, ep, key) })
	if err != nil {
		return "", fmt.Errorf("reading %s from etcd v2: %w", key, err)
	}
	return v, nil
}

// firstAnswer calls f for each endpoint in turn and returns the first
// success, or every endpoint's error; it stops early when ctx ends.
func firstAnswer[T any](ctx context.Context, endpoints []string, f func(ep string) (T, error)) (T, error) {
	var errs []error
	for _, ep := range endpoints {
		v, err := f(ep)
		if err == nil {
			return v, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
		if ctx.Err() != nil {
			break
		}
	}
	var zero T
	return zero, errors.Join(errs...)
}

func (l *etcd2Leader) get(ctx context.Context, ep, key string) (string, error) {
	u := strings.TrimRight(ep, "/") + "/v2/keys" + (&url.URL{Path: key}).EscapedPath() + "?quorum=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	if l.cfg.Etcd.Username != "" {
		req.SetBasicAuth(l.cfg.Etcd.Username, l.cfg.Etcd.Password)
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var r struct {
		ErrorCode int `json:"errorCode"`
		Node      struct {
			Value string `json:"value"`
		} `json:"node"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if resp.StatusCode == http.StatusNotFound && r.ErrorCode == 100 {
		return "", nil // key not found: nobody holds the lock
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return r.Node.Value, nil
}

// restLeader asks the local Patroni's /cluster for the member whose role is
// leader (or standby_leader). It is the view for DCSs pghook cannot read.
type restLeader struct{ rest *Rest }

func (l *restLeader) Source() string { return "patroni " + l.rest.base + "/cluster" }

func (l *restLeader) Leader(ctx context.Context) (string, error) {
	code, body, err := l.rest.get(ctx, "/cluster")
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("GET %s/cluster: HTTP %d", l.rest.base, code)
	}
	var c struct {
		Members []struct {
			Name string `json:"name"`
			Role string `json:"role"`
		} `json:"members"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return "", fmt.Errorf("GET %s/cluster: %w", l.rest.base, err)
	}
	for _, m := range c.Members {
		if m.Role == "leader" || m.Role == "standby_leader" {
			return m.Name, nil
		}
	}
	return "", nil
}

// ErrNoDCSReader is returned by ReadKey for a DCS pghook cannot read.
var ErrNoDCSReader = errors.New("patroni: this DCS cannot be read by pghook")

// ReadKey reads /<namespace>/<scope>/<name> from the DCS of patroni.yml
// (etcd3 through the v3 API, etcd through the v2 keys API). found is false
// when the key does not exist.
func (c *Config) ReadKey(ctx context.Context, timeout time.Duration, name string) (value string, found bool, err error) {
	switch c.DCS() {
	case "etcd3":
		cli, err := c.EtcdClient(timeout)
		if err != nil {
			return "", false, err
		}
		defer cli.Close()
		return cli.Get(ctx, c.Key(name))
	case "etcd":
		r, err := c.NewLeaderReader(timeout)
		if err != nil {
			return "", false, err
		}
		v, err := r.(*etcd2Leader).read(ctx, c.Key(name))
		return v, err == nil && v != "", err
	}
	return "", false, fmt.Errorf("%w (%q)", ErrNoDCSReader, c.DCS())
}
