//go:build integration

package patroni

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestLeaderFromRealEtcd(t *testing.T) {
	e := testenv.StartEtcd(t)
	host := strings.TrimPrefix(e.Endpoint, "http://")
	c, err := Parse([]byte(fmt.Sprintf("name: n1\nscope: pg\nnamespace: /service/\npostgresql: {data_dir: /d}\netcd3: {hosts: [%s]}\n", host)))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := c.EtcdClient(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if l, err := c.Leader(ctx, cli); err != nil || l != "" {
		t.Fatalf("no key yet: leader %q err %v", l, err)
	}
	e.Ctl(t, "put", "/service/pg/leader", "n2")
	if l, err := c.Leader(ctx, cli); err != nil || l != "n2" {
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
	if l, err := c.Leader(ctx, cli); err != nil || l != "n-\u00e9\x00bin" {
		t.Fatalf("leader %q err %v after a gRPC put", l, err)
	}
	if _, err := grpc.Delete(ctx, "/service/pg/leader"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.Leader(ctx, cli); err != nil || l != "" {
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
		c, _ := Parse([]byte(fmt.Sprintf("name: n1\nscope: pg\npostgresql: {data_dir: /d}\netcd3: {host: %s, username: %s, password: %s}\n", host, tt.user, tt.pw)))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cli, err := c.EtcdClient(2 * time.Second)
		if err != nil {
			if tt.ok {
				t.Fatal(err)
			}
			cancel()
			continue
		}
		l, err := c.Leader(ctx, cli)
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
	c, _ := Parse([]byte(fmt.Sprintf("name: n1\nscope: pg\npostgresql: {data_dir: /d}\netcd3: {host: 127.0.0.1:%d}\n", port)))
	cli, err := c.EtcdClient(500 * time.Millisecond)
	if err != nil {
		return // refusing at dial time is also a bounded failure
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Leader(ctx, cli)
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
	e := testenv.StartEtcd(t, "--enable-v2=true")
	host := strings.TrimPrefix(e.Endpoint, "http://")
	c, _ := Parse([]byte(fmt.Sprintf("name: n1\nscope: pg\npostgresql: {data_dir: /d}\netcd: {host: %s}\n", host)))
	r, err := c.NewLeaderReader(2 * time.Second)
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
	if v, found, err := c.ReadKey(ctx, time.Second, "initialize"); err != nil || found || v != "" {
		t.Fatalf("absent initialize: %q %v %v", v, found, err)
	}
	exec.CommandContext(ctx, "curl", "-fsS", "-X", "PUT", e.Endpoint+"/v2/keys/service/pg/initialize", "-d", "value=7300000000000000001").Run()
	if v, found, err := c.ReadKey(ctx, time.Second, "initialize"); err != nil || !found || v != "7300000000000000001" {
		t.Fatalf("initialize: %q %v %v", v, found, err)
	}
}
