package dcs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/patroni"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func parse(t *testing.T, dcs string) *patroni.Config {
	t.Helper()
	c, err := patroni.Parse([]byte("name: n1\nscope: pg\npostgresql: {data_dir: /d}\n" + dcs + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every error etcd answers with is recognised whether it comes as the
// client's rpctypes error, as the server's gRPC status, or wrapped; errors
// of reaching etcd are not answers.
func TestClassify(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		want   error // nil: no sentinel
		answer bool
	}{
		{"auth not enabled", rpctypes.ErrAuthNotEnabled, ErrAuthNotEnabled, true},
		{"auth failed", rpctypes.ErrAuthFailed, ErrAuthFailed, true},
		{"user not found", rpctypes.ErrUserNotFound, ErrUserNotFound, true},
		{"role not found", rpctypes.ErrRoleNotFound, ErrRoleNotFound, true},
		{"permission denied", rpctypes.ErrPermissionDenied, ErrPermission, true},
		{"no token while auth is on", rpctypes.ErrUserEmpty, ErrPermission, true},
		{"expired token", rpctypes.ErrInvalidAuthToken, ErrPermission, true},
		{"server's gRPC status", rpctypes.ErrGRPCUserNotFound, ErrUserNotFound, true},
		{"wrapped", fmt.Errorf("reading etcd user u: %w", rpctypes.ErrRoleNotFound), ErrRoleNotFound, true},
		{"wrapped status", fmt.Errorf("x: %w", status.Error(codes.PermissionDenied, "etcdserver: permission denied")), ErrPermission, true},
		{"another answer", rpctypes.ErrUserAlreadyExist, nil, true},
		{"no leader", rpctypes.ErrNoLeader, nil, false},
		{"call timed out", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), nil, false},
		{"unavailable", status.Error(codes.Unavailable, "connection refused"), nil, false},
		{"context deadline", fmt.Errorf("reading /k: %w", context.DeadlineExceeded), nil, false},
		{"dial error", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(tc.err)
			if !errors.Is(err, tc.err) {
				t.Errorf("classify lost the error: %v", err)
			}
			for _, s := range []error{ErrAuthNotEnabled, ErrAuthFailed, ErrUserNotFound, ErrRoleNotFound, ErrPermission} {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
			if got := IsEtcdAnswer(err); got != tc.answer {
				t.Errorf("IsEtcdAnswer(%v) = %v, want %v", err, got, tc.answer)
			}
		})
	}
	if classify(nil) != nil || IsEtcdAnswer(nil) {
		t.Error("nil is an error")
	}
}

