package patroni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// WatchLeader blocks until ctx ends or the watch breaks, calling changed
// once the watch is established and after every change of the leader key
// (written, deleted, or expired with its ttl), over the v2 keys API
// (long-polling GET ?wait=true, whose expire events also wake watchers).
// A nil error is returned only when ctx ended.
func (l *Etcd2Reader) WatchLeader(ctx context.Context, changed func()) error {
	return l.watch(ctx, l.cfg.LeaderKey(), changed)
}

// watch long-polls key on the first endpoint that answers.
func (l *Etcd2Reader) watch(ctx context.Context, key string, changed func()) error {
	var errs []error
	for _, ep := range l.endpoints {
		err := l.watchOne(ctx, ep, key, changed)
		if ctx.Err() != nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
	}
	return fmt.Errorf("watching %s in etcd v2: %w", key, errors.Join(errs...))
}

func (l *Etcd2Reader) watchOne(ctx context.Context, ep, key string, changed func()) error {
	base := strings.TrimRight(ep, "/") + "/v2/keys" + (&url.URL{Path: key}).EscapedPath()
	// Where to start: the store's index now, so nothing between this read
	// and the first wait is missed.
	_, index, err := l.do(ctx, base, -1)
	if err != nil {
		return err
	}
	changed()
	for {
		next, _, err := l.do(ctx, base, index+1)
		if errors.Is(err, errIndexCleared) {
			if _, index, err = l.do(ctx, base, -1); err != nil {
				return err
			}
			changed()
			continue
		}
		if err != nil {
			return err
		}
		index = next
		changed()
	}
}

var errIndexCleared = errors.New("etcd v2: the watched index was cleared")

// do GETs base; with waitIndex >= 0 it waits for the next change at or
// after waitIndex and returns that event's modifiedIndex; with -1 it reads
// and returns the store's X-Etcd-Index.
func (l *Etcd2Reader) do(ctx context.Context, base string, waitIndex int64) (modified, storeIndex int64, err error) {
	u := base
	cli := l.http
	if waitIndex >= 0 {
		u += "?wait=true&waitIndex=" + strconv.FormatInt(waitIndex, 10)
		cli = &http.Client{Transport: l.http.Transport} // no timeout: a wait lasts until a change
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	if l.cfg.Etcd.Username != "" {
		req.SetBasicAuth(l.cfg.Etcd.Username, l.cfg.Etcd.Password)
	}
	resp, err := cli.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, 0, err
	}
	var r struct {
		ErrorCode int    `json:"errorCode"`
		Message   string `json:"message"`
		Node      struct {
			ModifiedIndex int64 `json:"modifiedIndex"`
		} `json:"node"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	storeIndex, _ = strconv.ParseInt(resp.Header.Get("X-Etcd-Index"), 10, 64)
	switch {
	case r.ErrorCode == 401:
		return 0, storeIndex, errIndexCleared
	case waitIndex < 0 && (resp.StatusCode/100 == 2 || r.ErrorCode == 100):
		return 0, storeIndex, nil // read (key not found is fine)
	case resp.StatusCode/100 != 2:
		return 0, storeIndex, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return r.Node.ModifiedIndex, storeIndex, nil
}
