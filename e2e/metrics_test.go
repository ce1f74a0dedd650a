//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// promVector is one instant-query answer of Prometheus's HTTP API.
type promVector []struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promQuery runs an instant query against the lab's Prometheus.
func promQuery(t *testing.T, expr string) (promVector, error) {
	t.Helper()
	out, err := lib(t, "lab_prom_query", expr)
	if err != nil {
		return nil, err
	}
	var a struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil || a.Status != "success" {
		return nil, fmt.Errorf("query %s: %v: %s", expr, err, out)
	}
	if a.Data.ResultType == "scalar" {
		var s [2]any
		if err := json.Unmarshal(a.Data.Result, &s); err != nil {
			return nil, err
		}
		return promVector{{Metric: map[string]string{}, Value: s}}, nil
	}
	var v promVector
	if err := json.Unmarshal(a.Data.Result, &v); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	return v, nil
}

func (v promVector) values() []string {
	var out []string
	for _, s := range v {
		out = append(out, fmt.Sprint(s.Value[1]))
	}
	return out
}

// nodeOf maps a scrape target (10.251.77.12:9187) to its lab node (n2).
func nodeOf(t *testing.T, instance string) string {
	t.Helper()
	host := strings.Split(instance, ":")[0]
	for _, n := range nodes {
		if ip, _ := lib(t, "lab_ip", n); strings.TrimSpace(ip) == host {
			return n
		}
	}
	return "?" + instance
}

// holdersSeen is who Prometheus last saw holding the VIP (pghook_vip_held == 1).
func holdersSeen(t *testing.T) ([]string, error) {
	v, err := promQuery(t, `pghook_vip_held == 1`)
	if err != nil {
		return nil, err
	}
	var hs []string
	for _, s := range v {
		hs = append(hs, nodeOf(t, s.Metric["instance"]))
	}
	sort.Strings(hs)
	return hs, nil
}

// TestMetricsInLab: Debian's Prometheus scrapes the three VIP watchers and a
// node_exporter per node (the callbacks' textfiles) through a switchover and
// a kill -9; what it sees is what happened.
func TestMetricsInLab(t *testing.T) {
	requireVIP(t)
	l := vipOnLeader(t, 90*time.Second)
	if out, err := lib(t, "lab_metrics_up"); err != nil {
		t.Fatalf("lab_metrics_up: %v %s", err, out)
	}
	t.Cleanup(func() { lib(t, "lab_metrics_down") })
	eventually(t, 60*time.Second, "Prometheus scraping 3 watchers and 3 node_exporters", func() error {
		for _, q := range []string{`count(up{job="pghook-vip"} == 1) == 3`, `count(up{job="node"} == 1) == 3`} {
			if v, err := promQuery(t, q); err != nil || len(v) != 1 {
				return fmt.Errorf("%s: %v %v", q, v.values(), err)
			}
		}
		return nil
	})
	waitHolder := func(want string) {
		t.Helper()
		eventually(t, 60*time.Second, "Prometheus to see "+want+" alone holding the VIP", func() error {
			hs, err := holdersSeen(t)
			if err != nil {
				return err
			}
			if len(hs) != 1 || hs[0] != want {
				return fmt.Errorf("holders seen %v", hs)
			}
			return nil
		})
	}
	waitHolder(l)

	// A switchover: Prometheus follows the VIP, and never sees it on two nodes.
	n := otherNode(l)
	t0 := time.Now()
	if out, err := lib(t, "lab_switchover", l, n); err != nil {
		t.Fatalf("switchover: %v %s", err, out)
	}
	waitHolder(n)
	time.Sleep(2 * time.Second)
	window := fmt.Sprintf("%ds", int(time.Since(t0).Seconds())+5)
	v, err := promQuery(t, `max_over_time(sum by (scope) (pghook_vip_held)[`+window+`:1s])`)
	if err != nil || len(v) != 1 || v.values()[0] != "1" {
		t.Errorf("most holders Prometheus saw during the switchover: %v %v, want 1", v.values(), err)
	}
	v, err = promQuery(t, `sum(pghook_vip_transitions_total{direction="hold"})`)
	if err != nil || len(v) != 1 || v.values()[0] == "0" {
		t.Errorf("no hold counted by the watchers: %v %v", v.values(), err)
	}
	// The new primary's on_role_change callback left its textfile.
	eventually(t, 30*time.Second, "the promoted node's on_role_change textfile", func() error {
		v, err := promQuery(t, `pghook_callback_success{action="on_role_change",role=~"master|primary|promoted"} == 1 or pghook_callback_success{action="on_role_change"} == 1`)
		if err != nil {
			return err
		}
		for _, s := range v {
			if nodeOf(t, s.Metric["instance"]) == n {
				return nil
			}
		}
		return fmt.Errorf("seen %v", v)
	})

	// kill -9 of the new primary: the VIP moves on once the lock expires.
	if _, err := lib(t, "lab_kill_node", n); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "Prometheus to see another node alone holding the VIP", func() error {
		hs, err := holdersSeen(t)
		if err != nil {
			return err
		}
		if len(hs) != 1 || hs[0] == n {
			return fmt.Errorf("holders seen %v", hs)
		}
		return nil
	})
	if _, err := lib(t, "lab_start_patroni", n); err != nil {
		t.Fatal(err)
	}
	l2 := vipOnLeader(t, 120*time.Second)
	waitHolder(l2)
	// A backup on a replica: its textfile gives the age of the newest backup.
	takeBackup(t, otherNode(l2))
	eventually(t, 30*time.Second, "the newest backup's age in Prometheus", func() error {
		v, err := promQuery(t, `time() - max by (scope) (pghook_backup_last_success_timestamp_seconds{scope="`+scope+`"})`)
		if err != nil {
			return err
		}
		if len(v) != 1 {
			return fmt.Errorf("no backup series yet: %v", v.values())
		}
		var age float64
		if _, err := fmt.Sscan(v.values()[0], &age); err != nil || age < 0 || age > 120 {
			return fmt.Errorf("backup age %v s, want 0..120 (%v)", v.values()[0], err)
		}
		return nil
	})
	// No alert about the VIP fired: it was never on two nodes, never on none
	// for 30 s.
	v, err = promQuery(t, `ALERTS{alertname=~"PghookVIPOnTwoHosts|PghookVIPOnNoHost|PghookWatcherDown",alertstate="firing"}`)
	if err != nil || len(v) != 0 {
		t.Errorf("VIP alerts firing: %+v %v", v, err)
	}
}
