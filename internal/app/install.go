package app

import (
	"fmt"
	"os"
	"strings"

	"github.com/pghook/pghook/internal/install"
	"github.com/urfave/cli/v2"
)

// installFlag describes one `pghook install` setting: flag name, env var
// PGHOOK_<NAME>, the --from key of the same name.
func installFlags() []cli.Flag {
	env := func(name string) []string {
		return []string{"PGHOOK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
	}
	str := func(name, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Usage: usage, EnvVars: env(name), Category: "cluster"}
	}
	list := func(name, usage string) cli.Flag {
		return &cli.StringSliceFlag{Name: name, Usage: usage, EnvVars: env(name), Category: "cluster"}
	}
	path := func(name, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Usage: usage, EnvVars: env(name), Category: "paths"}
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "from", Usage: "read the settings from a YAML `FILE` whose keys are the flag names (flags win)", EnvVars: env("from")},
		str("scope", "Patroni `SCOPE` (cluster name); required"),
		str("name", "this member's `NAME` (default: the host name)"),
		str("interface", "`IFACE` whose IPv4 address is this node's (default: the default route's)"),
		str("address", "this node's `IP` for connect_address (default: the interface's)"),
		str("network", "`CIDR` allowed in pg_hba (default: the interface's network)"),
		list("members", "the other members' `IP`s (pg_hba entries when outside --network)"),
		list("etcd-endpoints", "etcd `HOST:PORT` or URL, comma-separated; required"),
		str("dcs", "Patroni DCS section: etcd3 (v3 API, default) or etcd (v2 API)"),
		str("namespace", "Patroni namespace (default /service/)"),
		str("etcd-user", "etcd user `NAME` for Patroni; with --dcs etcd3 install creates it and a role allowed only <namespace><scope>/ (password generated once, or from --etcd-password-file)"),
		str("etcd-password-file", "`FILE` holding the etcd user's password (default: generated and kept in the scope's secrets)"),
		str("etcd-root-user", "etcd user `NAME` that may create users and roles (default root)"),
		str("etcd-root-password-file", "`FILE` holding that user's password (or the environment variable PGHOOK_ETCD_ROOT_PASSWORD; never a flag value)"),
		str("etcd-cacert", "CA certificate `FILE` for etcd TLS"),
		str("etcd-cert", "client certificate `FILE` for etcd TLS"),
		str("etcd-key", "client key `FILE` for etcd TLS"),
		list("vip", "virtual IP as `CIDR`, e.g. 10.0.0.100/24 (enables the VIP and its reconciler unit); repeated or comma-separated: one VIP per subnet, the primary takes its own subnet's"),
		str("vip-backend", "netlink (default with --vip), dns (default with --dns-name), exec (default with --exec-hold) or none"),
		str("vip-interface", "`IFACE` to hold the VIP on (default: --interface)"),
		str("vip-label", "address `LABEL`, e.g. eth0:vip"),
		str("dns-name", "DNS `NAME` the primary points at its own address (backend dns; enables the reconciler unit), or with --vip at the VIP it holds"),
		str("dns-zone", "`ZONE` that holds --dns-name (default: the name without its first label)"),
		str("dns-server", "the zone's primary authoritative server, `HOST[:PORT]`"),
		str("dns-replica-name", "DNS `NAME` every read-serving replica adds its own address to (optional; below --dns-zone)"),
		str("exec-hold", "`COMMAND` that makes this node hold the VIP (backend exec; enables the reconciler unit): an absolute path and its arguments, split at spaces, no shell"),
		str("exec-release", "`COMMAND` that makes this node let the VIP go (backend exec)"),
		str("exec-check", "`COMMAND` that exits 0 when this node holds the VIP, 1 when not (backend exec)"),
		&cli.DurationFlag{Name: "exec-timeout", Usage: "each exec command's `DURATION` before it is killed (default 10s)", EnvVars: env("exec-timeout"), Category: "cluster"},
		str("exec-address", "the `IP` the exec commands are told about (PGHOOK_VIP_ADDRESS; optional)"),
		str("tsig-key-file", "TSIG key `FILE` (tsig-keygen output; root:postgres 0640; never a key on the command line)"),
		str("backup-dir", "shared-storage `DIR` for create-replica backups"),
		str("backup-schedule", "lay a backup timer: daily, hourly, weekly or a systemd OnCalendar `WHEN`; every node runs it, the streaming replica with the least lag (else the leader) takes the backup"),
		&cli.IntFlag{Name: "backup-keep", Usage: "scheduled backups: keep the `N` newest (0: all)", EnvVars: env("backup-keep"), Category: "cluster"},
		str("backup-older-than", "scheduled backups: also remove those older than `DURATION` (e.g. 168h)"),
		&cli.IntFlag{Name: "ttl", Usage: "Patroni's leader lock `SECONDS` (bootstrap.dcs.ttl, default 30)", EnvVars: env("ttl"), Category: "cluster"},
		&cli.IntFlag{Name: "loop-wait", Usage: "Patroni's loop `SECONDS` (default 10); loop_wait + 2 × retry_timeout must not exceed ttl", EnvVars: env("loop-wait"), Category: "cluster"},
		&cli.IntFlag{Name: "retry-timeout", Usage: "Patroni's DCS and PostgreSQL retry `SECONDS` (default 10)", EnvVars: env("retry-timeout"), Category: "cluster"},
		str("watchdog", "Patroni's watchdog `MODE`: off, automatic or required (default: Patroni's, automatic)"),
		list("pg-parameter", "PostgreSQL setting `NAME=VALUE` (repeatable); those Patroni keeps in the DCS (max_connections, …) go to bootstrap.dcs"),
		&cli.BoolFlag{Name: "keep-data", Value: true, Usage: "pghook's create_replica keep_data: adopt a standby's own copy instead of restoring (--keep-data=false: always restore)", EnvVars: env("keep-data"), Category: "cluster"},
		str("callback", "`COMMAND` for Patroni's callbacks instead of pghook callback (it gets ACTION ROLE SCOPE)"),
		&cli.IntFlag{Name: "port", Usage: "PostgreSQL port (default 5432)", EnvVars: env("port"), Category: "cluster"},
		&cli.IntFlag{Name: "rest-port", Usage: "Patroni REST API port (default 8008)", EnvVars: env("rest-port"), Category: "cluster"},
		str("pg-version", "PostgreSQL major `VERSION` (default: the highest in /usr/lib/postgresql)"),
		str("data-dir", "data `DIR` (default /var/lib/postgresql/<version>/<scope>)"),
		str("debian-cluster", "adopt the existing Debian cluster `VERSION/NAME` (pg_lsclusters): its data directory, port and config_dir from /etc/postgresql/VERSION/NAME/"),
		&cli.BoolFlag{Name: "adopt", Usage: "put the existing cluster in --data-dir (and --config-dir) under Patroni: checks its version, its system identifier against the DCS and Patroni's roles", EnvVars: env("adopt"), Category: "cluster"},
		&cli.BoolFlag{Name: "create-roles", Usage: "with --adopt: create or fix the superuser, replication and rewind roles (pg_rewind's grants, the scope's passwords) over the local socket as postgres", EnvVars: env("create-roles"), Category: "cluster"},
		str("config-dir", "PostgreSQL's configuration `DIR` outside the data directory (postgresql.config_dir; default by --layout)"),
		str("layout", "debian (config_dir in /etc/postgresql/<version>/<scope>, default) or seed (config in the data dir)"),
		&cli.StringFlag{Name: "patroni-config", Usage: "patroni.yml to write (default /etc/patroni/<scope>.yml)", EnvVars: env("patroni-config"), Category: "cluster"},
		path("pghook-config", "pghook.yaml to write (default /etc/pghook/pghook.yaml; named in the commands Patroni runs when not the default)"),
		path("secrets-dir", "`DIR` of the passwords, one subdirectory per scope (default /etc/pghook/secrets)"),
		path("state-file", "`FILE` recording what install wrote (default /var/lib/pghook/install-state.json)"),
		path("systemd-dir", "`DIR` for the units (default /etc/systemd/system; another one: no daemon-reload)"),
		path("sysctl-dir", "`DIR` for the arp_announce drop-in (default /etc/sysctl.d)"),
		path("pgpass", "`FILE` Patroni writes its pgpass to (default by --layout)"),
		path("socket-dir", "unix_socket_directories `DIR` (default /var/run/postgresql)"),
		path("pghook-bin", "pghook `FILE` Patroni runs (default /usr/bin/pghook)"),
		path("vip-helper", "VIP helper `FILE` (default /usr/lib/pghook/pghook-vip)"),
		&cli.StringFlag{Name: "root", Usage: "write under `DIR` instead of / (packaging, tests); no sysctl or systemctl, and validator checks of this host's state are warnings", EnvVars: env("root")},
		&cli.BoolFlag{Name: "dry-run", Usage: "print a unified diff (passwords masked) and change nothing", EnvVars: env("dry-run")},
		&cli.BoolFlag{Name: "force", Usage: "overwrite files changed by hand since pghook wrote them (a backup is kept)", EnvVars: env("force")},
	}
}

