package patroni

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// etcd's authentication administration (users, roles, permissions) over
// the v3 JSON gateway, for `pghook install --etcd-user`. Each call is
// bounded by ctx and by the client's per-request timeout.

// Errors etcd answers with, recognised by their gRPC status message.
var (
	ErrAuthNotEnabled = errors.New("etcd authentication is not enabled")
	ErrAuthFailed     = errors.New("etcd rejects the user name or password")
	ErrUserNotFound   = errors.New("etcd user not found")
	ErrRoleNotFound   = errors.New("etcd role not found")
	ErrPermission     = errors.New("etcd denies the operation")
)

// etcdErrors maps etcd's messages (etcdserver/api/v3rpc/rpctypes) to the
// errors above.
var etcdErrors = []struct {
	msg string
	err error
}{
	{"authentication is not enabled", ErrAuthNotEnabled},
	{"authentication failed, invalid user ID or password", ErrAuthFailed},
	{"user name not found", ErrUserNotFound},
	{"role name not found", ErrRoleNotFound},
	{"permission denied", ErrPermission},
	{"user name is empty", ErrPermission}, // a request without a token while auth is on
	{"invalid auth token", ErrPermission},
}

// classify wraps a gateway error with the matching sentinel, if any.
func classify(err error) error {
	var se *statusError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	for _, e := range etcdErrors {
		if strings.Contains(se.body, e.msg) {
			return fmt.Errorf("%w: %w", e.err, err)
		}
	}
	return err
}

// Permission is one key range a role may use.
type Permission struct {
	// Type is READ, WRITE or READWRITE.
	Type     string
	Key      string
	RangeEnd string
}

// PrefixRangeEnd is the end of the key range holding every key that starts
// with prefix (etcdctl's --prefix): the prefix with its last byte
// incremented, dropping trailing 0xff bytes; "\x00" (all keys) when prefix
// is all 0xff.
func PrefixRangeEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

var slashes = regexp.MustCompile(`/+`)

// KeyPrefix is the prefix under which Patroni keeps the keys of scope in
// namespace: "/<namespace>/<scope>/" with repeated slashes collapsed, as
// Patroni's AbstractDCS builds it (_base_path + "/").
func KeyPrefix(namespace, scope string) string {
	if namespace == "" {
		namespace = "service"
	}
	return slashes.ReplaceAllString("/"+namespace+"/"+scope, "/") + "/"
}

// CheckCredentials asks etcd for a token for user/password without keeping
// it: nil when they are right, ErrAuthNotEnabled when etcd does not check
// them, ErrAuthFailed when they are wrong (or the user does not exist).
func (e *Etcd3) CheckCredentials(ctx context.Context, user, password string) error {
	var r struct {
		Token string `json:"token"`
	}
	err := e.call(ctx, "/auth/authenticate", map[string]string{"name": user, "password": password}, &r)
	if err != nil {
		return fmt.Errorf("authenticating as %s: %w", user, classify(err))
	}
	if r.Token == "" {
		// etcd 3.4 answers an empty token when auth is off and the
		// request came through a gateway that swallowed the error.
		return fmt.Errorf("authenticating as %s: %w", user, ErrAuthNotEnabled)
	}
	return nil
}

// UserRoles returns the roles granted to user, or ErrUserNotFound.
func (e *Etcd3) UserRoles(ctx context.Context, user string) ([]string, error) {
	var r struct {
		Roles []string `json:"roles"`
	}
	if err := e.call(ctx, "/auth/user/get", map[string]string{"name": user}, &r); err != nil {
		return nil, fmt.Errorf("reading etcd user %s: %w", user, classify(err))
	}
	return r.Roles, nil
}

// UserAdd creates user with password (sent in the request body only).
func (e *Etcd3) UserAdd(ctx context.Context, user, password string) error {
	if err := e.call(ctx, "/auth/user/add", map[string]string{"name": user, "password": password}, nil); err != nil {
		return fmt.Errorf("creating etcd user %s: %w", user, classify(err))
	}
	return nil
}

// UserGrantRole grants role to user.
func (e *Etcd3) UserGrantRole(ctx context.Context, user, role string) error {
	if err := e.call(ctx, "/auth/user/grant", map[string]string{"user": user, "role": role}, nil); err != nil {
		return fmt.Errorf("granting etcd role %s to %s: %w", role, user, classify(err))
	}
	return nil
}

// RolePermissions returns role's permissions, or ErrRoleNotFound.
func (e *Etcd3) RolePermissions(ctx context.Context, role string) ([]Permission, error) {
	var r struct {
		Perm []struct {
			PermType any    `json:"permType"`
			Key      string `json:"key"`
			RangeEnd string `json:"range_end"`
		} `json:"perm"`
	}
	if err := e.call(ctx, "/auth/role/get", map[string]string{"role": role}, &r); err != nil {
		return nil, fmt.Errorf("reading etcd role %s: %w", role, classify(err))
	}
	var out []Permission
	for _, p := range r.Perm {
		k, err1 := base64.StdEncoding.DecodeString(p.Key)
		re, err2 := base64.StdEncoding.DecodeString(p.RangeEnd)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("reading etcd role %s: a permission's key is not base64", role)
		}
		out = append(out, Permission{Type: permTypeName(p.PermType), Key: string(k), RangeEnd: string(re)})
	}
	return out, nil
}

// permTypeName reads the gateway's enum, a name or a number (READ = 0 is
// omitted from the answer).
func permTypeName(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case float64:
		switch t {
		case 1:
			return "WRITE"
		case 2:
			return "READWRITE"
		}
	}
	return "READ"
}

// RoleAdd creates role.
func (e *Etcd3) RoleAdd(ctx context.Context, role string) error {
	if err := e.call(ctx, "/auth/role/add", map[string]string{"name": role}, nil); err != nil {
		return fmt.Errorf("creating etcd role %s: %w", role, classify(err))
	}
	return nil
}

// RoleGrant gives role the permission p.
func (e *Etcd3) RoleGrant(ctx context.Context, role string, p Permission) error {
	req := map[string]any{"name": role, "perm": map[string]any{
		"permType":  p.Type,
		"key":       base64.StdEncoding.EncodeToString([]byte(p.Key)),
		"range_end": base64.StdEncoding.EncodeToString([]byte(p.RangeEnd)),
	}}
	if err := e.call(ctx, "/auth/role/grant", req, nil); err != nil {
		return fmt.Errorf("granting %s on [%q, %q) to etcd role %s: %w", p.Type, p.Key, p.RangeEnd, role, classify(err))
	}
	return nil
}

// Put writes key = value (tests, and checking a user's permissions).
func (e *Etcd3) Put(ctx context.Context, key, value string) error {
	req := map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(key)), "value": base64.StdEncoding.EncodeToString([]byte(value))}
	if err := e.call(ctx, "/kv/put", req, nil); err != nil {
		return fmt.Errorf("writing %s to etcd: %w", key, classify(err))
	}
	return nil
}

// IsEtcdAnswer reports whether err carries an answer from etcd (an HTTP
// error status other than 404, which means no v3 gateway answered) rather
// than a failure to reach it.
func IsEtcdAnswer(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.code != 404
}
