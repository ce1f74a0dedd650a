// Package patroni is pghook's read-only view of Patroni's world: the parts
// of patroni.yml that pghook needs, an etcd v3 client built from its DCS
// section, the leader key, and the REST API. pghook never writes what
// Patroni owns.
package patroni

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"
)

// Config is the subset of patroni.yml that pghook reads.
type Config struct {
	Path       string    `yaml:"-"`
	Name       string    `yaml:"name"`
	Scope      string    `yaml:"scope"`
	Namespace  string    `yaml:"namespace"`
	RestAPI    RestAPI   `yaml:"restapi"`
	Etcd3      *Etcd     `yaml:"etcd3"`
	Etcd       *Etcd     `yaml:"etcd"`
	Consul     yaml.Node `yaml:"consul"`
	ZooKeeper  yaml.Node `yaml:"zookeeper"`
	Kubernetes yaml.Node `yaml:"kubernetes"`
	Raft       yaml.Node `yaml:"raft"`
	Postgresql Postgres  `yaml:"postgresql"`
	Bootstrap  struct {
		DCS struct {
			TTL yaml.Node `yaml:"ttl"`
		} `yaml:"dcs"`
	} `yaml:"bootstrap"`
}

// RestAPI is the restapi section.
type RestAPI struct {
	Listen         string     `yaml:"listen"`
	ConnectAddress string     `yaml:"connect_address"`
	CertFile       string     `yaml:"certfile"`
	KeyFile        string     `yaml:"keyfile"`
	CAFile         string     `yaml:"cafile"`
	Auth           *BasicAuth `yaml:"authentication"`
}

// BasicAuth is a user name and password. String never shows the password.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

func (b BasicAuth) String() string { return b.Username + ":*****" }

// Etcd is an etcd or etcd3 section.
type Etcd struct {
	Host     string    `yaml:"host"`
	Hosts    yaml.Node `yaml:"hosts"` // list or comma-separated string
	URL      string    `yaml:"url"`
	Proxy    string    `yaml:"proxy"`
	SRV      string    `yaml:"srv"`
	Protocol string    `yaml:"protocol"`
	Username string    `yaml:"username"`
	Password string    `yaml:"password"`
	CACert   string    `yaml:"cacert"`
	Cert     string    `yaml:"cert"`
	Key      string    `yaml:"key"`
}

// Postgres is the postgresql section.
type Postgres struct {
	Listen         string                `yaml:"listen"`
	ConnectAddress string                `yaml:"connect_address"`
	DataDir        string                `yaml:"data_dir"`
	BinDir         string                `yaml:"bin_dir"`
	ConfigDir      string                `yaml:"config_dir"`
	Pgpass         string                `yaml:"pgpass"`
	Parameters     map[string]any        `yaml:"parameters"`
	Authentication map[string]*BasicAuth `yaml:"authentication"`
}

// Load reads and checks patroni.yml at p. Errors name the file and key.
func Load(p string) (*Config, error) {
	b, err := readConfig(p)
	if err != nil {
		return nil, fmt.Errorf("reading Patroni config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("Patroni config %s: %w", p, err)
	}
	c.Path = p
	return c, nil
}

// maxConfigSize bounds patroni.yml: the file belongs to postgres, and the
// VIP helper reads it too.
const maxConfigSize = 4 << 20

// readConfig reads a regular file of at most maxConfigSize bytes; a FIFO
// or a device in its place is refused without blocking.
func readConfig(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxConfigSize)
	}
	return b, nil
}

// Parse decodes patroni.yml content and checks the keys pghook relies on.
func Parse(b []byte) (*Config, error) {
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var missing []string
	if c.Scope == "" {
		missing = append(missing, "scope")
	}
	if c.Name == "" {
		missing = append(missing, "name")
	}
	if c.Postgresql.DataDir == "" {
		missing = append(missing, "postgresql.data_dir")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("key %s is missing", strings.Join(missing, ", "))
	}
	if c.Etcd3 != nil && c.Etcd != nil {
		return nil, errors.New("keys etcd and etcd3 are both set: Patroni uses exactly one DCS")
	}
	if c.Postgresql.Listen != "" {
		if _, err := c.Port(); err != nil {
			return nil, fmt.Errorf("key postgresql.listen: %w", err)
		}
	}
	return &c, nil
}