// rejoinParams undoes the comma split of a slice flag inside a value:
// "shared_preload_libraries=a,b" arrives as ["…=a", "b"].
func rejoinParams(in []string) []string {
	var out []string
	for _, s := range in {
		if len(out) > 0 && !strings.Contains(s, "=") {
			out[len(out)-1] += "," + s
			continue
		}
		out = append(out, s)
	}
	return out
}

func (a *app) installCommand() *cli.Command {
	return &cli.Command{
		Name:        "install",
		Usage:       "lay down patroni.yml, pghook.yaml and the systemd units for a scope on this node",
		Description: install.Help,
		Flags:       installFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErr("install: unexpected argument %q (settings are flags)", c.Args().First())
			}
			var o install.Options
			if f := c.String("from"); f != "" {
				fh, err := os.Open(f)
				if err != nil {
					return usageErr("install: --from: %v", err)
				}
				o, err = install.ReadFrom(fh)
				fh.Close()
				if err != nil {
					return usageErr("install: --from %s: %v", f, err)
				}
			}
			str := map[string]*string{
				"scope": &o.Scope, "name": &o.Name, "interface": &o.Interface, "address": &o.Address,
				"network": &o.Network, "dcs": &o.DCS, "namespace": &o.Namespace, "etcd-user": &o.EtcdUser,
				"etcd-password-file": &o.EtcdPasswordFile, "etcd-cacert": &o.EtcdCACert, "etcd-cert": &o.EtcdCert,
				"etcd-key": &o.EtcdKey, "vip-backend": &o.VIPBackend, "vip-interface": &o.VIPInterface,
				"vip-label": &o.VIPLabel, "backup-dir": &o.BackupDir, "backup-schedule": &o.BackupSchedule, "backup-older-than": &o.BackupOlderThan, "pg-version": &o.PGVersion,
				"data-dir": &o.DataDir, "layout": &o.Layout, "patroni-config": &o.PatroniConfig,
				"watchdog": &o.Watchdog, "callback": &o.Callback, "pghook-config": &o.PghookConfig,
				"secrets-dir": &o.SecretsDir, "state-file": &o.StateFile, "systemd-dir": &o.SystemdDir,
				"sysctl-dir": &o.SysctlDir, "pgpass": &o.Pgpass, "socket-dir": &o.SocketDir,
				"pghook-bin": &o.PghookBin, "vip-helper": &o.VIPHelper, "etcd-root-user": &o.EtcdRootUser,
				"etcd-root-password-file": &o.EtcdRootPasswordFile, "debian-cluster": &o.DebianCluster,
				"config-dir": &o.ConfigDir, "dns-name": &o.DNSName, "dns-zone": &o.DNSZone, "dns-server": &o.DNSServer,
				"tsig-key-file": &o.TSIGKeyFile, "dns-replica-name": &o.DNSReplicaName, "exec-address": &o.ExecAddress,
			}
			setFlags(c, c.String, str)
			for name, dst := range map[string]*[]string{"exec-hold": &o.ExecHold, "exec-release": &o.ExecRelease, "exec-check": &o.ExecCheck} {
				if c.IsSet(name) {
					*dst = install.SplitCommand(c.String(name))
				}
			}
			if c.IsSet("exec-timeout") {
				o.ExecTimeout = c.Duration("exec-timeout")
			}
			setFlags(c, c.StringSlice, map[string]*[]string{"members": &o.Members, "etcd-endpoints": &o.EtcdEndpoints, "vip": (*[]string)(&o.VIP)})
			if c.IsSet("pg-parameter") {
				o.PGParameters = rejoinParams(c.StringSlice("pg-parameter"))
			}
			setFlags(c, c.Int, map[string]*int{"port": &o.Port, "rest-port": &o.RestPort, "ttl": &o.TTL, "backup-keep": &o.BackupKeep,
				"loop-wait": &o.LoopWait, "retry-timeout": &o.RetryTimeout})
			setFlags(c, c.Bool, map[string]*bool{"adopt": &o.Adopt, "create-roles": &o.CreateRoles})
			if c.IsSet("keep-data") {
				v := c.Bool("keep-data")
				o.KeepData = &v
			}
			// The root password only from a file or the environment.
			o.EtcdRootPassword = os.Getenv("PGHOOK_ETCD_ROOT_PASSWORD")
			o.Root, o.DryRun, o.Force = c.String("root"), c.Bool("dry-run"), c.Bool("force")
			_, err := install.Run(o, c.App.Writer)
			switch {
			case err == nil:
				return nil
			case install.IsUsage(err):
				return usageErr("install: %v", err)
			default:
				return cli.Exit(fmt.Sprintf("install: %v", err), exitFailure)
			}
		},
	}
}

// setFlags copies the flags the user set into their option fields; unset
// flags leave the field (and install's own default) alone.
func setFlags[T any](c *cli.Context, get func(string) T, fields map[string]*T) {
	for name, dst := range fields {
		if c.IsSet(name) {
			*dst = get(name)
		}
	}
}
