package install

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The scheduled backup: a timer and a oneshot service per scope, on every
// node. Each run asks Patroni for the cluster; only the chosen node (the
// streaming replica with the least lag, else the leader) takes the
// backup (pghook backup --scheduled), under the scope's lock in the
// backup directory.

func backupTimerName(scope string) string   { return "pghook-backup@" + scope + ".timer" }
func backupServiceName(scope string) string { return "pghook-backup@" + scope + ".service" }

// backupPgpass is the scheduled backup's password file: the replication
// user's password alone, in the scope's secrets directory (postgres,
// 0600). Patroni's own pgpass cannot serve: Patroni rewrites it for the
// connection it makes next, which on a leader is not the replication
// user's, and pg_basebackup then finds no password.
func backupPgpass(o *Options) string { return filepath.Join(o.SecretsDir, o.Scope, "backup.pgpass") }

// renderBackupPgpass renders backupPgpass's one line: any host, port and
// database, the replication user (libpq's pgpass format: ':' and '\'
// escaped).
func renderBackupPgpass(password string) []byte {
	esc := strings.NewReplacer(`\`, `\\`, ":", `\:`)
	return []byte("*:*:*:" + esc.Replace(ReplicationName) + ":" + esc.Replace(password) + "\n")
}

// checkBackupSchedule validates --backup-schedule and the retention flags.
func (o *Options) checkBackupSchedule() error {
	if o.BackupSchedule == "" {
		if o.BackupKeep != 0 || o.BackupOlderThan != "" {
			return usage("backup-keep", "retention needs --backup-schedule")
		}
		return nil
	}
	if strings.ContainsAny(o.BackupSchedule, "\n\r\"'\\") {
		return usage("backup-schedule", "%q: want daily, hourly, weekly or a systemd OnCalendar expression", o.BackupSchedule)
	}
	if o.BackupKeep < 0 {
		return usage("backup-keep", "%d: want 0 (keep all) or more", o.BackupKeep)
	}
	if o.BackupOlderThan != "" {
		if d, err := time.ParseDuration(o.BackupOlderThan); err != nil || d <= 0 {
			return usage("backup-older-than", "%q: want a duration such as 168h", o.BackupOlderThan)
		}
	}
	return nil
}

// backupSkipWithin is how recent a backup makes a scheduled run do
// nothing: half the period, so a node that fires late (Persistent=, a
// reboot) does not take a second backup of the same round.
func backupSkipWithin(schedule string) time.Duration {
	switch schedule {
	case "hourly":
		return 30 * time.Minute
	case "daily":
		return 12 * time.Hour
	case "weekly":
		return 3 * 24 * time.Hour
	}
	return 10 * time.Minute
}

// renderBackupService renders the oneshot service the timer starts.
func renderBackupService(o *Options) []byte {
	args := []string{"backup", "--scope", o.Scope, "--scheduled", "--skip-within", backupSkipWithin(o.BackupSchedule).String(),
		"--patroni-config", o.PatroniConfig}
	if o.BackupDir != "" {
		args = append(args, "--backup-dir", o.BackupDir)
	}
	if o.BackupKeep > 0 {
		args = append(args, "--keep", strconv.Itoa(o.BackupKeep))
	}
	if o.BackupOlderThan != "" {
		args = append(args, "--older-than", o.BackupOlderThan)
	}
	return []byte(fmt.Sprintf(`# Written by pghook install: scheduled backup of scope %[1]s.
# Runs on every node; only the node chosen from Patroni's /cluster (the
# streaming replica with the least lag, else the leader) takes it.
[Unit]
Description=pghook scheduled backup of PostgreSQL cluster %[1]s
Documentation=man:pghook(1)
After=network-online.target %[2]s
Wants=network-online.target

[Service]
Type=oneshot
User=postgres
Group=postgres
# The replication user's password (written by pghook install, postgres 0600).
Environment=PGPASSFILE=%[3]s
ExecStart=%[4]s
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
`, o.Scope, unitName(o.Scope), backupPgpass(o), pghookCmd(o, strings.Join(args, " "))))
}

// renderBackupTimer renders the timer: every node fires at the same time,
// so they all ask the same question of the same cluster.
func renderBackupTimer(o *Options) []byte {
	return []byte(fmt.Sprintf(`# Written by pghook install: when scope %[1]s is backed up.
[Unit]
Description=pghook scheduled backup of PostgreSQL cluster %[1]s (%[2]s)
Documentation=man:pghook(1)

[Timer]
OnCalendar=%[2]s
Persistent=true

[Install]
WantedBy=timers.target
`, o.Scope, o.BackupSchedule))
}