// DCS reports which DCS section is configured: etcd3, etcd, consul,
// zookeeper, kubernetes, raft, or "" for none.
func (c *Config) DCS() string {
	switch {
	case c.Etcd3 != nil:
		return "etcd3"
	case c.Etcd != nil:
		return "etcd"
	case !c.Consul.IsZero():
		return "consul"
	case !c.ZooKeeper.IsZero():
		return "zookeeper"
	case !c.Kubernetes.IsZero():
		return "kubernetes"
	case !c.Raft.IsZero():
		return "raft"
	}
	return ""
}

// NamespaceOrDefault is the namespace with Patroni's default, "/service".
func (c *Config) NamespaceOrDefault() string {
	if c.Namespace == "" {
		return "/service"
	}
	return c.Namespace
}

// Key returns the DCS key /<namespace>/<scope>/<name>.
func (c *Config) Key(name string) string {
	return path.Join("/", c.NamespaceOrDefault(), c.Scope, name)
}

// LeaderKey is the key whose value names the leader member.
func (c *Config) LeaderKey() string { return c.Key("leader") }

// Port is PostgreSQL's port from postgresql.listen (5432 when unset).
func (c *Config) Port() (int, error) {
	l := c.Postgresql.Listen
	if l == "" {
		return 5432, nil
	}
	i := strings.LastIndex(l, ":")
	if i < 0 {
		return 5432, nil
	}
	p, err := strconv.Atoi(l[i+1:])
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("port in %q is not a number in 1..65535", l)
	}
	return p, nil
}

// SocketDir is the first of unix_socket_directories, or Debian's default.
func (c *Config) SocketDir() string {
	if v, ok := c.Postgresql.Parameters["unix_socket_directories"]; ok {
		if s := strings.TrimSpace(strings.Split(fmt.Sprint(v), ",")[0]); s != "" {
			return s
		}
	}
	return "/var/run/postgresql"
}

// UserName returns the user name of an authentication entry (superuser,
// replication, rewind), or "".
func (c *Config) UserName(kind string) string {
	if a := c.Postgresql.Authentication[kind]; a != nil {
		return a.Username
	}
	return ""
}

// RestURL is the base URL of this member's REST API.
func (c *Config) RestURL() string {
	addr := c.RestAPI.ConnectAddress
	if addr == "" {
		addr = c.RestAPI.Listen
	}
	if addr == "" {
		addr = "127.0.0.1:8008"
	}
	if h, p, err := net.SplitHostPort(addr); err == nil && (h == "" || h == "0.0.0.0" || h == "::" || h == "*") {
		addr = net.JoinHostPort("127.0.0.1", p)
	}
	scheme := "http"
	if c.RestAPI.CertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + addr
}

// Endpoints returns the client URLs of the etcd section in use.
func (e *Etcd) Endpoints() ([]string, error) {
	scheme := e.Protocol
	if scheme == "" {
		scheme = "http"
		if e.Cert != "" || e.CACert != "" {
			scheme = "https"
		}
	}
	var hosts []string
	switch e.Hosts.Kind {
	case yaml.SequenceNode:
		for _, n := range e.Hosts.Content {
			hosts = append(hosts, n.Value)
		}
	case yaml.ScalarNode:
		for _, h := range strings.Split(e.Hosts.Value, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
	}
	if len(hosts) == 0 && e.Host != "" {
		hosts = []string{e.Host}
	}
	var out []string
	for _, h := range hosts {
		if strings.Contains(h, "://") {
			out = append(out, h)
		} else {
			out = append(out, scheme+"://"+h)
		}
	}
	if len(out) == 0 {
		for _, u := range []string{e.URL, e.Proxy} {
			if u != "" {
				out = append(out, u)
			}
		}
	}
	if len(out) == 0 {
		if e.SRV != "" {
			return nil, fmt.Errorf("etcd srv discovery (%s) is not supported: list hosts instead", e.SRV)
		}
		return nil, errors.New("no etcd endpoint: set host, hosts or url")
	}
	return out, nil
}
