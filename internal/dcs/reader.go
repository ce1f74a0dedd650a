package dcs

import (
	"context"
	"fmt"
	"time"

	"github.com/pghook/pghook/internal/patroni"
)

// NewLeaderReader returns the view of the leader lock that fits the DCS
// section of c: the etcd v3 API for etcd3 (a *Client), the v2 keys API
// for etcd, and the local Patroni's /cluster otherwise. The etcd views
// also watch the leader key (WatchLeader). Calls are bounded by timeout
// and by the caller's context.
func NewLeaderReader(c *patroni.Config, timeout time.Duration) (patroni.LeaderReader, error) {
	switch c.DCS() {
	case "etcd3":
		return Open(c, timeout)
	case "etcd":
		return c.Etcd2Reader(timeout)
	}
	return c.RestLeaderReader(timeout)
}

// ReadKey reads /<namespace>/<scope>/<name> from the DCS of patroni.yml
// (etcd3 through the v3 API, etcd through the v2 keys API). found is false
// when the key does not exist.
func ReadKey(ctx context.Context, c *patroni.Config, timeout time.Duration, name string) (value string, found bool, err error) {
	switch c.DCS() {
	case "etcd3":
		cli, err := Open(c, timeout)
		if err != nil {
			return "", false, err
		}
		defer cli.Close()
		return cli.Get(ctx, c.Key(name))
	case "etcd":
		r, err := c.Etcd2Reader(timeout)
		if err != nil {
			return "", false, err
		}
		return r.Read(ctx, c.Key(name))
	}
	return "", false, fmt.Errorf("%w (%q)", ErrNoDCSReader, c.DCS())
}

// MemberAPIs lists the members of the cluster from the DCS, so that a
// client can ask another member's REST API when the local Patroni does not
// answer (as patronictl does). Other DCSs than etcd3 and etcd return an
// error wrapping ErrNoDCSReader. Members are sorted by name.
func MemberAPIs(ctx context.Context, c *patroni.Config, timeout time.Duration) ([]patroni.MemberAPI, error) {
	prefix := c.Key("members") + "/"
	var values map[string]string
	switch c.DCS() {
	case "etcd3":
		cli, err := Open(c, timeout)
		if err != nil {
			return nil, err
		}
		defer cli.Close()
		if values, err = cli.GetPrefix(ctx, prefix); err != nil {
			return nil, err
		}
	case "etcd":
		r, err := c.Etcd2Reader(timeout)
		if err != nil {
			return nil, err
		}
		if values, err = r.List(ctx, prefix[:len(prefix)-1]); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w (%q): cannot list the members", ErrNoDCSReader, c.DCS())
	}
	return patroni.ParseMembers(prefix, values), nil
}

// DynamicConfig is the DCS's dynamic configuration: the JSON of the
// `config` key, which `patronictl edit-config` changes, for
// patroni.Config's TTL and StandbyCluster. The read is bounded by timeout;
// a DCS pghook cannot read, or no such key, gives "" (patroni.yml decides).
func DynamicConfig(ctx context.Context, c *patroni.Config, timeout time.Duration) string {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dynamic, found, err := ReadKey(rctx, c, timeout, "config")
	if err != nil || !found {
		return ""
	}
	return dynamic
}
