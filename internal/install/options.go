// Package install implements `pghook install`: it gathers a node's facts,
// renders patroni.yml, pghook.yaml, the Patroni systemd unit and a sysctl
// drop-in, and writes them idempotently. Passwords are generated once and
// kept under /etc/pghook/secrets/<scope>/; a file changed by hand since
// pghook wrote it is not overwritten without Force (which keeps a backup).
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pghook/pghook/internal/config"
	"gopkg.in/yaml.v3"
)

// Fixed paths of the installed package (the .deb).
const (
	PghookBin    = "/usr/bin/pghook"
	VIPHelper    = "/usr/lib/pghook/pghook-vip"
	PghookYAML   = "/etc/pghook/pghook.yaml"
	SecretsDir   = "/etc/pghook/secrets"
	StateFile    = "/var/lib/pghook/install-state.json"
	SystemdEtc   = "/etc/systemd/system"
	VIPWatchUnit = "/lib/systemd/system/pghook-vip-watch@.service"
	SysctlDir    = "/etc/sysctl.d"
	DefaultNS    = "/service/"
	// DefaultSocketDir is Debian's unix_socket_directories.
	DefaultSocketDir = "/var/run/postgresql"
	SuperuserName    = "postgres"
	ReplicationName  = "replicator"
	RewindName       = "rewind_user"
	RestAPIName      = "patroni"
)

// Options are the cluster-wide settings of `pghook install`. The yaml
// names are the flag names, so a --from file reads like the command line.
type Options struct {
	Scope            string   `yaml:"scope"`
	Name             string   `yaml:"name"`
	Interface        string   `yaml:"interface"`
	Address          string   `yaml:"address"`
	Network          string   `yaml:"network"`
	Members          []string `yaml:"members"`
	EtcdEndpoints    []string `yaml:"etcd-endpoints"`
	DCS              string   `yaml:"dcs"`
	Namespace        string   `yaml:"namespace"`
	EtcdUser         string   `yaml:"etcd-user"`
	EtcdPasswordFile string   `yaml:"etcd-password-file"`
	EtcdCACert       string   `yaml:"etcd-cacert"`
	EtcdCert         string   `yaml:"etcd-cert"`
	EtcdKey          string   `yaml:"etcd-key"`
	VIP              VIPList  `yaml:"vip"`
	VIPBackend       string   `yaml:"vip-backend"`
	VIPInterface     string   `yaml:"vip-interface"`
	VIPLabel         string   `yaml:"vip-label"`
	BackupDir        string   `yaml:"backup-dir"`
	// BackupSchedule, when set, lays the scheduled backup timer:
	// daily, hourly, weekly or a systemd OnCalendar expression.
	BackupSchedule string `yaml:"backup-schedule"`
	// BackupKeep and BackupOlderThan are the scheduled backups' retention
	// (pghook backup --keep, --older-than).
	BackupKeep      int    `yaml:"backup-keep"`
	BackupOlderThan string `yaml:"backup-older-than"`
	Port            int    `yaml:"port"`
	RestPort        int    `yaml:"rest-port"`
	PGVersion       string `yaml:"pg-version"`
	DataDir         string `yaml:"data-dir"`
	Layout          string `yaml:"layout"`
	PatroniConfig   string `yaml:"patroni-config"`

	// The dns VIP backend (--dns-name enables it): the record, its zone
	// (default: the name without its first label), the zone's primary
	// server and the TSIG key file.
	DNSName        string `yaml:"dns-name"`
	DNSZone        string `yaml:"dns-zone"`
	DNSServer      string `yaml:"dns-server"`
	DNSReplicaName string `yaml:"dns-replica-name"`
	TSIGKeyFile    string `yaml:"tsig-key-file"`

	// The exec VIP backend (--exec-hold enables it): the commands that
	// hold, release and check the VIP (argument lists, the first an
	// absolute path), each one's timeout (0: 10s), and the address the
	// commands are told about (PGHOOK_VIP_ADDRESS; optional).
	ExecHold    []string      `yaml:"exec-hold"`
	ExecRelease []string      `yaml:"exec-release"`
	ExecCheck   []string      `yaml:"exec-check"`
	ExecTimeout time.Duration `yaml:"exec-timeout"`
	ExecAddress string        `yaml:"exec-address"`

	// ConfigDir is PostgreSQL's configuration directory outside the data
	// directory (Patroni's postgresql.config_dir); "" follows Layout.
	ConfigDir string `yaml:"config-dir"`

	// Adopt puts an existing cluster (DataDir, ConfigDir) under Patroni
	// instead of leaving Patroni to create one; DebianCluster ("15/main")
	// names it the Debian way and implies Adopt. CreateRoles lets install
	// create or fix the replication and rewind roles (and the superuser's
	// password) in the adopted cluster.
	Adopt         bool   `yaml:"adopt"`
	DebianCluster string `yaml:"debian-cluster"`
	CreateRoles   bool   `yaml:"create-roles"`

	// Patroni timing (bootstrap.dcs); 0: 30 / 10 / 10.
	TTL          int `yaml:"ttl"`
	LoopWait     int `yaml:"loop-wait"`
	RetryTimeout int `yaml:"retry-timeout"`
	// Watchdog is Patroni's watchdog.mode; "" leaves Patroni's default.
	Watchdog string `yaml:"watchdog"`
	// PGParameters are NAME=VALUE PostgreSQL settings; the ones Patroni
	// takes from the DCS only go to bootstrap.dcs, the others to
	// postgresql.parameters.
	PGParameters []string `yaml:"pg-parameter"`
	// KeepData is create_replica_methods' pghook.keep_data (nil: true).
	KeepData *bool `yaml:"keep-data"`
	// Callback replaces `pghook callback` in postgresql.callbacks.
	Callback string `yaml:"callback"`

	// Where things go (the defaults are the package's paths). A lab, or
	// several nodes sharing one file system, relocates them.
	PghookConfig string `yaml:"pghook-config"`
	SecretsDir   string `yaml:"secrets-dir"`
	StateFile    string `yaml:"state-file"`
	SystemdDir   string `yaml:"systemd-dir"`
	SysctlDir    string `yaml:"sysctl-dir"`
	Pgpass       string `yaml:"pgpass"`
	SocketDir    string `yaml:"socket-dir"`
	PghookBin    string `yaml:"pghook-bin"`
	VIPHelper    string `yaml:"vip-helper"`

	// etcd user provisioning (--etcd-user): the root user and a file
	// holding its password (or PGHOOK_ETCD_ROOT_PASSWORD in the
	// environment, read by the CLI into EtcdRootPassword).
	EtcdRootUser         string `yaml:"etcd-root-user"`
	EtcdRootPasswordFile string `yaml:"etcd-root-password-file"`
	EtcdRootPassword     string `yaml:"-"`
	// EtcdTimeout bounds each etcd request of the provisioning (0: 3s).
	EtcdTimeout time.Duration `yaml:"-"`

	// Not settable from a --from file.
	Root   string `yaml:"-"`
	DryRun bool   `yaml:"-"`
	Force  bool   `yaml:"-"`
	// NoValidate skips `patroni --validate-config` (tests).
	NoValidate bool `yaml:"-"`
}

