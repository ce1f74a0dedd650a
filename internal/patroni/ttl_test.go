package patroni

import (
	"testing"
	"time"
)

// The DCS's dynamic configuration wins; without it the ttl comes from
// bootstrap.dcs.ttl, else the default.
func TestTTLFromPatroniYml(t *testing.T) {
	for _, tt := range []struct {
		name, yml, dynamic string
		want               time.Duration
	}{
		{"bootstrap ttl", "bootstrap: {dcs: {ttl: 10}}\n", "", 10 * time.Second},
		{"quoted", "bootstrap: {dcs: {ttl: '20'}}\n", "", 20 * time.Second},
		{"absent", "", "", DefaultTTL},
		{"nonsense", "bootstrap: {dcs: {ttl: soon}}\n", "", DefaultTTL},
		{"negative", "bootstrap: {dcs: {ttl: -5}}\n", "", DefaultTTL},
		{"dynamic wins", "bootstrap: {dcs: {ttl: 10}}\n", `{"ttl":12,"loop_wait":2}`, 12 * time.Second},
		{"dynamic quoted", "", `{"ttl":"15"}`, 15 * time.Second},
		{"dynamic without ttl", "bootstrap: {dcs: {ttl: 10}}\n", `{"loop_wait":2}`, 10 * time.Second},
		{"dynamic not JSON", "bootstrap: {dcs: {ttl: 10}}\n", `ttl: 12`, 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("name: n1\nscope: pg\npostgresql: {data_dir: /d}\n" + tt.yml))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.TTL(tt.dynamic); got != tt.want {
				t.Fatalf("TTL %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStandbyCluster(t *testing.T) {
	for _, tt := range []struct {
		name, yml, dynamic string
		want               bool
	}{
		{"absent", "", "", false},
		{"bootstrap section", "bootstrap: {dcs: {standby_cluster: {host: 10.9.0.1, port: 5432}}}\n", "", true},
		{"bootstrap null", "bootstrap: {dcs: {standby_cluster: null}}\n", "", false},
		{"bootstrap empty", "bootstrap: {dcs: {standby_cluster: {}}}\n", "", false},
		{"dynamic section", "", `{"ttl":10,"standby_cluster":{"host":"10.9.0.1"}}`, true},
		{"dynamic wins: promoted out of standby", "bootstrap: {dcs: {standby_cluster: {host: 10.9.0.1}}}\n", `{"ttl":10}`, false},
		{"dynamic null", "", `{"standby_cluster":null}`, false},
		{"dynamic empty", "", `{"standby_cluster":{}}`, false},
		{"dynamic not JSON: patroni.yml", "bootstrap: {dcs: {standby_cluster: {host: 10.9.0.1}}}\n", `standby_cluster: x`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("name: n1\nscope: pg\npostgresql: {data_dir: /d}\n" + tt.yml))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.StandbyCluster(tt.dynamic); got != tt.want {
				t.Fatalf("StandbyCluster = %v, want %v", got, tt.want)
			}
		})
	}
}
