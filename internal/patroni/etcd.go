package patroni

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ErrNoEtcd3 is returned when patroni.yml has no etcd3 section, so the v3
// client cannot see Patroni's keys (the v2 keyspace is separate).
var ErrNoEtcd3 = errors.New("patroni: DCS is not etcd3")

// EtcdClient builds an etcd v3 client from the etcd3 section: endpoints,
// basic auth and TLS. The caller closes it.
func (c *Config) EtcdClient(dialTimeout time.Duration) (*clientv3.Client, error) {
	if c.Etcd3 == nil {
		return nil, fmt.Errorf("%w (it is %q in %s)", ErrNoEtcd3, c.DCS(), c.Path)
	}
	eps, err := c.Etcd3.Endpoints()
	if err != nil {
		return nil, fmt.Errorf("key etcd3 in %s: %w", c.Path, err)
	}
	cfg := clientv3.Config{
		Endpoints:   eps,
		DialTimeout: dialTimeout,
		Username:    c.Etcd3.Username,
		Password:    c.Etcd3.Password,
		Logger:      zap.NewNop(),
	}
	if c.Etcd3.CACert != "" || c.Etcd3.Cert != "" {
		tc, err := tlsConfig(c.Etcd3)
		if err != nil {
			return nil, fmt.Errorf("key etcd3 in %s: %w", c.Path, err)
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", eps, err)
	}
	return cli, nil
}

func tlsConfig(e *Etcd) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CACert != "" {
		pem, err := os.ReadFile(e.CACert)
		if err != nil {
			return nil, fmt.Errorf("cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cacert %s: no PEM certificate found", e.CACert)
		}
		tc.RootCAs = pool
	}
	if e.Cert != "" {
		key := e.Key
		if key == "" {
			key = e.Cert // Patroni accepts a combined PEM
		}
		pair, err := tls.LoadX509KeyPair(e.Cert, key)
		if err != nil {
			return nil, fmt.Errorf("cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Leader reads the leader key with the etcd v3 client and returns the
// member name it holds, or "" when no member holds the lock. The call is
// bounded by ctx.
func (c *Config) Leader(ctx context.Context, cli *clientv3.Client) (string, error) {
	resp, err := cli.Get(clientv3.WithRequireLeader(ctx), c.LeaderKey())
	if err != nil {
		return "", fmt.Errorf("reading %s from etcd: %w", c.LeaderKey(), err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
