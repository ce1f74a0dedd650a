package backupops

// The command line (internal/app) shows these texts as the help of the
// commands this package runs; they describe what the package does.

// TakeHelp is `pghook backup`'s description.
const TakeHelp = "Runs pg_basebackup -F t -X stream -c fast with a CRC32C manifest and client-side\n" +
	"compression into BACKUP_DIR/SCOPE/ID.partial, checks it, writes pghook.json,\n" +
	"fsyncs and renames it to BACKUP_DIR/SCOPE/ID, then applies retention (the newest\n" +
	"backup and any backup a restore is reading are never removed). The password comes\n" +
	"from PGPASSFILE or ~/.pgpass. Prints the backup's directory.\n\n" + DirHelp

// ListHelp is `pghook backup list`'s description.
const ListHelp = "Shows each backup's id, age, size on disk, compression, system identifier,\n" +
	"timeline and LSN range; with --connstring (a replication connection to the\n" +
	"leader, password from PGPASSFILE) also whether the leader still has the WAL\n" +
	"right after it (what create-replica needs). Without --scope, every scope.\n\n" + DirHelp

// VerifyHelp is `pghook backup verify`'s description.
const VerifyHelp = "Checks the manifest's checksum, every archive entry (name, type, size, CRC32C\n" +
	"against the manifest, none missing), the tablespace archives against\n" +
	"tablespace_map, pg_control, that the WAL covers the backup, and that every WAL\n" +
	"record from the backup's start LSN to its end LSN parses and has a matching\n" +
	"CRC32C. Without ID, the newest backup of --scope; --all every backup (of\n" +
	"--scope, or of every scope); a DIR (a path) is checked where it is. The\n" +
	"leader is not asked (see backup list --connstring). Exit codes: create-replica's\n" +
	"(4 verification failed, 7 I/O error, 3 no such backup); with several, the first\n" +
	"failure's.\n\n" + DirHelp

// ImportHelp is `pghook backup import`'s description.
const ImportHelp = "DIR is what pg_basebackup -D DIR -F t wrote (any compression, with or without\n" +
	"tablespaces; backup_manifest required; -X stream so that pg_wal.tar exists).\n" +
	"Runs every check a restore runs (see backup verify), refuses a backup of another\n" +
	"cluster than the scope's other backups (or than the leader of --connstring),\n" +
	"derives pghook.json from the files and publishes a copy in BACKUP_DIR/SCOPE/ID\n" +
	"atomically (ID from backup_label's START TIME). --move renames the files\n" +
	"instead (same file system only). Exit codes: create-replica's.\n\n" + DirHelp
