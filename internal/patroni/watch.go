package patroni

import (
	"context"
	"encoding/base64"
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
// (written, deleted, or expired with its lease). It is how `pghook vip
// watch` learns within milliseconds that the lock moved, instead of at its
// next poll. A nil error is returned only when ctx ended.
func (l *etcd3Leader) WatchLeader(ctx context.Context, changed func()) error {
	return l.cli.Watch(ctx, l.cfg.LeaderKey(), changed)
}

// WatchLeader implements the same contract over the v2 keys API
// (long-polling GET ?wait=true), whose expire events also wake watchers.
func (l *etcd2Leader) WatchLeader(ctx context.Context, changed func()) error {
	return l.watch(ctx, l.cfg.LeaderKey(), changed)
}

// Watch streams changes of key from the first endpoint that accepts the
// watch (POST <prefix>/watch on the JSON gateway) and calls changed for
// the creation of the watch and for each batch of events. The request is
// bounded by ctx only: a watch stays open for as long as nothing changes.
func (e *Etcd3) Watch(ctx context.Context, key string, changed func()) error {
	var errs []error
	for _, ep := range e.endpoints {
		err := e.watchOne(ctx, ep, key, changed)
		if ctx.Err() != nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
	}
	return fmt.Errorf("watching %s in etcd: %w", key, errors.Join(errs...))
}

func (e *Etcd3) watchOne(ctx context.Context, ep, key string, changed func()) error {
	e.mu.Lock()
	prefix := e.prefix
	e.mu.Unlock()
	if prefix == "" {
		prefix = "/v3"
	}
	if e.user != "" {
		if err := e.authenticate(ctx, ep, prefix); err != nil {
			return err
		}
	}
	req, err := e.request(ctx, ep, prefix, "/watch", map[string]any{"create_request": map[string]any{
		"key": base64.StdEncoding.EncodeToString([]byte(key)),
	}})
	if err != nil {
		return err
	}
	// The shared client's timeout would cut the stream: same transport,
	// no timeout.
	resp, err := (&http.Client{Transport: e.http.Transport}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if e.user != "" && strings.Contains(string(b), "invalid auth token") {
			e.mu.Lock()
			e.token = ""
			e.mu.Unlock()
		}
		return &statusError{code: resp.StatusCode, body: string(b)}
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Result *struct {
				Created  bool              `json:"created"`
				Canceled bool              `json:"canceled"`
				Reason   string            `json:"cancel_reason"`
				Events   []json.RawMessage `json:"events"`
			} `json:"result"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			return fmt.Errorf("reading the watch stream: %w", err)
		}
		switch {
		case msg.Error != nil:
			if strings.Contains(msg.Error.Message, "invalid auth token") {
				e.mu.Lock()
				e.token = ""
				e.mu.Unlock()
			}
			return fmt.Errorf("watch: %s", msg.Error.Message)
		case msg.Result == nil:
			continue
		case msg.Result.Canceled:
			return fmt.Errorf("watch canceled by etcd: %s", msg.Result.Reason)
		case msg.Result.Created || len(msg.Result.Events) > 0:
			changed()
		}
	}
}

// watch long-polls key on the first endpoint that answers.
func (l *etcd2Leader) watch(ctx context.Context, key string, changed func()) error {
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

func (l *etcd2Leader) watchOne(ctx context.Context, ep, key string, changed func()) error {
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
func (l *etcd2Leader) do(ctx context.Context, base string, waitIndex int64) (modified, storeIndex int64, err error) {
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
