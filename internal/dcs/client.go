// Package dcs is pghook's client of the DCS Patroni uses: etcd's v3 API
// through the official client (go.etcd.io/etcd/client/v3), configured from
// the etcd3 section of patroni.yml, and the choice of reader for the other
// DCS sections (etcd's v2 API and Patroni's REST API, both in
// internal/patroni). It reads Patroni's keys and watches the leader key;
// the only writes are `pghook install`'s administration of the etcd user
// and role (auth.go), and Put for checking a user's permissions.
package dcs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pghook/pghook/internal/patroni"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultTimeout bounds a call (and the dial before it) when Open is given
// no timeout.
const DefaultTimeout = 2 * time.Second

// keepAlive is how often an idle connection is probed, so that a watch on
// a peer that vanished without closing the TCP connection breaks instead
// of waiting forever. etcd refuses pings more often than every 5 s
// (--grpc-keepalive-min-time).
const (
	keepAlive        = 10 * time.Second
	keepAliveTimeout = 3 * time.Second
)

// Client is an etcd v3 client for the etcd3 section of one patroni.yml.
// The connection is made on first use, so building a Client does no I/O
// and a Client built while etcd is down works once etcd is back. Safe for
// concurrent use; Close releases the connection.
type Client struct {
	cfg       clientv3.Config
	timeout   time.Duration
	leaderKey string

	mu     sync.Mutex
	cli    *clientv3.Client
	closed bool
}

// Open builds a client from the etcd3 section of c: endpoints, username
// and password, TLS (cacert, cert, key). timeout bounds each call and the
// dial (DefaultTimeout when <= 0).
func Open(c *patroni.Config, timeout time.Duration) (*Client, error) {
	if c.Etcd3 == nil {
		return nil, fmt.Errorf("%w (it is %q in %s)", ErrNoEtcd3, c.DCS(), c.Path)
	}
	eps, err := c.Etcd3.Endpoints()
	if err != nil {
		return nil, fmt.Errorf("key etcd3 in %s: %w", c.Path, err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cfg := clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          timeout,
		DialKeepAliveTime:    keepAlive,
		DialKeepAliveTimeout: keepAliveTimeout,
		Username:             c.Etcd3.Username,
		Password:             c.Etcd3.Password,
		// pghook logs through zerolog, with the error each call returns.
		Logger: zap.NewNop(),
	}
	if c.Etcd3.CACert != "" || c.Etcd3.Cert != "" {
		tc, err := c.Etcd3.TLSConfig()
		if err != nil {
			return nil, fmt.Errorf("key etcd3 in %s: %w", c.Path, err)
		}
		cfg.TLS = tc
	}
	return &Client{cfg: cfg, timeout: timeout, leaderKey: c.LeaderKey()}, nil
}

// Endpoints returns the endpoints the client uses.
func (c *Client) Endpoints() []string { return append([]string(nil), c.cfg.Endpoints...) }

// Close releases the connection, if one was made.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cli == nil {
		return nil
	}
	err := c.cli.Close()
	c.cli = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("closing the etcd client: %w", err)
	}
	return nil
}

var errClosed = errors.New("etcd client closed")

// conn returns the connection, making it on first use. With a username
// the client authenticates here, so wrong credentials fail the first call
// with ErrAuthFailed. The dial is bounded by the client's timeout and by
// ctx.
func (c *Client) conn(ctx context.Context) (*clientv3.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if c.cli != nil {
		return c.cli, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := c.cfg
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < cfg.DialTimeout {
		cfg.DialTimeout = max(time.Until(dl), time.Millisecond)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, redact(classify(err), cfg.Password)
	}
	c.cli = cli
	return cli, nil
}

// call runs f with the connection and a context bounded by the client's
// timeout. The error is classified, and secrets (passwords f sends) and
// the client's own password are cut out of its text.
func (c *Client) call(ctx context.Context, f func(context.Context, *clientv3.Client) error, secrets ...string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cli, err := c.conn(ctx)
	if err != nil {
		return redact(err, secrets...)
	}
	return redact(classify(f(ctx, cli)), append(secrets, c.cfg.Password)...)
}

// redactedError is an error whose text has had secrets cut out; errors.Is
// and errors.As still see the error under it.
type redactedError struct {
	err  error
	text string
}

func (r *redactedError) Error() string { return r.text }
func (r *redactedError) Unwrap() error { return r.err }

// redact returns err with every non-empty secret in its text replaced by
// "[redacted]": a server may echo a request, and an error ends up in a
// log line.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	if text == err.Error() {
		return err
	}
	return &redactedError{err: err, text: text}
}

