package rules

import (
	"encoding/json"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/metrics"
)

// Every pghook_ series the rules and the dashboard query is one pghook
// writes: a renamed metric cannot silently blind an alert.
func TestRulesAndDashboardNameRealMetrics(t *testing.T) {
	var d map[string]any
	if err := json.Unmarshal([]byte(Dashboard), &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	written := map[string]bool{}
	now := time.Unix(0, 0)
	var all [][]metrics.Family
	all = append(all, metrics.NewVIP("s", "netlink", nil).Families(),
		metrics.Callback("s", "on_start", "master", now, 0, true),
		metrics.Backup("s", "zstd", now, 0, 0), metrics.BackupFailure("s", now),
		metrics.CreateReplica("s", 0, "restored", now, 0, 0, 0))
	for _, fams := range all {
		for _, f := range fams {
			written[f.Name] = true
		}
	}
	re := regexp.MustCompile(`pghook_[a-z_]+`)
	used := map[string]bool{}
	for _, m := range re.FindAllString(Rules+Dashboard, -1) {
		used[m] = true
	}
	var unknown []string
	for m := range used {
		if !written[m] {
			unknown = append(unknown, m)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("rules/dashboard query series pghook never writes: %v", unknown)
	}
	if len(used) < 8 {
		t.Errorf("only %d pghook series used: %v", len(used), used)
	}
}
