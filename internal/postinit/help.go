package postinit

// The command line (internal/app) shows these texts as the help of the
// commands this package runs; they describe what the package does.

// Help is `pghook post-init`'s description.
const Help = "Patroni runs it once, on the node that initialised the cluster, with a libpq\n" +
	"key/value DSN (no password: PGPASSFILE holds it). Idempotent: the rewind user\n" +
	"(authentication.rewind of patroni.yml, or post_init.rewind_user) gets EXECUTE on\n" +
	"the four functions pg_rewind calls; post_init.roles and post_init.databases of\n" +
	"pghook.yaml are created or altered; the *.sql files of post_init.sql_dir run in\n" +
	"name order, each once (recorded in pghook.applied_sql), each in a transaction.\n" +
	"Exit 1 names the failed step; Patroni then aborts the bootstrap."
