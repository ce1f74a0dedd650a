package patroni

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// MemberAPI is a member's name and REST address, as it registered itself
// in the DCS (/<namespace>/<scope>/members/<name>).
type MemberAPI struct {
	Name   string
	APIURL string
}

// ParseMembers reads the api_url of each member key (the keys and values
// below prefix, c.Key("members")+"/", as read from the DCS); keys that are
// not a member's JSON are skipped. Members are sorted by name.
func ParseMembers(prefix string, values map[string]string) []MemberAPI {
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

// List reads the keys of directory dir through the v2 keys API, from the
// first endpoint that answers; an absent directory is empty.
func (l *Etcd2Reader) List(ctx context.Context, dir string) (map[string]string, error) {
	m, err := firstAnswer(ctx, l.endpoints, func(ep string) (map[string]string, error) { return l.listOne(ctx, ep, dir) })
	if err != nil {
		return nil, fmt.Errorf("listing %s from etcd v2: %w", dir, err)
	}
	return m, nil
}

func (l *Etcd2Reader) listOne(ctx context.Context, ep, dir string) (map[string]string, error) {
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
