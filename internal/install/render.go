package install

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pghook/pghook/internal/patroni"
	"gopkg.in/yaml.v3"
)

// Secrets are the generated (or adopted) passwords of one scope.
type Secrets struct {
	Superuser, Replication, Rewind, RestAPI string
	// Etcd is the etcd user's: read from --etcd-password-file, or
	// generated and stored as the secret "etcd".
	Etcd string
}

// secretKinds name the files under /etc/pghook/secrets/<scope>/.
var secretKinds = []string{"superuser", "replication", "rewind", "restapi"}

func (s *Secrets) ptr(kind string) *string {
	switch kind {
	case "superuser":
		return &s.Superuser
	case "replication":
		return &s.Replication
	case "rewind":
		return &s.Rewind
	case "restapi":
		return &s.RestAPI
	case "etcd":
		return &s.Etcd
	}
	panic("unknown secret " + kind)
}

func (s *Secrets) values() []string {
	var v []string
	for _, x := range []string{s.Superuser, s.Replication, s.Rewind, s.RestAPI, s.Etcd} {
		if x != "" {
			v = append(v, x)
		}
	}
	return v
}

// Layout is where things go for one scope.
type Layout struct {
	DataDir   string
	ConfigDir string // debian only
	Pgpass    string
}

func layoutFor(o *Options, f *Facts) Layout {
	l := Layout{DataDir: o.DataDir, Pgpass: o.Pgpass}
	if l.DataDir == "" {
		l.DataDir = filepath.Join("/var/lib/postgresql", f.PGVersion, o.Scope)
	}
	pgpass := "/var/lib/postgresql/.pgpass_" + o.Scope
	if o.Layout == "debian" {
		l.ConfigDir = filepath.Join("/etc/postgresql", f.PGVersion, o.Scope)
		pgpass = "/var/lib/postgresql/" + f.PGVersion + "-" + o.Scope + ".pgpass"
	}
	if o.ConfigDir != "" {
		l.ConfigDir = o.ConfigDir
	}
	if l.Pgpass == "" {
		l.Pgpass = pgpass
	}
	return l
}

