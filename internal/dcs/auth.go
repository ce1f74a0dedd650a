package dcs

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/authpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcd's authentication administration (users, roles, permissions), for
// `pghook install --etcd-user`. Each call is bounded by ctx and by the
// client's timeout; passwords travel in the request only.

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
	return clientv3.GetPrefixRangeEnd(prefix)
}

// permType is the etcd enum of a Permission's Type.
func permType(name string) (clientv3.PermissionType, error) {
	v, ok := authpb.Permission_Type_value[name]
	if !ok {
		return 0, fmt.Errorf("permission type %q: want READ, WRITE or READWRITE", name)
	}
	return clientv3.PermissionType(v), nil
}

// CheckCredentials asks etcd for a token for user/password without keeping
// it: nil when they are right, ErrAuthNotEnabled when etcd does not check
// them, ErrAuthFailed when they are wrong (or the user does not exist).
func (c *Client) CheckCredentials(ctx context.Context, user, password string) error {
	var token string
	err := c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		r, err := cli.Authenticate(ctx, user, password)
		if err == nil {
			token = r.Token
		}
		return err
	}, password)
	if err != nil {
		return fmt.Errorf("authenticating as %s: %w", user, err)
	}
	if token == "" {
		return fmt.Errorf("authenticating as %s: %w", user, ErrAuthNotEnabled)
	}
	return nil
}

// UserRoles returns the roles granted to user, or ErrUserNotFound.
func (c *Client) UserRoles(ctx context.Context, user string) ([]string, error) {
	var roles []string
	err := c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		r, err := cli.UserGet(ctx, user)
		if err == nil {
			roles = r.Roles
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading etcd user %s: %w", user, err)
	}
	return roles, nil
}

// UserAdd creates user with password.
func (c *Client) UserAdd(ctx context.Context, user, password string) error {
	err := c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.UserAdd(ctx, user, password)
		return err
	}, password)
	if err != nil {
		return fmt.Errorf("creating etcd user %s: %w", user, err)
	}
	return nil
}

// UserGrantRole grants role to user.
func (c *Client) UserGrantRole(ctx context.Context, user, role string) error {
	err := c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.UserGrantRole(ctx, user, role)
		return err
	})
	if err != nil {
		return fmt.Errorf("granting etcd role %s to %s: %w", role, user, err)
	}
	return nil
}

// RolePermissions returns role's permissions, or ErrRoleNotFound.
func (c *Client) RolePermissions(ctx context.Context, role string) ([]Permission, error) {
	var out []Permission
	err := c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		r, err := cli.RoleGet(ctx, role)
		if err != nil {
			return err
		}
		for _, p := range r.Perm {
			out = append(out, Permission{Type: p.PermType.String(), Key: string(p.Key), RangeEnd: string(p.RangeEnd)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading etcd role %s: %w", role, err)
	}
	return out, nil
}

// RoleAdd creates role.
func (c *Client) RoleAdd(ctx context.Context, role string) error {
	err := c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.RoleAdd(ctx, role)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating etcd role %s: %w", role, err)
	}
	return nil
}

// RoleGrant gives role the permission p.
func (c *Client) RoleGrant(ctx context.Context, role string, p Permission) error {
	pt, err := permType(p.Type)
	if err == nil {
		err = c.call(ctx, func(ctx context.Context, cli *clientv3.Client) error {
			_, err := cli.RoleGrantPermission(ctx, role, p.Key, p.RangeEnd, pt)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("granting %s on [%q, %q) to etcd role %s: %w", p.Type, p.Key, p.RangeEnd, role, err)
	}
	return nil
}
