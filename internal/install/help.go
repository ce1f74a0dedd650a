package install

// The command line (internal/app) shows these texts as the help of the
// commands this package runs; they describe what the package does.

// Help is `pghook install`'s description.
const Help = "Gathers this node's facts (host name, the interface's IPv4 address and network,\n" +
	"PostgreSQL version and bin dir, the installed patroni) and writes, for --scope S:\n" +
	"/etc/patroni/S.yml (postgres, 0600), the scope's section of /etc/pghook/pghook.yaml\n" +
	"(root:postgres, 0640; other scopes are kept), /etc/systemd/system/patroni@S.service\n" +
	"(enabled), with --vip the enabled pghook-vip-watch@S.service and an arp_announce\n" +
	"sysctl drop-in, and the directories (--vip repeated: one VIP per subnet; with\n" +
	"--dns-name too the name follows the VIP held, and the watcher runs as pghook).\n" +
	"Passwords are generated once and kept in\n" +
	"/etc/pghook/secrets/S/ (postgres, 0600). A second run changes nothing; a file\n" +
	"changed by hand since pghook wrote it is refused unless --force (a backup is\n" +
	"kept). When patroni is installed, the rendered patroni.yml must pass\n" +
	"`patroni --validate-config` before anything is written (an unreachable etcd, or\n" +
	"ports held by this scope's running Patroni, are warnings).\n" +
	"The passwords are the cluster's: copy /etc/pghook/secrets/S/ from the first node\n" +
	"to the others before installing there. With --etcd-user (and --dcs etcd3) install\n" +
	"creates that etcd user and a role allowed only Patroni's keys of the scope, using\n" +
	"--etcd-root-password-file or PGHOOK_ETCD_ROOT_PASSWORD; an unreachable etcd is a\n" +
	"warning, a user with another password an error.\n" +
	"--debian-cluster 15/NAME (or --adopt with --data-dir and --config-dir) adopts an\n" +
	"existing cluster: same major version, its system identifier not another\n" +
	"cluster's in the DCS, the server running (install reads its roles over the local\n" +
	"socket as postgres) unless Patroni already knows it, and the superuser,\n" +
	"replication and rewind roles with the scope's passwords (--create-roles creates\n" +
	"or fixes them). Then stop the server and start Patroni.\n" +
	"Every flag is also a PGHOOK_<FLAG> variable and a key of the --from file."