// renderPatroni renders this node's patroni.yml.
func renderPatroni(o *Options, f *Facts, s *Secrets) ([]byte, error) {
	l := layoutFor(o, f)
	addr := f.Address.String()
	hp := func(port int) string { return net.JoinHostPort(addr, strconv.Itoa(port)) }
	y := patroni.Config{
		Scope:     o.Scope,
		Namespace: o.Namespace,
		Name:      f.Hostname,
		RestAPI: patroni.RestAPI{
			Listen:         "0.0.0.0:" + strconv.Itoa(o.RestPort),
			ConnectAddress: hp(o.RestPort),
			Auth:           &patroni.BasicAuth{Username: RestAPIName, Password: s.RestAPI},
		},
		Bootstrap: patroni.Bootstrap{
			DCS: patroni.BootstrapDCS{TTL: intNode(o.TTL), LoopWait: patroni.Int(o.LoopWait), RetryTimeout: patroni.Int(o.RetryTimeout), MaximumLagOnFailover: 1048576,
				Postgresql: patroni.DCSPostgres{UsePgRewind: true, UseSlots: true, Parameters: map[string]any{
					"wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
					"max_wal_senders": 10, "max_replication_slots": 10, "wal_keep_size": "128MB",
				}}},
			Initdb:   []any{map[string]string{"encoding": "UTF8"}, map[string]string{"locale": "C.UTF-8"}, "data-checksums"},
			PgHBA:    pgHBA(o, f),
			PostInit: pghookCmd(o, "post-init"),
		},
		Postgresql: patroni.Postgres{
			Listen:         "0.0.0.0:" + strconv.Itoa(o.Port),
			ConnectAddress: hp(o.Port),
			DataDir:        l.DataDir,
			BinDir:         f.BinDir,
			ConfigDir:      l.ConfigDir,
			Pgpass:         l.Pgpass,
			UseUnixSocket:  true,
			Authentication: map[string]*patroni.BasicAuth{
				"superuser":   {Username: SuperuserName, Password: s.Superuser},
				"replication": {Username: ReplicationName, Password: s.Replication},
				"rewind":      {Username: RewindName, Password: s.Rewind},
			},
			Parameters:           map[string]any{"unix_socket_directories": o.SocketDir},
			Callbacks:            map[string]string{},
			CreateReplicaMethods: []string{"pghook", "basebackup"},
			Pghook:               map[string]any{"command": pghookCmd(o, "create-replica"), "keep_data": o.KeepData == nil || *o.KeepData},
			Basebackup:           map[string]any{"checkpoint": "fast"},
		},
	}
	if o.BackupDir != "" {
		y.Postgresql.Pghook["backup_dir"] = o.BackupDir
	}
	if o.Adopt {
		// bootstrap.pg_hba applies to a cluster Patroni creates only; an
		// adopted one gets its pg_hba.conf (in config_dir) from here.
		y.Postgresql.PgHBA = pgHBA(o, f)
	}
	if o.ConfigDir != "" {
		// A configuration directory named by --config-dir or
		// --debian-cluster holds a postgresql.conf of its own (Patroni keeps
		// it as postgresql.base.conf), and a backup's copy restored on a
		// replica names the first node's data directory: this node's wins.
		y.Postgresql.Parameters["data_directory"] = l.DataDir
	}
	if o.Watchdog != "" {
		y.Watchdog = &patroni.Watchdog{Mode: o.Watchdog}
	}
	for _, kv := range o.PGParameters {
		name, value, _ := strings.Cut(kv, "=")
		if dcsOnlyParams[name] {
			y.Bootstrap.DCS.Postgresql.Parameters[name] = paramValue(value)
		} else {
			y.Postgresql.Parameters[name] = paramValue(value)
		}
	}
	cb := o.Callback
	if cb == "" {
		// After the command: Patroni appends ACTION ROLE SCOPE.
		cb = o.PghookBin + " callback"
		if o.PghookConfig != PghookYAML {
			cb += " --config " + o.PghookConfig
		}
	}
	for _, name := range []string{"on_start", "on_stop", "on_restart", "on_reload", "on_role_change"} {
		y.Postgresql.Callbacks[name] = cb
	}
	e := &patroni.Etcd{Username: o.EtcdUser, CACert: o.EtcdCACert, Cert: o.EtcdCert, Key: o.EtcdKey}
	if o.EtcdUser != "" {
		e.Password = s.Etcd
	}
	scheme := ""
	var hosts []string
	for _, ep := range o.EtcdEndpoints {
		sc, hostport, _ := splitEndpoint(ep)
		if sc != "" {
			scheme = sc
		}
		hosts = append(hosts, hostport)
	}
	e.Hosts = patroni.HostList(hosts)
	if scheme == "" && (o.EtcdCACert != "" || o.EtcdCert != "") {
		scheme = "https"
	}
	e.Protocol = scheme
	if o.DCS == "etcd" {
		y.Etcd = e
	} else {
		y.Etcd3 = e
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Patroni configuration of scope %s on %s, written by `pghook install`.\n", o.Scope, f.Hostname)
	buf.WriteString("# Re-run `pghook install` to change it. pghook will not overwrite changes made\n")
	buf.WriteString("# here by hand without --force (which keeps a backup). Passwords: " + o.SecretsDir + "/" + o.Scope + "/.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(y); err != nil {
		return nil, err
	}
	enc.Close()
	return buf.Bytes(), nil
}

// intNode is n as a YAML integer.
func intNode(n int) yaml.Node {
	var y yaml.Node
	y.Encode(n) // an int always encodes
	return y
}

// pghookCmd is the command line Patroni runs for a pghook command (it
// appends its own arguments), naming pghook.yaml when it is not the
// default one.
func pghookCmd(o *Options, command string) string {
	if o.PghookConfig != PghookYAML {
		return o.PghookBin + " --config " + o.PghookConfig + " " + command
	}
	return o.PghookBin + " " + command
}

// paramValue renders an integer as a YAML integer, anything else as a
// string (Patroni accepts both).
func paramValue(v string) any {
	if n, err := strconv.Atoi(v); err == nil && strconv.Itoa(n) == v {
		return n
	}
	return v
}

// pgHBA allows the members' network (and members outside it) to connect
// with a password, replication from loopback too.
func pgHBA(o *Options, f *Facts) []string {
	const m = "scram-sha-256"
	rules := []string{
		"local all all peer",
		"host all all 127.0.0.1/32 " + m,
		"host replication " + ReplicationName + " 127.0.0.1/32 " + m,
	}
	nets := []string{f.Network.String()}
	var extra []string
	for _, mem := range o.Members {
		a := netip.MustParseAddr(mem)
		if !f.Network.Contains(a) {
			extra = append(extra, netip.PrefixFrom(a, a.BitLen()).String())
		}
	}
	sort.Strings(extra)
	for _, n := range append(nets, extra...) {
		rules = append(rules, "host replication "+ReplicationName+" "+n+" "+m, "host all all "+n+" "+m)
	}
	return rules
}

// unitName is the Patroni unit of a scope: an instance of Debian's
// patroni@.service naming, so that Debian's template can never run a
// second Patroni on the same file (a unit file for the instance replaces
// the template's).
func unitName(scope string) string { return "patroni@" + scope + ".service" }

func vipWatchName(scope string) string { return "pghook-vip-watch@" + scope + ".service" }

// renderUnit renders the Patroni unit of a scope.
func renderUnit(o *Options, f *Facts) []byte {
	patroni := f.Patroni
	if patroni == "" {
		patroni = "/usr/bin/patroni"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by pghook install: Patroni for scope %[1]s.
[Unit]
Description=Patroni for PostgreSQL cluster %[1]s (pghook)
Documentation=man:pghook(1)
After=network-online.target
Wants=network-online.target
ConditionPathExists=%[2]s

[Service]
Type=simple
User=postgres
Group=postgres
ExecStart=%[3]s %[2]s
ExecReload=/bin/kill -HUP $MAINPID
# The callbacks cannot release the VIP once Patroni is gone: do it here
# (the helper reads its settings from /etc/pghook/pghook.yaml only).
ExecStopPost=-%[4]s down --scope %[1]s
# Only Patroni is killed on stop; it stops PostgreSQL itself.
KillMode=process
TimeoutSec=30
Restart=on-failure
RestartSec=5s

[Install]
WantedBy=multi-user.target
`, o.Scope, o.PatroniConfig, patroni, vipDownCommand(o))
	return []byte(b.String())
}

func sysctlName(iface string) string { return "60-pghook-" + iface + ".conf" }

func sysctlKey(iface string) string {
	return "net.ipv4.conf." + strings.ReplaceAll(iface, ".", "/") + ".arp_announce"
}

func sysctlIgnoreKey(iface string) string {
	return "net.ipv4.conf." + strings.ReplaceAll(iface, ".", "/") + ".arp_ignore"
}

// renderSysctl makes ARP requests use the interface's own address as
// source, so that neighbours never learn the VIP from a stale holder, and
// ARP answer only for addresses on the interface, so that the refusal a
// former holder keeps after a switchover (a local route) is never announced.
func renderSysctl(iface string) []byte {
	return []byte("# Written by pghook install: ARP uses the best local address and answers only for\n" +
		"# addresses on the interface (VIP hosts).\n" +
		"net.ipv4.conf.all.arp_announce = 2\n" + sysctlKey(iface) + " = 2\n" +
		"net.ipv4.conf.all.arp_ignore = 1\n" + sysctlIgnoreKey(iface) + " = 1\n")
}
