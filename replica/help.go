package replica

// MethodHelp is `pghook create-replica`'s description (the exit codes
// follow it: ExitCodeHelp): how Patroni runs it and what a restore checks,
// writes and leaves behind.
const MethodHelp = `Patroni runs it as a create_replica method:

  postgresql:
    create_replica_methods: [pghook, basebackup]
    pghook:
      command: pghook create-replica
      backup_dir: /var/lib/pghook/backups   # optional (lookup order below)
      keep_data: true                       # optional: adopt a copy of this cluster already there, else replace what is there
      tablespace_mapping: /srv/ts1=/srv/ts1-replica   # optional: OLD=NEW[,OLD=NEW…]

Patroni appends --key=value for every key of the section, then --scope,
--role, --datadir and --connstring; unknown keys are ignored. pghook picks
the newest published backup of the scope (pghook backup) and, before
touching the data directory, checks the manifest's checksum, that the
backup is of this cluster (DCS initialize key, leader's IDENTIFY_SYSTEM)
and that the leader still has the WAL after it. It extracts through an
os.Root with the manifest as allow-list, verifies sizes, CRC32C and
pg_control, syncs, and leaves PostgreSQL stopped.

Tablespaces go to the directory they had on the backed-up server unless
tablespace_mapping (the method section, or scopes.S.create_replica.
tablespace_mapping in pghook.yaml as a map) moves them; each directory
must be empty or absent. pghook links pg_tblspc/OID to it and rewrites
tablespace_map.

With keep_data, a stopped copy of this cluster (a standby's, or a base
backup never started) is adopted without copying; another data directory
(another cluster, a former primary) is removed once the checks above have
passed, and the backup restored; a running postmaster, or a directory that
is no data directory (no PG_VERSION and global/), is refused (exit 8). A
restore killed midway (its .pghook-restoring marker left) is never adopted:
the next attempt removes what it wrote and restores again.

When patroni.yml's postgresql.config_dir (or --config_dir) is not the data
directory and the backup saved a copy of it (pghook backup does), its files
are verified (SHA-256 in pghook.json) and laid there atomically with their
modes, once everything else succeeded. The password comes from
PGPASSFILE (Patroni sets it). Global flags go before the command name;
--patroni_config=FILE is also read here. Backups are looked for in the
method section's backup_dir, else PGHOOK_BACKUP_DIR, else pghook.yaml's
scopes.S.create_replica.backup_dir, else scopes.S.backup_dir, else
/var/lib/pghook/backups. When the newest backup fails verification (4)
or the leader no longer has its WAL (6), the next older backup of the
cluster is tried; the exit code is then that of the attempt that got
furthest, and the log lists every attempt. Run as root, it first becomes
the owner of the data directory (or of its nearest existing parent), and
refuses (2) when that is root.

After a non-zero exit the data directory and the tablespace directories
are as Patroni left them (without keep_data: absent, or empty but for
dotfiles and lost+found), or empty once a keep_data restore had begun
replacing what was there; nothing pghook created remains.

Exit codes:
`
