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

// Etcd2Reader returns the reader of the leader lock through etcd's v2
// keys API, for Patroni's etcd: section (etcd's official client speaks
// only the v3 API). Calls are bounded by timeout and by the caller's
// context.
func (c *Config) Etcd2Reader(timeout time.Duration) (*Etcd2Reader, error) {
	if c.Etcd == nil {
		return nil, fmt.Errorf("no key etcd in %s (the DCS is %q)", c.Path, c.DCS())
	}
	eps, err := c.Etcd.Endpoints()
	if err != nil {
		return nil, fmt.Errorf("key etcd in %s: %w", c.Path, err)
	}
	tr := &http.Transport{Proxy: nil}
	if c.Etcd.CACert != "" || c.Etcd.Cert != "" {
		tc, err := c.Etcd.TLSConfig()
		if err != nil {
			return nil, fmt.Errorf("key etcd in %s: %w", c.Path, err)
		}
		tr.TLSClientConfig = tc
	}
	return &Etcd2Reader{cfg: c, endpoints: eps, http: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// RestLeaderReader returns the reader of the leader lock through the local
// Patroni's /cluster: the view for DCSs pghook cannot read.
func (c *Config) RestLeaderReader(timeout time.Duration) (LeaderReader, error) {
	r, err := c.RestClient(timeout)
	if err != nil {
		return nil, err
	}
	return &restLeader{rest: r}, nil
}

// Etcd2Reader reads Patroni's keys through etcd's v2 keys API (Patroni's
// etcd: section), with quorum reads.
type Etcd2Reader struct {
	cfg       *Config
	endpoints []string
	http      *http.Client
}

func (l *Etcd2Reader) Source() string { return "etcd v2 " + l.cfg.LeaderKey() }

func (l *Etcd2Reader) Leader(ctx context.Context) (string, error) {
	return l.read(ctx, l.cfg.LeaderKey())
}

// Read returns the value of key from the first endpoint that answers;
// found is false when the key is absent (or empty).
func (l *Etcd2Reader) Read(ctx context.Context, key string) (value string, found bool, err error) {
	v, err := l.read(ctx, key)
	return v, err == nil && v != "", err
}

func (l *Etcd2Reader) read(ctx context.Context, key string) (string, error) {
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

func (l *Etcd2Reader) get(ctx context.Context, ep, key string) (string, error) {
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
