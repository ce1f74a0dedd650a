package shellenv

// The command line (internal/app) shows these texts as the help of the
// commands this package runs; they describe what the package does.

// Help is `pghook env`'s description.
const Help = "Exports PGDATA, PGHOST, PGPORT, PGUSER, PATH (with the bin dir),\n" +
	"PATRONICTL_CONFIG_FILE and, when the server answers, PG_CONFIG_FILE,\n" +
	"PG_HBA_FILE, PG_LOG_FILE, PG_VERSION_NUM and PG_IN_RECOVERY. A summary goes\n" +
	"to stderr. With no SCOPE it lists the clusters as shell comments. It never\n" +
	"prints a password: libpq finds it in ~/.pgpass or PGPASSFILE."
