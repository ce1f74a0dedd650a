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