func TestPrefixRangeEnd(t *testing.T) {
	cases := []struct {
		ns, scope, end string
	}{
		{"/service/", "main", "/service/main0"},
		{"", "main", "/service/main0"},
		{"service", "pg.1", "/service/pg.10"},
		{"//a//b/", "s", "/a/b/s0"},
	}
	for _, tc := range cases {
		if got := PrefixRangeEnd(patroni.KeyPrefix(tc.ns, tc.scope)); got != tc.end {
			t.Errorf("%q %q: end %q, want %q", tc.ns, tc.scope, got, tc.end)
		}
	}
	for in, want := range map[string]string{"a\xff": "b", "\xff\xff": "\x00", "ab": "ac"} {
		if got := PrefixRangeEnd(in); got != want {
			t.Errorf("PrefixRangeEnd(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPermType(t *testing.T) {
	for _, name := range []string{"READ", "WRITE", "READWRITE"} {
		pt, err := permType(name)
		if err != nil || authpb.Permission_Type(pt).String() != name {
			t.Errorf("permType(%s) = %v, %v", name, pt, err)
		}
	}
	if _, err := permType("readwrite"); err == nil {
		t.Error("a lower-case type accepted")
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	cases := []struct {
		name, dcs, wantErr string
		eps                []string
	}{
		{"hosts", "etcd3: {hosts: [a:2379, b:2379]}", "", []string{"http://a:2379", "http://b:2379"}},
		{"https", "etcd3: {host: a:2379, protocol: https}", "", []string{"https://a:2379"}},
		{"v2 section", "etcd: {host: a:2379}", "DCS is not etcd3", nil},
		{"no endpoint", "etcd3: {username: u}", "no etcd endpoint", nil},
		{"bad CA file", "etcd3: {host: a:2379, cacert: " + notPEM + "}", "no PEM certificate", nil},
		{"missing CA file", "etcd3: {host: a:2379, cacert: " + filepath.Join(dir, "nope") + "}", "cacert", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cli, err := Open(parse(t, tc.dcs), 0)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			if got := cli.Endpoints(); strings.Join(got, " ") != strings.Join(tc.eps, " ") {
				t.Errorf("endpoints %v, want %v", got, tc.eps)
			}
			if cli.timeout != DefaultTimeout || cli.cfg.DialTimeout != DefaultTimeout {
				t.Errorf("timeouts %v/%v, want %v", cli.timeout, cli.cfg.DialTimeout, DefaultTimeout)
			}
			if cli.Source() != "etcd3 /service/pg/leader" {
				t.Errorf("source %q", cli.Source())
			}
		})
	}
	if _, err := Open(parse(t, "etcd: {host: a:2379}"), 0); !errors.Is(err, ErrNoEtcd3) {
		t.Errorf("v2 section: %v, want ErrNoEtcd3", err)
	}
}

// Nothing listens: the read fails within the client's timeout, as an
// unreachable etcd (not an answer), and naming the key.
func TestUnreachableIsBoundedAndNotAnAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cli, err := Open(parse(t, "etcd3: {host: '"+addr+"', username: u, password: p}"), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	start := time.Now()
	_, err = cli.Leader(context.Background())
	if err == nil {
		t.Fatal("read from nothing")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v with a timeout of 300ms", took)
	}
	if IsEtcdAnswer(err) || !strings.Contains(err.Error(), "/service/pg/leader") {
		t.Errorf("err %v: want a failure to reach etcd naming the key", err)
	}
	if err := cli.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, _, err := cli.Get(context.Background(), "/k"); err == nil {
		t.Error("read after Close")
	}
}

func TestMemberAPIsUnsupportedDCS(t *testing.T) {
	c := parse(t, "consul: {host: 127.0.0.1:8500}")
	if _, err := MemberAPIs(context.Background(), c, time.Second); !errors.Is(err, ErrNoDCSReader) || !strings.Contains(err.Error(), "cannot list the members") {
		t.Fatalf("err %v", err)
	}
	if _, _, err := ReadKey(context.Background(), c, time.Second, "initialize"); !errors.Is(err, ErrNoDCSReader) {
		t.Fatalf("ReadKey: %v", err)
	}
}

func TestNewLeaderReaderFitsTheDCS(t *testing.T) {
	for _, tc := range []struct{ dcs, source string }{
		{"etcd3: {host: a:2379}", "etcd3 /service/pg/leader"},
		{"etcd: {host: a:2379}", "etcd v2 /service/pg/leader"},
		{"consul: {host: a:8500}\nrestapi: {connect_address: 10.0.0.1:8008}", "patroni http://10.0.0.1:8008/cluster"},
	} {
		r, err := NewLeaderReader(parse(t, tc.dcs), time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tc.dcs, err)
		}
		if r.Source() != tc.source {
			t.Errorf("%s: source %q, want %q", tc.dcs, r.Source(), tc.source)
		}
	}
}

// The DCS's dynamic configuration wins over patroni.yml (etcd v2 keys API).
func TestDynamicConfigFromDCS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/keys/service/pg/config" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errorCode":100}`))
			return
		}
		w.Write([]byte(`{"node":{"value":"{\"ttl\":12,\"loop_wait\":2,\"standby_cluster\":{\"host\":\"10.9.0.1\"}}"}}`))
	}))
	defer srv.Close()
	c := parse(t, "bootstrap: {dcs: {ttl: 10}}\netcd: {host: '"+strings.TrimPrefix(srv.URL, "http://")+"'}")
	dyn := DynamicConfig(context.Background(), c, time.Second)
	if got := c.TTL(dyn); got != 12*time.Second {
		t.Fatalf("TTL %v, want 12s from the DCS (config %q)", got, dyn)
	}
	if !c.StandbyCluster(dyn) {
		t.Fatalf("StandbyCluster false, want true from the DCS (config %q)", dyn)
	}
	// A DCS pghook cannot read is no error: patroni.yml's ttl.
	c = parse(t, "bootstrap: {dcs: {ttl: 10}}\nconsul: {host: a:8500}")
	if dyn := DynamicConfig(context.Background(), c, time.Second); dyn != "" || c.TTL(dyn) != 10*time.Second {
		t.Fatalf("config %q, TTL %v; want none and 10s from patroni.yml", dyn, c.TTL(dyn))
	}
}
