// Package patroni is pghook's read-only view of Patroni's world: the parts
// of patroni.yml that pghook needs (including the DCS sections the etcd
// client of internal/dcs is built from), Patroni's key layout, a reader of
// the leader key through etcd's v2 API (the etcd: section), and the REST
// API. pghook never writes what Patroni owns. The etcd v3 client lives in
// internal/dcs, not here: this package links no gRPC.
package patroni

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"
)

// Config is patroni.yml as pghook knows it: the keys pghook reads (Load,
// Parse) and the ones `pghook install` writes (the same types, encoded in
// this order). Keys pghook only writes are typed so that reading a file
// whose values Patroni accepts in another form never fails on them (Int,
// Bool, Basebackup as any).
type Config struct {
	Path       string    `yaml:"-"`
	Scope      string    `yaml:"scope"`
	Namespace  string    `yaml:"namespace"`
	Name       string    `yaml:"name"`
	RestAPI    RestAPI   `yaml:"restapi"`
	Etcd3      *Etcd     `yaml:"etcd3,omitempty"`
	Etcd       *Etcd     `yaml:"etcd,omitempty"`
	Consul     yaml.Node `yaml:"consul,omitempty"`
	ZooKeeper  yaml.Node `yaml:"zookeeper,omitempty"`
	Kubernetes yaml.Node `yaml:"kubernetes,omitempty"`
	Raft       yaml.Node `yaml:"raft,omitempty"`
	Watchdog   *Watchdog `yaml:"watchdog,omitempty"`
	Bootstrap  Bootstrap `yaml:"bootstrap"`
	Postgresql Postgres  `yaml:"postgresql"`
	Tags       Tags      `yaml:"tags"`
}

// RestAPI is the restapi section.
type RestAPI struct {
	Listen         string     `yaml:"listen"`
	ConnectAddress string     `yaml:"connect_address"`
	CertFile       string     `yaml:"certfile,omitempty"`
	KeyFile        string     `yaml:"keyfile,omitempty"`
	CAFile         string     `yaml:"cafile,omitempty"`
	Auth           *BasicAuth `yaml:"authentication,omitempty"`
}

// BasicAuth is a user name and password. String never shows the password.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

func (b BasicAuth) String() string { return b.Username + ":*****" }

// Etcd is an etcd or etcd3 section.
type Etcd struct {
	Host     string    `yaml:"host,omitempty"`
	Hosts    yaml.Node `yaml:"hosts,omitempty"` // list or comma-separated string; see HostList
	URL      string    `yaml:"url,omitempty"`
	Proxy    string    `yaml:"proxy,omitempty"`
	SRV      string    `yaml:"srv,omitempty"`
	Protocol string    `yaml:"protocol,omitempty"`
	Username string    `yaml:"username,omitempty"`
	Password string    `yaml:"password,omitempty"`
	CACert   string    `yaml:"cacert,omitempty"`
	Cert     string    `yaml:"cert,omitempty"`
	Key      string    `yaml:"key,omitempty"`
}

// HostList is an etcd hosts value written as a YAML list.
func HostList(hosts []string) yaml.Node {
	var n yaml.Node
	n.Encode(hosts) // a []string always encodes
	return n
}

// Watchdog is the watchdog section.
type Watchdog struct {
	Mode string `yaml:"mode"`
}

// Bootstrap is the bootstrap section: what Patroni uses to create a
// cluster, and the dynamic configuration it first writes to the DCS.
type Bootstrap struct {
	DCS      BootstrapDCS `yaml:"dcs"`
	Initdb   []any        `yaml:"initdb"`
	PgHBA    []string     `yaml:"pg_hba"`
	PostInit string       `yaml:"post_init"`
}

// BootstrapDCS is bootstrap.dcs.
type BootstrapDCS struct {
	// TTL is kept as written (a number, or a quoted one): see Config.TTL.
	TTL                  yaml.Node   `yaml:"ttl"`
	LoopWait             Int         `yaml:"loop_wait"`
	RetryTimeout         Int         `yaml:"retry_timeout"`
	MaximumLagOnFailover Int         `yaml:"maximum_lag_on_failover"`
	Postgresql           DCSPostgres `yaml:"postgresql"`
	// StandbyCluster is kept as written: see Config.StandbyCluster.
	StandbyCluster yaml.Node `yaml:"standby_cluster,omitempty"`
}

// DCSPostgres is bootstrap.dcs.postgresql.
type DCSPostgres struct {
	UsePgRewind Bool           `yaml:"use_pg_rewind"`
	UseSlots    Bool           `yaml:"use_slots"`
	Parameters  map[string]any `yaml:"parameters"`
}

// Postgres is the postgresql section.
type Postgres struct {
	Listen               string                `yaml:"listen"`
	ConnectAddress       string                `yaml:"connect_address"`
	DataDir              string                `yaml:"data_dir"`
	BinDir               string                `yaml:"bin_dir"`
	ConfigDir            string                `yaml:"config_dir,omitempty"`
	Pgpass               string                `yaml:"pgpass"`
	UseUnixSocket        Bool                  `yaml:"use_unix_socket"`
	Authentication       map[string]*BasicAuth `yaml:"authentication"`
	Parameters           map[string]any        `yaml:"parameters"`
	Callbacks            map[string]string     `yaml:"callbacks"`
	CreateReplicaMethods []string              `yaml:"create_replica_methods"`
	PgHBA                []string              `yaml:"pg_hba,omitempty"`
	// Pghook is the create_replica method section of pghook: Patroni
	// passes each key to `pghook create-replica` as --key=value.
	Pghook map[string]any `yaml:"pghook"`
	// Basebackup is a map or a list in Patroni's schema.
	Basebackup any `yaml:"basebackup"`
}

// Tags is the tags section.
type Tags struct {
	NoFailover    Bool `yaml:"nofailover"`
	NoLoadBalance Bool `yaml:"noloadbalance"`
	CloneFrom     Bool `yaml:"clonefrom"`
	NoSync        Bool `yaml:"nosync"`
}

// Int is an integer that pghook writes; read, a value that is not a plain
// integer (Patroni also takes "10") is kept as 0 instead of failing the file.
type Int int

// UnmarshalYAML reads an integer, quoted or not.
func (i *Int) UnmarshalYAML(n *yaml.Node) error {
	if v, err := strconv.Atoi(strings.TrimSpace(n.Value)); err == nil && n.Kind == yaml.ScalarNode {
		*i = Int(v)
	}
	return nil
}

// Bool is a boolean that pghook writes; read, a value that is not a YAML
// boolean is kept as false instead of failing the file.
type Bool bool

// UnmarshalYAML reads a boolean (true/false, and YAML 1.1's on/yes/…).
func (b *Bool) UnmarshalYAML(n *yaml.Node) error {
	var v bool
	if n.Kind == yaml.ScalarNode && n.Decode(&v) == nil {
		*b = Bool(v)
	}
	return nil
}

// Load reads and checks patroni.yml at p. Errors name the file and key.
func Load(p string) (*Config, error) {
	b, err := readConfig(p)
	if err != nil {
		return nil, fmt.Errorf("reading Patroni config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		//lint:ignore ST1005 Patroni is a name
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

// TLSConfig is the client TLS of the section: the CA of cacert, and the
// client certificate of cert and key (key may be left out when cert is a
// combined PEM, as Patroni accepts).
func (e *Etcd) TLSConfig() (*tls.Config, error) {
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
			key = e.Cert
		}
		pair, err := tls.LoadX509KeyPair(e.Cert, key)
		if err != nil {
			return nil, fmt.Errorf("cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
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