// hedgeAfter is how long a read waits for an answer before the same read
// is sent again, to the next member (the client's balancer picks members
// in turn, though a concurrent call can take a turn in between).
// A member cut off behind a connection that still looks alive holds a
// call until its deadline (keepalive notices only after 10–13 s); the
// first answer of either read is used. A healthy member answers a
// linearizable read in ~1 ms on a LAN.
const hedgeAfter = 200 * time.Millisecond

// Get reads key with a linearizable read (it fails rather than answer from
// a member cut off from the quorum). found is false when the key does not
// exist. With several endpoints, a read unanswered after hedgeAfter is
// sent again every hedgeAfter until its deadline, at most twice per
// endpoint in all; the first success is returned.
func (c *Client) Get(ctx context.Context, key string) (value string, found bool, err error) {
	type answer struct {
		value string
		found bool
		err   error
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	sends := 1
	if n := len(c.cfg.Endpoints); n > 1 {
		sends = 2 * n
	}
	answers := make(chan answer, sends)
	read := func() {
		var a answer
		a.err = c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
			r, err := cli.Get(ctx, key)
			if err == nil && len(r.Kvs) > 0 {
				a.value, a.found = string(r.Kvs[0].Value), true
			}
			return err
		})
		answers <- a
	}
	go read()
	sent, pending := 1, 1
	hedge := time.NewTicker(hedgeAfter)
	defer hedge.Stop()
	for {
		select {
		case a := <-answers:
			pending--
			if a.err == nil {
				return a.value, a.found, nil
			}
			if err == nil {
				err = a.err
			}
			if pending == 0 {
				return "", false, fmt.Errorf("reading %s from etcd: %w", key, err)
			}
		case <-hedge.C:
			if sent < sends {
				go read()
				sent++
				pending++
			}
		}
	}
}

// GetPrefix reads every key that starts with prefix (linearizable).
func (c *Client) GetPrefix(ctx context.Context, prefix string) (map[string]string, error) {
	out := map[string]string{}
	err := c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		r, err := cli.Get(ctx, prefix, clientv3.WithRange(PrefixRangeEnd(prefix)))
		if err != nil {
			return err
		}
		for _, kv := range r.Kvs {
			out[string(kv.Key)] = string(kv.Value)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s from etcd: %w", prefix, err)
	}
	return out, nil
}

// Put writes key = value (tests, and checking a user's permissions).
func (c *Client) Put(ctx context.Context, key, value string) error {
	err := c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.Put(ctx, key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s to etcd: %w", key, err)
	}
	return nil
}

// Leader returns the member name in Patroni's leader key, or "" when no
// member holds the lock.
func (c *Client) Leader(ctx context.Context) (string, error) {
	v, _, err := c.Get(ctx, c.leaderKey)
	return v, err
}

// Source names the view for logs.
func (c *Client) Source() string { return "etcd3 " + c.leaderKey }

// WatchLeader blocks until ctx ends or the watch breaks, calling changed
// once the watch is established and after every change of the leader key
// (written, deleted, or expired with its lease). It is how `pghook vip
// watch` learns within milliseconds that the lock moved, instead of at its
// next poll. A nil error is returned only when ctx ended.
func (c *Client) WatchLeader(ctx context.Context, changed func()) error {
	return c.Watch(ctx, c.leaderKey, changed)
}

// Watch streams the changes of key, calling changed when etcd confirms the
// watch and for each batch of events. The watch requires the member to
// have a leader: a member cut off from the quorum ends it with an error
// rather than leave it silent. While the connection is down the client
// reconnects and resumes at the last revision seen, so no change is lost.
// The watch is bounded by ctx only; a nil error means ctx ended.
func (c *Client) Watch(ctx context.Context, key string, changed func()) error {
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	cli, err := c.conn(dctx)
	cancel()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("watching %s in etcd: %w", key, err)
	}
	wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer stop()
	for resp := range cli.Watch(wctx, key, clientv3.WithCreatedNotify()) {
		if err := resp.Err(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watching %s in etcd: %w", key, redact(classify(err), c.cfg.Password))
		}
		if resp.Canceled {
			return fmt.Errorf("watching %s in etcd: the watch was canceled by etcd", key)
		}
		if resp.Created || len(resp.Events) > 0 {
			changed()
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("watching %s in etcd: the watch stream closed", key)
}
