package clusterstatus

// The command line (internal/app) shows these texts as the help of the
// commands this package runs; they describe what the package does.

// Help is `pghook status`'s description, with its exit codes.
const Help = "For each scope (--scope, repeatable; default every scope of pghook.yaml) it\n" +
	"asks the local Patroni's REST API /cluster (another member's, found in the DCS,\n" +
	"when the local one does not answer), reads the DCS leader key, and finds who\n" +
	"answers for the VIP: netlink — this host if the address is on its interface,\n" +
	"plus every host answering an ARP probe / neighbour solicitation for it within\n" +
	"200ms, named through the neighbour table of the members' addresses (the probe\n" +
	"needs CAP_NET_RAW: without it the VIP helper runs it); pcs — crm_resource\n" +
	"--locate. It only reads; it never prints a password.\n\n" +
	"Exit codes (with several scopes, the highest):\n" +
	"  0  a leader, and the VIP (if any) answers on the leader's host only\n" +
	"  1  no member's REST API answered, or where the VIP is could not be found out\n" +
	"  2  usage error\n" +
	"  3  the VIP answers on nobody, or on another host than the leader's\n" +
	"  4  no leader\n" +
	"  5  more than one host answers for the VIP"
