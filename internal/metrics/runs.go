package metrics

import "time"

// Callback is the textfile of one callback run: when the last run of this
// action for the scope ended, how long it took, and whether the desired
// state held at its end.
func Callback(scope, action, role string, end time.Time, took time.Duration, ok bool) []Family {
	l := L("scope", scope, "action", action)
	return []Family{
		{Name: "pghook_callback_last_run_timestamp_seconds", Help: "When the last callback of this action ended (Unix time).", Type: Gauge,
			Samples: []Sample{{L("scope", scope, "action", action, "role", role), unix(end)}}},
		{Name: "pghook_callback_duration_seconds", Help: "How long the last callback of this action took.", Type: Gauge,
			Samples: []Sample{{l, took.Seconds()}}},
		{Name: "pghook_callback_success", Help: "1 when the last callback of this action left the desired state, else 0.", Type: Gauge,
			Samples: []Sample{{l, boolValue(ok)}}},
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Backup is the textfile of a successful `pghook backup` of scope: when it
// ended, how long it took, its size and compression.
func Backup(scope, compression string, end time.Time, took time.Duration, bytes int64) []Family {
	l := L("scope", scope)
	return []Family{
		{Name: "pghook_backup_last_success_timestamp_seconds", Help: "When the last successful backup of the scope from this node was published (Unix time).", Type: Gauge,
			Samples: []Sample{{l, unix(end)}}},
		{Name: "pghook_backup_duration_seconds", Help: "How long the last successful backup took.", Type: Gauge,
			Samples: []Sample{{l, took.Seconds()}}},
		{Name: "pghook_backup_bytes", Help: "Size of the last successful backup as stored.", Type: Gauge,
			Samples: []Sample{{L("scope", scope, "compression", compression), float64(bytes)}}},
	}
}

// BackupFailure is the textfile of a failed `pghook backup`.
func BackupFailure(scope string, end time.Time) []Family {
	return []Family{{Name: "pghook_backup_last_failure_timestamp_seconds", Help: "When the last failed backup of the scope from this node ended (Unix time).", Type: Gauge,
		Samples: []Sample{{L("scope", scope), unix(end)}}}}
}

// CreateReplica is the textfile of a create-replica run: its exit code
// (0, or the cause Patroni fell back for), when it ended, how long it took,
// how much it restored and how old the backup it used was (bytes and age
// only when it restored one).
func CreateReplica(scope string, code int, cause string, end time.Time, took time.Duration, bytes int64, backupAge time.Duration) []Family {
	l := L("scope", scope)
	fams := []Family{
		{Name: "pghook_create_replica_last_exit_code", Help: "Exit code of the last create_replica run (0 restored; else the cause Patroni fell back for).", Type: Gauge,
			Samples: []Sample{{L("scope", scope, "cause", cause), float64(code)}}},
		{Name: "pghook_create_replica_last_run_timestamp_seconds", Help: "When the last create_replica run ended (Unix time).", Type: Gauge,
			Samples: []Sample{{l, unix(end)}}},
		{Name: "pghook_create_replica_duration_seconds", Help: "How long the last create_replica run took.", Type: Gauge,
			Samples: []Sample{{l, took.Seconds()}}},
	}
	if code == 0 {
		fams = append(fams,
			Family{Name: "pghook_create_replica_restored_bytes", Help: "Bytes the last successful create_replica restored.", Type: Gauge,
				Samples: []Sample{{l, float64(bytes)}}},
			Family{Name: "pghook_create_replica_backup_age_seconds", Help: "Age of the backup the last successful create_replica restored.", Type: Gauge,
				Samples: []Sample{{l, backupAge.Seconds()}}})
	}
	return fams
}
