package dcs

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// echoAuth is an etcd endpoint that refuses every authentication and user
// creation with an error echoing the request, password included.
type echoAuth struct{ *pb.UnimplementedAuthServer }

func (echoAuth) Authenticate(_ context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return nil, status.Errorf(codes.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password (name=%s password=%s)", r.Name, r.Password)
}

func (echoAuth) UserAdd(_ context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	return nil, status.Errorf(codes.FailedPrecondition, "rejected %s with password %s", r.Name, r.Password)
}

// An endpoint that echoes a password in its error does not get it into
// pghook's error (and so into a log line); the error is still classified.
func TestErrorsHideEchoedPasswords(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterAuthServer(srv, echoAuth{})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	const cfgPW, userPW = "Cfg-Secret-91x", "User-Secret-42y"

	cli, err := Open(parse(t, "etcd3: {host: '"+ln.Addr().String()+"', username: pghook, password: "+cfgPW+"}"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	_, err = cli.Leader(ctx)
	if err == nil || strings.Contains(err.Error(), cfgPW) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("connecting as pghook: %v", err)
	}
	if !errors.Is(err, ErrAuthFailed) || !IsEtcdAnswer(err) {
		t.Errorf("connecting as pghook: %v is not classified as wrong credentials", err)
	}

	anon, err := Open(parse(t, "etcd3: {host: '"+ln.Addr().String()+"'}"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	for name, err := range map[string]error{
		"CheckCredentials": anon.CheckCredentials(ctx, "patroni", userPW),
		"UserAdd":          anon.UserAdd(ctx, "patroni", userPW),
	} {
		if err == nil || strings.Contains(err.Error(), userPW) || !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("%s: %v", name, err)
		}
		if !IsEtcdAnswer(err) {
			t.Errorf("%s: %v is not an answer", name, err)
		}
	}
}
