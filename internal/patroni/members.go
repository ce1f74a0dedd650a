package patroni

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// MemberAPI is a member's name and REST address, as it registered itself
// in the DCS (/<namespace>/<scope>/members/<name>).
type MemberAPI struct {
	Name   string
	APIURL string
}

// MemberAPIs lists the members of the cluster from the DCS, so that a
// client can ask another member's REST API when the local Patroni does not
// answer (as patronictl does). It reads etcd3 through the v3 API and etcd
// through the v2 keys API; other DCSs return an error wrapping
// ErrNoDCSReader. Members are sorted by name.
func (c *Config) MemberAPIs(ctx context.Context, timeout time.Duration) ([]MemberAPI, error) {
	prefix := c.Key("members") + "/"
	var values map[string]string
	switch c.DCS() {
	case "etcd3":
		cli, err := c.EtcdClient(timeout)
		if err != nil {
			return nil, err
		}
		defer cli.Close()
		if values, err = cli.getPrefix(ctx, prefix); err != nil {
			return nil, err
		}
	case "etcd":
		r, err := c.NewLeaderReader(timeout)
		if err != nil {
			return nil, err
		}
		if values, err = r.(*etcd2Leader).list(ctx, strings.TrimSuffix(prefix, "/")); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w (%q): cannot list the members", ErrNoDCSReader, c.DCS())
	}
	return parseMembers(prefix, values), nil
}

// parseMembers reads the api_url of each member key; keys below prefix
// that are not a member's JSON are skipped.
func parseMembers(prefix string, values map[string]string) []MemberAPI {
	var out []MemberAPI
	for k, v := range values {
		name := strings.TrimPrefix(k, prefix)
		if name == k || name == "" || strings.Contains(name, "/") {
			continue
		}
		var d struct {
			APIURL string `json:"api_url"`
		}
		if json.Unmarshal([]byte(v), &d) != nil || d.APIURL == "" {
			continue
		}
		out = append(out, MemberAPI{Name: name, APIURL: d.APIURL})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// getPrefix reads every key that starts with prefix (linearizable).
func (e *Etcd3) getPrefix(ctx context.Context, prefix string) (map[string]string, error) {
	end := []byte(prefix)
	end[len(end)-1]++ // prefix ends in "/": no carry
	req := map[string]any{
		"key":       base64.StdEncoding.EncodeToString([]byte(prefix)),
		"range_end": base64.StdEncoding.EncodeToString(end),
	}
	var resp struct {
		Kvs []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := e.call(ctx, "/kv/range", req, &resp); err != nil {
		return nil, fmt.Errorf("listing %s from etcd: %w", prefix, err)
	}
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		k, kerr := base64.StdEncoding.DecodeString(kv.Key)
		v, verr := base64.StdEncoding.DecodeString(kv.Value)
		if kerr != nil || verr != nil {
			return nil, fmt.Errorf("listing %s from etcd: a key or value is not base64", prefix)
		}
		out[string(k)] = string(v)
	}
	return out, nil
}

// list reads the keys of directory dir through the v2 keys API, from the
// first endpoint that answers; an absent directory is empty.
func (l *etcd2Leader) list(ctx context.Context, dir string) (map[string]string, error) {
	m, err := firstAnswer(ctx, l.endpoints, func(ep string) (map[string]string, error) { return l.listOne(ctx, ep, dir) })
	if err != nil {
		return nil, fmt.Errorf("listing %s from etcd v2: %w", dir, err)
	}
	return m, nil
}

func (l *etcd2Leader) listOne(ctx context.Context, ep, dir string) (map[string]string, error) {
	u := strings.TrimRight(ep, "/") + "/v2/keys" + (&url.URL{Path: dir}).EscapedPath() + "?recursive=true&quorum=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if l.cfg.Etcd.Username != "" {
		req.SetBasicAuth(l.cfg.Etcd.Username, l.cfg.Etcd.Password)
	}
	resp, err := l.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	var r struct {
		ErrorCode int `json:"errorCode"`
		Node      struct {
			Nodes []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"nodes"`
		} `json:"node"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if resp.StatusCode == http.StatusNotFound && r.ErrorCode == 100 {
		return map[string]string{}, nil
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	out := make(map[string]string, len(r.Node.Nodes))
	for _, n := range r.Node.Nodes {
		out[n.Key] = n.Value
	}
	return out, nil
}
