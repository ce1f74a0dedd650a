//go:build integration

package dcs

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/internal/testenv"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The DCS sections of a member using an etcd at host (the %s): the v3 API
// under namespace /service/, and the v2 keys API.
const (
	etcd3DCS  = "namespace: /service/\netcd3: {hosts: [%s]}"
	etcdV2DCS = "etcd: {host: %s}"
)

// etcdMember starts an etcd (with the extra flags) and returns it and the
// config of a member whose DCS section is dcs (etcd3DCS, etcdV2DCS).
func etcdMember(t *testing.T, dcs string, extra ...string) (*testenv.Etcd, *patroni.Config) {
	t.Helper()
	e := testenv.StartEtcd(t, extra...)
	return e, memberConfig(t, fmt.Sprintf(dcs, strings.TrimPrefix(e.Endpoint, "http://")))
}

func TestLeaderFromRealEtcd(t *testing.T) {
	e, c := etcdMember(t, etcd3DCS)
	cli, err := Open(c, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if l, err := cli.Leader(ctx); err != nil || l != "" {
		t.Fatalf("no key yet: leader %q err %v", l, err)
	}
	e.Ctl(t, "put", "/service/pg/leader", "n2")
	if l, err := cli.Leader(ctx); err != nil || l != "n2" {
		t.Fatalf("leader %q err %v, want n2", l, err)
	}
	// A key written through etcd's own gRPC client (the official
	// go.etcd.io/etcd/client/v3, as an independent oracle) reads the same.
	grpc, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer grpc.Close()
	if _, err := grpc.Put(ctx, "/service/pg/leader", "n-\u00e9\x00bin"); err != nil {
		t.Fatal(err)
	}
	if l, err := cli.Leader(ctx); err != nil || l != "n-\u00e9\x00bin" {
		t.Fatalf("leader %q err %v after a gRPC put", l, err)
	}
	if _, err := grpc.Delete(ctx, "/service/pg/leader"); err != nil {
		t.Fatal(err)
	}
	if l, err := cli.Leader(ctx); err != nil || l != "" {
		t.Fatalf("leader %q err %v after delete", l, err)
	}
}

// TestEtcdAuthFromPatroniConfig enables etcd authentication as the seed did
// (root user, a role limited to the prefix) and reads with the credentials
// of patroni.yml; wrong credentials fail with an error, not a silent "".
func TestEtcdAuthFromPatroniConfig(t *testing.T) {
	e := testenv.StartEtcd(t)
	e.Ctl(t, "put", "/service/pg/leader", "n3")
	e.Ctl(t, "user", "add", "root:rootpw")
	e.Ctl(t, "role", "add", "patroni")
	e.Ctl(t, "role", "grant-permission", "--prefix=true", "patroni", "readwrite", "/service/")
	e.Ctl(t, "user", "add", "pat:patpw")
	e.Ctl(t, "user", "grant-role", "pat", "patroni")
	e.Ctl(t, "auth", "enable")
	host := strings.TrimPrefix(e.Endpoint, "http://")
	for _, tt := range []struct {
		user, pw string
		ok       bool
	}{{"pat", "patpw", true}, {"pat", "wrong", false}} {
		c := memberConfig(t, fmt.Sprintf("etcd3: {host: %s, username: %s, password: %s}", host, tt.user, tt.pw))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cli, err := Open(c, 2*time.Second)
		if err != nil {
			if tt.ok {
				t.Fatal(err)
			}
			cancel()
			continue
		}
		l, err := cli.Leader(ctx)
		cancel()
		cli.Close()
		if tt.ok && (err != nil || l != "n3") {
			t.Fatalf("%s: leader %q err %v", tt.user, l, err)
		}
		if !tt.ok && err == nil {
			t.Fatalf("wrong password read %q", l)
		}
	}
}

func TestLeaderUnreachableIsBounded(t *testing.T) {
	port := testenv.FreePort(t)
	c := memberConfig(t, fmt.Sprintf("etcd3: {host: 127.0.0.1:%d}", port))
	cli, err := Open(c, 500*time.Millisecond)
	if err != nil {
		return // refusing at dial time is also a bounded failure
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = cli.Leader(ctx)
	if err == nil {
		t.Fatal("read from nothing")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("unbounded: %v", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "etcd") {
		t.Logf("error: %v", err)
	}
}

func TestLeaderReaderEtcdV2(t *testing.T) {
	e, c := etcdMember(t, etcdV2DCS, "--enable-v2=true")
	r, err := NewLeaderReader(c, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if l, err := r.Leader(ctx); err != nil || l != "" {
		t.Fatalf("no key: %q %v", l, err)
	}
	out, err := exec.CommandContext(ctx, "curl", "-fsS", "-X", "PUT", e.Endpoint+"/v2/keys/service/pg/leader", "-d", "value=n2").CombinedOutput()
	if err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if l, err := r.Leader(ctx); err != nil || l != "n2" {
		t.Fatalf("leader %q %v", l, err)
	}
	// Any key of the cluster, e.g. initialize (the system identifier).
	if v, found, err := ReadKey(ctx, c, time.Second, "initialize"); err != nil || found || v != "" {
		t.Fatalf("absent initialize: %q %v %v", v, found, err)
	}
	exec.CommandContext(ctx, "curl", "-fsS", "-X", "PUT", e.Endpoint+"/v2/keys/service/pg/initialize", "-d", "value=7300000000000000001").Run()
	if v, found, err := ReadKey(ctx, c, time.Second, "initialize"); err != nil || !found || v != "7300000000000000001" {
		t.Fatalf("initialize: %q %v %v", v, found, err)
	}
}

// leaderWatcher is what the etcd leader readers add to patroni.LeaderReader.
type leaderWatcher interface {
	WatchLeader(context.Context, func()) error
}

// watchingReader returns NewLeaderReader(c), which must also watch.
func watchingReader(t *testing.T, c *patroni.Config) (patroni.LeaderReader, leaderWatcher) {
	t.Helper()
	r, err := NewLeaderReader(c, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := r.(leaderWatcher)
	if !ok {
		t.Fatalf("%T cannot watch", r)
	}
	return r, w
}

// watchEvents runs w.WatchLeader in the background and returns a channel
// that receives a value per notification.
func watchEvents(t *testing.T, w leaderWatcher) (<-chan struct{}, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() { done <- w.WatchLeader(ctx, func() { ch <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchLeader after cancel: %v", err)
		}
	})
	return ch, cancel
}

func expectEvent(t *testing.T, ch <-chan struct{}, what string, within time.Duration) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("no watch notification %s within %v", what, within)
	}
}

func expectQuiet(t *testing.T, ch <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("a notification without a change of the leader key")
	case <-time.After(d):
	}
}

// The watcher learns of every change of the leader key — put, delete and a
// lease expiring (Patroni killed: nobody refreshes it) — at once, and of
// nothing else.
func TestWatchLeaderEtcd3(t *testing.T) {
	e, c := etcdMember(t, etcd3DCS)
	r, w := watchingReader(t, c)
	ch, _ := watchEvents(t, w)
	expectEvent(t, ch, "when established", 3*time.Second)
	e.Ctl(t, "put", "/service/pg/leader", "n2")
	expectEvent(t, ch, "after put", time.Second)
	e.Ctl(t, "put", "/service/pg/other", "x")
	expectQuiet(t, ch, 300*time.Millisecond)
	e.Ctl(t, "del", "/service/pg/leader")
	expectEvent(t, ch, "after delete", time.Second)
	// A lease of 2 s, like Patroni's ttl, not kept alive.
	grant := e.Ctl(t, "lease", "grant", "2")
	f := strings.Fields(grant) // "lease 694d... granted with TTL(2s)"
	if len(f) < 2 {
		t.Fatalf("lease grant: %q", grant)
	}
	e.Ctl(t, "put", "--lease="+f[1], "/service/pg/leader", "n3")
	expectEvent(t, ch, "after put with lease", time.Second)
	start := time.Now()
	expectEvent(t, ch, "when the lease expired", 5*time.Second)
	t.Logf("expiry seen %v after the put", time.Since(start))
	if l, err := r.Leader(context.Background()); err != nil || l != "" {
		t.Fatalf("after expiry leader %q err %v", l, err)
	}
}

func TestWatchLeaderEtcdV2(t *testing.T) {
	e, c := etcdMember(t, etcdV2DCS, "--enable-v2=true")
	_, w := watchingReader(t, c)
	curl := func(args ...string) {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-fsS"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v %s", args, err, out)
		}
	}
	ch, _ := watchEvents(t, w)
	expectEvent(t, ch, "when established", 3*time.Second)
	curl("-X", "PUT", e.Endpoint+"/v2/keys/service/pg/leader", "-d", "value=n2")
	expectEvent(t, ch, "after put", time.Second)
	curl("-X", "PUT", e.Endpoint+"/v2/keys/service/pg/other", "-d", "value=x")
	expectQuiet(t, ch, 300*time.Millisecond)
	curl("-X", "DELETE", e.Endpoint+"/v2/keys/service/pg/leader")
	expectEvent(t, ch, "after delete", time.Second)
	curl("-X", "PUT", e.Endpoint+"/v2/keys/service/pg/leader", "-d", "value=n3", "-d", "ttl=2")
	expectEvent(t, ch, "after put with ttl", time.Second)
	expectEvent(t, ch, "when the ttl expired", 5*time.Second)
}

// memberConfig parses the patroni.yml of member n1 of scope pg with the
// given DCS lines (and any other top-level keys).
func memberConfig(t *testing.T, dcs string) *patroni.Config {
	t.Helper()
	c, err := patroni.Parse([]byte("name: n1\nscope: pg\npostgresql: {data_dir: /d}\n" + dcs + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
