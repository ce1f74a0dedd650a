package dcs

import (
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNoEtcd3 is returned when patroni.yml has no etcd3 section, so the v3
// API cannot see Patroni's keys (the v2 keyspace is separate).
var ErrNoEtcd3 = errors.New("patroni: DCS is not etcd3")

// ErrNoDCSReader is returned by ReadKey and MemberAPIs for a DCS pghook
// cannot read.
var ErrNoDCSReader = errors.New("patroni: this DCS cannot be read by pghook")

// Errors etcd answers with.
var (
	ErrAuthNotEnabled = errors.New("etcd authentication is not enabled")
	ErrAuthFailed     = errors.New("etcd rejects the user name or password")
	ErrUserNotFound   = errors.New("etcd user not found")
	ErrRoleNotFound   = errors.New("etcd role not found")
	ErrPermission     = errors.New("etcd denies the operation")
)

// etcdErrors maps etcd's error messages (rpctypes) to the errors above.
// They are matched by message, as etcd itself tells them apart: several
// share a gRPC code.
var etcdErrors = []struct {
	msg string
	err error
}{
	{rpctypes.ErrAuthNotEnabled.Error(), ErrAuthNotEnabled},
	{rpctypes.ErrAuthFailed.Error(), ErrAuthFailed},
	{rpctypes.ErrUserNotFound.Error(), ErrUserNotFound},
	{rpctypes.ErrRoleNotFound.Error(), ErrRoleNotFound},
	{rpctypes.ErrPermissionDenied.Error(), ErrPermission},
	{rpctypes.ErrUserEmpty.Error(), ErrPermission}, // a request without a token while auth is on
	{rpctypes.ErrInvalidAuthToken.Error(), ErrPermission},
}

// answer returns etcd's answer carried by err: its gRPC code and message,
// whether err is the client's rpctypes.EtcdError or a gRPC status (also
// wrapped). ok is false for an error that is not etcd's answer.
func answer(err error) (code codes.Code, msg string, ok bool) {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code(), ee.Error(), true
	}
	if s, ok := status.FromError(err); ok && s != nil && s.Code() != codes.OK {
		return s.Code(), s.Message(), true
	}
	return codes.OK, "", false
}

// classify wraps an error etcd answered with the matching sentinel, if
// any; other errors are returned as they are.
func classify(err error) error {
	if err == nil {
		return nil
	}
	_, msg, ok := answer(err)
	if !ok {
		return err
	}
	for _, e := range etcdErrors {
		if strings.Contains(msg, e.msg) {
			return fmt.Errorf("%w: %w", e.err, err)
		}
	}
	return err
}

// IsEtcdAnswer reports whether err carries an answer from etcd (it was
// reached and said no) rather than a failure to reach it: a dial or a call
// that timed out, a connection refused, or a member without a leader
// (gRPC Unavailable: no quorum answers).
func IsEtcdAnswer(err error) bool {
	code, _, ok := answer(err)
	if !ok {
		return false
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return false
	}
	return true
}
