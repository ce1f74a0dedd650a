// Package replica takes pg_basebackup backups into shared storage and
// restores them as Patroni create_replica method.
//
// A backup lives in <backup_dir>/<scope>/<id>/: pg_basebackup's tar files
// (base.tar[.gz|.lz4|.zst], pg_wal.tar[.gz], one <oid>.tar[…] per
// tablespace), its backup_manifest, pghook's metadata, pghook.json, and,
// when PostgreSQL's configuration lives outside the data directory, a copy
// of that config_dir. It is written as <id>.partial and renamed
// once complete and fsynced, so a reader never sees half a backup.
//
// Restore tries the published backups newest first and, before touching
// the data directory, checks the manifest's own checksum, that the backup belongs to
// this cluster (system identifier from the first WAL segment, compared with
// the DCS initialize key and with the leader's IDENTIFY_SYSTEM) and that the
// leader still has the WAL right after the backup (a START_REPLICATION
// probe). It then extracts the tars in parallel through one os.Root per
// target (the data directory, each tablespace's directory, which
// tablespace_mapping may move), with the manifest as an allow-list,
// verifies sizes, CRC32C and pg_control, syncs, and lays the config_dir
// copy. A backup refused for verification (4) or for its WAL (6) gives way
// to the next older one of the cluster. Any failure removes everything it
// created and returns an *Error whose Code is the process exit code (see
// ExitCode).
//
// Restore's phases, each a function: resolve (RestoreOptions' precedence,
// once), identify (the backups, the cluster's system identifier), inspect
// (the data directory: restore into, adopt, replace or refuse), then per
// backup preflight, probeWAL, extract and finish.
//
// The package never starts PostgreSQL and never writes standby.signal or
// primary_conninfo: Patroni does that after a successful method.
package replica
