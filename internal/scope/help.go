package scope

import "github.com/pghook/pghook/internal/config"

// The command line (internal/app) shows these texts as the help of the
// commands this package runs; they describe what the package does.

// VIPHelp is `pghook vip`'s description: the privilege split.
const VIPHelp = "Adding an address needs CAP_NET_ADMIN and announcing it CAP_NET_RAW. An\n" +
	"unprivileged pghook (a callback run by Patroni as postgres) runs the VIP\n" +
	"helper for these operations: a copy of pghook with those two file\n" +
	"capabilities that only group postgres may execute (vip_helper in\n" +
	"pghook.yaml, default " + config.DefaultVIPHelper + "). The helper takes only\n" +
	"--scope; every setting comes from " + config.DefaultPath + ", which it reads only\n" +
	"when root owns it and every directory above it, writable by root alone."

// WatchHelp is `pghook vip watch`'s description.
const WatchHelp = "Every watch_interval (300ms), and at once whenever an etcd watch sees the\n" +
	"leader key change, it asks the local Patroni's REST API /primary and the\n" +
	"DCS leader key: a key naming another member releases; otherwise Patroni\n" +
	"decides; when Patroni does not answer the key decides; when neither\n" +
	"answers it keeps the current state for watch_grace (3s), then releases.\n" +
	"A healthy primary keeps the VIP while etcd is unreachable. Stopping the\n" +
	"watcher leaves the VIP as it is. Run it as a service (install writes one).\n\n" +
	"It also serves the callbacks: a callback without the capabilities asks it,\n" +
	"over the socket <run_dir>/vip-<scope>.sock (run_dir: /run/pghook), to hold\n" +
	"or release the VIP now (the same guarded hold as the helper, without\n" +
	"starting a process); only its own user and root may ask, and a callback\n" +
	"trusts only a watcher of its own user or root. Without a watcher the\n" +
	"callback runs the helper."