// UsageError is a bad setting; Flag names it (without dashes).
type UsageError struct {
	Flag string
	Msg  string
}

func (e *UsageError) Error() string { return "--" + e.Flag + ": " + e.Msg }

func usage(flag, format string, a ...any) error {
	return &UsageError{Flag: flag, Msg: fmt.Sprintf(format, a...)}
}

// IsUsage reports whether err is a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// ReadFrom decodes a --from file; unknown keys are errors.
func ReadFrom(r io.Reader) (Options, error) {
	var o Options
	b, err := io.ReadAll(r)
	if err != nil {
		return o, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil && !errors.Is(err, io.EOF) {
		return o, err
	}
	return o, nil
}

var (
	scopeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`) })
	ifRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`) })
)

// normalize fills defaults and checks the settings that need no facts,
// one concern after another; the first bad setting is the error.
func (o *Options) normalize() error {
	for _, step := range []func() error{
		o.normalizeIdentity,
		o.normalizeDCS,
		o.normalizeNetwork,
		o.normalizeVIP,
		o.normalizePorts,
		o.normalizePatroni,
		o.normalizeLayout,
		o.checkPaths,
		o.checkBackupSchedule,
		o.defaultPaths,
		o.checkRoot,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// normalizeIdentity checks the scope, the member name and the interface.
func (o *Options) normalizeIdentity() error {
	if o.Scope == "" {
		return usage("scope", "is required (the Patroni scope, i.e. the cluster name)")
	}
	if !scopeRE().MatchString(o.Scope) || strings.Contains(o.Scope, "..") {
		return usage("scope", "%q is not a valid name: use letters, digits, '_', '-' and '.', starting with a letter or digit (at most 63)", o.Scope)
	}
	if o.Name != "" && (!scopeRE().MatchString(o.Name) || strings.Contains(o.Name, "..")) {
		return usage("name", "%q is not a valid member name: use letters, digits, '_', '-' and '.'", o.Name)
	}
	if o.Interface != "" && !ifRE().MatchString(o.Interface) {
		return usage("interface", "%q is not an interface name", o.Interface)
	}
	return nil
}

// normalizeDCS checks the DCS, its namespace, endpoints and credentials, and fills
// their defaults (etcd3, /service/, root, 3s).
func (o *Options) normalizeDCS() error {
	if o.DCS == "" {
		o.DCS = "etcd3"
	}
	if o.DCS != "etcd3" && o.DCS != "etcd" {
		return usage("dcs", "%q: want etcd3 or etcd", o.DCS)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNS
	}
	if !strings.HasPrefix(o.Namespace, "/") {
		return usage("namespace", "%q must start with /", o.Namespace)
	}
	if len(o.EtcdEndpoints) == 0 {
		return usage("etcd-endpoints", "is required (host:port or URL of each etcd member, comma-separated)")
	}
	for _, e := range o.EtcdEndpoints {
		if _, _, err := splitEndpoint(e); err != nil {
			return usage("etcd-endpoints", "%v", err)
		}
	}
	if o.EtcdUser == "" && o.EtcdPasswordFile != "" {
		return usage("etcd-user", "is required with --etcd-password-file")
	}
	if o.EtcdUser == "" && (o.EtcdRootPasswordFile != "" || o.EtcdRootPassword != "") {
		return usage("etcd-user", "is required with the etcd root credentials (they only serve to create that user)")
	}
	if o.EtcdUser != "" && !scopeRE().MatchString(o.EtcdUser) {
		return usage("etcd-user", "%q is not a valid user name: use letters, digits, '_', '-' and '.'", o.EtcdUser)
	}
	if o.DCS == "etcd" && o.EtcdUser != "" {
		if o.EtcdPasswordFile == "" {
			return usage("etcd-password-file", "is required with --etcd-user and --dcs etcd: pghook creates etcd users through the v3 API only (--dcs etcd3); for the v2 API create the user by hand and give its password in a file")
		}
		if o.EtcdRootPasswordFile != "" || o.EtcdRootPassword != "" {
			return usage("dcs", "etcd: pghook creates etcd users through the v3 API only: use --dcs etcd3, or create the v2 user by hand")
		}
	}
	if o.EtcdRootUser == "" {
		o.EtcdRootUser = "root"
	}
	if o.EtcdTimeout <= 0 {
		o.EtcdTimeout = 3 * time.Second
	}
	if (o.EtcdCert == "") != (o.EtcdKey == "") {
		return usage("etcd-cert", "--etcd-cert and --etcd-key go together")
	}
	return nil
}

// normalizeNetwork checks the node's address, its network and the members' addresses.
func (o *Options) normalizeNetwork() error {
	if o.Address != "" {
		if _, err := netip.ParseAddr(o.Address); err != nil {
			return usage("address", "%q is not an IP address", o.Address)
		}
	}
	if o.Network != "" {
		if _, err := netip.ParsePrefix(o.Network); err != nil {
			return usage("network", "%q is not a CIDR network, e.g. 10.0.0.0/24", o.Network)
		}
	}
	for _, m := range o.Members {
		if _, err := netip.ParseAddr(m); err != nil {
			return usage("members", "%q is not an IP address", m)
		}
	}
	return nil
}

// VIPList is --vip: one VIP, or one per subnet the cluster spans (the flag
// repeated; in a --from file a CIDR or a list of them).
type VIPList []string

// UnmarshalYAML accepts a single CIDR as well as a list.
func (l *VIPList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = VIPList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// normalizeVIP checks the VIP and its backend (netlink with --vip, dns with
// --dns-name alone; --vip with --dns-name names the VIP) and the VIP's
// interface.
func (o *Options) normalizeVIP() error {
	if len(o.VIP) > config.MaxVIPAddresses {
		return usage("vip", "given %d times: at most %d (one VIP per subnet)", len(o.VIP), config.MaxVIPAddresses)
	}
	seen := map[netip.Prefix]bool{}
	for _, v := range o.VIP {
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is4() {
			return usage("vip", "%q is not an IPv4 CIDR, e.g. 10.0.0.100/24", v)
		}
		if seen[p.Masked()] {
			return usage("vip", "%q: another --vip is in the same subnet (give one VIP per subnet)", v)
		}
		seen[p.Masked()] = true
	}
	if len(o.VIP) > 0 && o.VIPBackend == "" {
		o.VIPBackend = "netlink"
	}
	if err := o.checkDNS(); err != nil {
		return err
	}
	if err := o.checkExec(); err != nil {
		return err
	}
	switch o.VIPBackend {
	case "dns", "exec":
	case "", "none":
		if len(o.VIP) > 0 {
			return usage("vip-backend", "%q with --vip: want netlink", o.VIPBackend)
		}
	case "netlink":
		if len(o.VIP) == 0 {
			return usage("vip", "is required with --vip-backend netlink")
		}
	default:
		return usage("vip-backend", "%q: want netlink, dns (with --dns-name), exec (with --exec-hold) or none (pcs: edit pghook.yaml by hand)", o.VIPBackend)
	}
	if o.VIPInterface != "" && !ifRE().MatchString(o.VIPInterface) {
		return usage("vip-interface", "%q is not an interface name", o.VIPInterface)
	}
	return nil
}

// normalizePorts fills and checks PostgreSQL's and the REST API's ports and the
// PostgreSQL version.
func (o *Options) normalizePorts() error {
	if o.Port == 0 {
		o.Port = 5432
	}
	if o.RestPort == 0 {
		o.RestPort = 8008
	}
	if o.Port < 1 || o.Port > 65535 {
		return usage("port", "%d is not in 1..65535", o.Port)
	}
	if o.RestPort < 1 || o.RestPort > 65535 || o.RestPort == o.Port {
		return usage("rest-port", "%d is not in 1..65535 or equals --port", o.RestPort)
	}
	if o.PGVersion != "" && !regexp.MustCompile(`^[0-9]{1,3}$`).MatchString(o.PGVersion) {
		return usage("pg-version", "%q: want a major version such as 15", o.PGVersion)
	}
	return nil
}

// normalizePatroni fills and checks Patroni's timing (ttl ≥ loop_wait + 2 ×
// retry_timeout), its watchdog, the PostgreSQL parameters and the callback.
func (o *Options) normalizePatroni() error {
	if o.TTL == 0 {
		o.TTL = 30
	}
	if o.LoopWait == 0 {
		o.LoopWait = 10
	}
	if o.RetryTimeout == 0 {
		o.RetryTimeout = 10
	}
	if o.TTL < 0 || o.LoopWait < 0 || o.RetryTimeout < 0 {
		return usage("ttl", "--ttl, --loop-wait and --retry-timeout are seconds > 0")
	}
	if o.LoopWait+2*o.RetryTimeout > o.TTL {
		return usage("ttl", "%d is less than loop_wait + 2 × retry_timeout = %d + 2 × %d: Patroni could lose the leader lock while retrying (raise --ttl or lower --loop-wait/--retry-timeout)", o.TTL, o.LoopWait, o.RetryTimeout)
	}
	switch o.Watchdog {
	case "", "off", "automatic", "required":
	default:
		return usage("watchdog", "%q: want off, automatic or required", o.Watchdog)
	}
	for _, kv := range o.PGParameters {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !pgParamRE().MatchString(name) {
			return usage("pg-parameter", "%q: want NAME=VALUE, e.g. shared_buffers=1GB", kv)
		}
		if pgParamManaged[name] != "" {
			return usage("pg-parameter", "%s is set by install: %s", name, pgParamManaged[name])
		}
	}
	if strings.ContainsAny(o.Callback, "\n\r") {
		return usage("callback", "must be one line")
	}
	return nil
}

// normalizeLayout fills and checks the layout and what adopting a cluster needs.
func (o *Options) normalizeLayout() error {
	if o.Layout == "" {
		o.Layout = "debian"
	}
	if o.Layout != "debian" && o.Layout != "seed" {
		return usage("layout", "%q: want debian or seed", o.Layout)
	}
	if o.DebianCluster != "" {
		o.Adopt = true
	}
	if o.CreateRoles && !o.Adopt {
		return usage("create-roles", "only with --adopt or --debian-cluster (a cluster Patroni creates gets its roles from Patroni)")
	}
	if o.Adopt && o.DataDir == "" {
		return usage("data-dir", "is required with --adopt (the existing cluster's data directory), or name the cluster with --debian-cluster VERSION/NAME")
	}
	return nil
}

// checkPaths checks that every path setting is absolute, without blanks or quotes.
func (o *Options) checkPaths() error {
	for flag, p := range map[string]string{"data-dir": o.DataDir, "config-dir": o.ConfigDir, "patroni-config": o.PatroniConfig, "backup-dir": o.BackupDir,
		"etcd-cacert": o.EtcdCACert, "etcd-cert": o.EtcdCert, "etcd-key": o.EtcdKey, "etcd-password-file": o.EtcdPasswordFile,
		"etcd-root-password-file": o.EtcdRootPasswordFile, "pghook-config": o.PghookConfig, "secrets-dir": o.SecretsDir,
		"state-file": o.StateFile, "systemd-dir": o.SystemdDir, "sysctl-dir": o.SysctlDir, "pgpass": o.Pgpass,
		"socket-dir": o.SocketDir, "pghook-bin": o.PghookBin, "vip-helper": o.VIPHelper} {
		if p != "" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\n'\"")) {
			return usage(flag, "%q must be an absolute path without blanks or quotes", p)
		}
	}
	return nil
}

// defaultPaths fills the paths left empty with the package's.
func (o *Options) defaultPaths() error {
	if o.PatroniConfig == "" {
		o.PatroniConfig = "/etc/patroni/" + o.Scope + ".yml"
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.PghookConfig, PghookYAML)
	def(&o.SecretsDir, SecretsDir)
	def(&o.StateFile, StateFile)
	def(&o.SystemdDir, SystemdEtc)
	def(&o.SysctlDir, SysctlDir)
	def(&o.SocketDir, DefaultSocketDir)
	def(&o.PghookBin, PghookBin)
	def(&o.VIPHelper, VIPHelper)
	return nil
}

// checkRoot checks --root, the directory every path is relative to.
func (o *Options) checkRoot() error {
	if o.Root != "" {
		if !strings.HasPrefix(o.Root, "/") {
			return usage("root", "%q must be an absolute path", o.Root)
		}
		if fi, err := os.Stat(o.Root); err != nil || !fi.IsDir() {
			return usage("root", "%q is not a directory", o.Root)
		}
	}
	return nil
}

var pgParamRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)?$`) })

// pgParamManaged are the settings install (or Patroni) sets itself.
var pgParamManaged = map[string]string{
	"unix_socket_directories": "use --socket-dir",
	"port":                    "use --port",
	"listen_addresses":        "Patroni sets it from postgresql.listen",
	"hba_file":                "Patroni manages it",
	"ident_file":              "Patroni manages it",
	"data_directory":          "use --data-dir",
	"config_file":             "Patroni manages it",
	"cluster_name":            "Patroni sets it to the scope",
}

// dcsOnlyParams are the PostgreSQL settings Patroni takes from the DCS
// only (its documentation: values in the local configuration have no
// effect), so install puts them under bootstrap.dcs.
var dcsOnlyParams = map[string]bool{
	"max_connections": true, "max_locks_per_transaction": true, "max_worker_processes": true,
	"max_prepared_transactions": true, "wal_level": true, "track_commit_timestamp": true,
	"max_wal_senders": true, "max_replication_slots": true, "wal_keep_segments": true,
	"wal_keep_size": true, "wal_log_hints": true, "hot_standby": true,
}

// splitEndpoint returns the scheme ("" when none) and host:port of an etcd
// endpoint given as host:port or URL.
func splitEndpoint(e string) (scheme, hostport string, err error) {
	hostport = e
	if i := strings.Index(e, "://"); i >= 0 {
		scheme, hostport = e[:i], strings.TrimSuffix(e[i+3:], "/")
		if scheme != "http" && scheme != "https" {
			return "", "", fmt.Errorf("%q: scheme must be http or https", e)
		}
	}
	if !strings.Contains(hostport, ":") {
		hostport += ":2379"
	}
	if strings.ContainsAny(hostport, "/ ,") {
		return "", "", fmt.Errorf("%q is not host:port or a URL", e)
	}
	return scheme, hostport, nil
}
