package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pghook/pghook/internal/dcs"
	"github.com/pghook/pghook/internal/patroni"
)

// etcdRole is the role install creates for the scope: "patroni-" and the
// key prefix without its slashes (/service/main/ → patroni-service-main).
func etcdRole(o *Options) string {
	p := strings.Trim(patroni.KeyPrefix(o.Namespace, o.Scope), "/")
	return "patroni-" + strings.ReplaceAll(p, "/", "-")
}

// rootPassword reads the etcd root password from --etcd-root-password-file
// or PGHOOK_ETCD_ROOT_PASSWORD ("" when neither is given).
func (in *installer) rootPassword() (string, error) {
	if in.o.EtcdRootPasswordFile == "" {
		return in.o.EtcdRootPassword, nil
	}
	b, err := os.ReadFile(in.o.EtcdRootPasswordFile)
	if err != nil {
		return "", usage("etcd-root-password-file", "%v", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", usage("etcd-root-password-file", "%s is empty", in.o.EtcdRootPasswordFile)
	}
	return pw, nil
}

// etcdAs is an etcd v3 client for the rendered patroni.yml's endpoints
// and TLS settings, authenticating as user ("" for none).
func (in *installer) etcdAs(c *patroni.Config, user, password string) (*dcs.Client, error) {
	cc := *c
	e := *c.Etcd3
	e.Username, e.Password = user, password
	cc.Etcd3 = &e
	cli, err := dcs.Open(&cc, in.o.EtcdTimeout)
	if err != nil {
		return nil, usage("etcd-cacert", "etcd client settings (--etcd-cacert, --etcd-cert, --etcd-key): %v", err)
	}
	return cli, nil
}

// provisionEtcd makes sure the etcd user of --etcd-user exists with the
// scope's password and holds a role allowed READWRITE on the Patroni key
// prefix of the scope only. Each step is done only when missing (dry run:
// reported only). An etcd that cannot be reached is a warning (the files
// are still written); a user that exists with another password, or root
// credentials etcd rejects, are errors and nothing is written.
func (in *installer) provisionEtcd(reachable bool) error {
	o := &in.o
	if o.EtcdUser == "" || o.DCS != "etcd3" {
		return nil
	}
	if !reachable {
		in.warn("etcd user %s not created or checked: no etcd endpoint is reachable; re-run pghook install once etcd is up", o.EtcdUser)
		return nil
	}
	var rendered []byte
	for _, it := range in.files {
		if it.path == o.PatroniConfig {
			rendered = it.data
		}
	}
	cfg, err := patroni.Parse(rendered)
	if err != nil {
		return fmt.Errorf("reading back the rendered %s: %w", o.PatroniConfig, err)
	}
	rootPW, err := in.rootPassword()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*o.EtcdTimeout+2*time.Second)
	defer cancel()
	user, pw, role := o.EtcdUser, in.secrets.Etcd, etcdRole(o)
	prefix := patroni.KeyPrefix(o.Namespace, o.Scope)
	perm := dcs.Permission{Type: "READWRITE", Key: prefix, RangeEnd: dcs.PrefixRangeEnd(prefix)}
	unreachable := func(err error) bool {
		if dcs.IsEtcdAnswer(err) {
			return false
		}
		in.warn("etcd user %s not created or checked: %v; re-run pghook install once etcd answers", user, err)
		return true
	}

	anon, err := in.etcdAs(cfg, "", "")
	if err != nil {
		return err
	}
	defer anon.Close()
	authOn, userOK := true, false
	switch err := anon.CheckCredentials(ctx, user, pw); {
	case err == nil:
		userOK = true
	case errors.Is(err, dcs.ErrAuthNotEnabled):
		authOn = false
	case errors.Is(err, dcs.ErrAuthFailed):
	case unreachable(err):
		return nil
	default:
		return err
	}
	if authOn && rootPW == "" {
		if userOK {
			in.say("checked    etcd user %s authenticates (its role is not checked without --etcd-root-password-file or PGHOOK_ETCD_ROOT_PASSWORD)", user)
			return nil
		}
		return fmt.Errorf("etcd rejects user %s with the scope's password, and no root credentials were given to create it: "+
			"pass --etcd-root-password-file (or PGHOOK_ETCD_ROOT_PASSWORD), or copy %s/%s/etcd from the node that created the user", user, o.SecretsDir, o.Scope)
	}
	var admin *dcs.Client
	if authOn {
		admin, err = in.etcdAs(cfg, o.EtcdRootUser, rootPW)
	} else {
		admin, err = anon, nil
	}
	if err != nil {
		return err
	}
	defer admin.Close()
	rootErr := func(err error) error {
		if errors.Is(err, dcs.ErrAuthFailed) || errors.Is(err, dcs.ErrPermission) {
			return fmt.Errorf("etcd user %s: the etcd root credentials (%s) are refused or lack the root role: %w", user, o.EtcdRootUser, err)
		}
		return err
	}

	type action struct {
		verb, what string // "create", "etcd user patroni"
		do         func() error
	}
	var todo []action
	step := func(verb, what string, f func() error) { todo = append(todo, action{verb, what, f}) }

	roles, err := admin.UserRoles(ctx, user)
	switch {
	case errors.Is(err, dcs.ErrUserNotFound):
		step("create", "etcd user "+user, func() error { return admin.UserAdd(ctx, user, pw) })
	case err != nil:
		if unreachable(err) {
			return nil
		}
		return rootErr(err)
	case authOn && !userOK:
		if o.EtcdPasswordFile != "" {
			return fmt.Errorf("etcd user %s exists with another password than the one in %s (--etcd-password-file), nothing written", user, o.EtcdPasswordFile)
		}
		return fmt.Errorf("etcd user %s exists with another password than %s/%s/etcd: copy that file from the node that created the user "+
			"(or give its password with --etcd-password-file), nothing written", user, o.SecretsDir, o.Scope)
	}
	perms, err := admin.RolePermissions(ctx, role)
	switch {
	case errors.Is(err, dcs.ErrRoleNotFound):
		perms = nil
		step("create", "etcd role "+role, func() error { return admin.RoleAdd(ctx, role) })
	case err != nil:
		if unreachable(err) {
			return nil
		}
		return rootErr(err)
	}
	granted := false
	for _, p := range perms {
		if p == perm {
			granted = true
		} else {
			in.warn("etcd role %s also allows %s on [%q, %q): not given by pghook install, left as it is", role, p.Type, p.Key, p.RangeEnd)
		}
	}
	if !granted {
		step("grant", fmt.Sprintf("etcd role %s READWRITE on the prefix %s", role, prefix), func() error { return admin.RoleGrant(ctx, role, perm) })
	}
	has := false
	for _, r := range roles {
		has = has || r == role
	}
	if !has {
		step("grant", fmt.Sprintf("etcd role %s to user %s", role, user), func() error { return admin.UserGrantRole(ctx, user, role) })
	}

	if len(todo) == 0 {
		in.say("unchanged  etcd user %s (role %s: READWRITE on %s)", user, role, prefix)
	}
	for _, a := range todo {
		in.res.Changes++
		if in.o.DryRun {
			in.say("would %s %s", a.verb, a.what)
			continue
		}
		if err := a.do(); err != nil {
			if unreachable(err) {
				return nil
			}
			return rootErr(err)
		}
		in.say("%-10s %s", pastTense(a.verb), a.what)
	}
	if !authOn {
		in.warn("etcd authentication is not enabled: user %s and role %s exist, but etcd does not enforce them until `etcdctl auth enable`", user, role)
	}
	return nil
}

func pastTense(verb string) string {
	if strings.HasSuffix(verb, "e") {
		return verb + "d"
	}
	return verb + "ed"
}
