package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBackupTimer(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string   // the flag named
		inUnit  []string // in the service
		inTimer string
		noTimer bool
	}{
		{name: "no schedule, no timer", mod: func(o *Options) {}, noTimer: true},
		{name: "daily with retention", mod: func(o *Options) {
			o.BackupSchedule, o.BackupKeep, o.BackupOlderThan, o.BackupDir = "daily", 7, "168h", "/mnt/shared/backup"
		}, inUnit: []string{"backup --scope main --scheduled --skip-within 12h0m0s", "--backup-dir /mnt/shared/backup", "--keep 7", "--older-than 168h", "User=postgres", "PGPASSFILE=/etc/pghook/secrets/main/backup.pgpass"},
			inTimer: "OnCalendar=daily"},
		{name: "OnCalendar expression", mod: func(o *Options) { o.BackupSchedule = "*-*-* 03:30:00" }, inUnit: []string{"--skip-within 10m0s"}, inTimer: "OnCalendar=*-*-* 03:30:00"},
		{name: "retention without a schedule", mod: func(o *Options) { o.BackupKeep = 3 }, wantErr: "backup-keep"},
		{name: "bad duration", mod: func(o *Options) { o.BackupSchedule, o.BackupOlderThan = "daily", "a week" }, wantErr: "backup-older-than"},
		{name: "newline in the schedule", mod: func(o *Options) { o.BackupSchedule = "daily\nExecStart=/bin/sh" }, wantErr: "backup-schedule"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOpts(t)
			tc.mod(&o)
			if tc.wantErr != "" {
				_, err := Run(o, new(strings.Builder))
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming --%s", err, tc.wantErr)
				}
				return
			}
			run(t, o)
			sd := filepath.Join(o.Root, SystemdEtc)
			unit, uerr := os.ReadFile(filepath.Join(sd, backupServiceName("main")))
			timer, terr := os.ReadFile(filepath.Join(sd, backupTimerName("main")))
			link, lerr := os.Readlink(filepath.Join(sd, "timers.target.wants", backupTimerName("main")))
			if tc.noTimer {
				if uerr == nil || terr == nil || lerr == nil {
					t.Fatal("a backup timer without --backup-schedule")
				}
				return
			}
			if uerr != nil || terr != nil || lerr != nil || !strings.HasSuffix(link, backupTimerName("main")) {
				t.Fatalf("unit %v, timer %v, link %q %v", uerr, terr, link, lerr)
			}
			for _, w := range tc.inUnit {
				if !strings.Contains(string(unit), w) {
					t.Errorf("service lacks %q:\n%s", w, unit)
				}
			}
			if !strings.Contains(string(timer), tc.inTimer+"\n") {
				t.Errorf("timer lacks %q:\n%s", tc.inTimer, timer)
			}
			// pg_basebackup's password: the replication user's, in a
			// file of the unit's user alone.
			pp := filepath.Join(o.Root, SecretsDir, "main", "backup.pgpass")
			st, err := os.Stat(pp)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("backup pgpass %s: %v, mode %v; want 0600", pp, err, st)
			}
			want := "*:*:*:" + ReplicationName + ":" + secret(t, o.Root, "main", "replication") + "\n"
			if got := string(read(t, pp)); got != want {
				t.Errorf("backup pgpass holds %q, want the replication user's line", got)
			}
		})
	}
}

func TestRenderBackupPgpass(t *testing.T) {
	tests := []struct{ password, want string }{
		{"plain", "*:*:*:" + ReplicationName + ":plain\n"},
		{`a:b\c`, "*:*:*:" + ReplicationName + `:a\:b\\c` + "\n"},
	}
	for _, tc := range tests {
		if got := string(renderBackupPgpass(tc.password)); got != tc.want {
			t.Errorf("renderBackupPgpass(%q) = %q, want %q", tc.password, got, tc.want)
		}
	}
}
