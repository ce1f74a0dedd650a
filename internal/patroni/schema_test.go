package patroni

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const base = "scope: s\nname: n1\npostgresql:\n  data_dir: /d\n"

// TestParseTolerantOfWrittenKeys: the keys pghook only writes never make
// a patroni.yml that Patroni accepts unreadable, whatever form they take.
func TestParseTolerantOfWrittenKeys(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(*Config) bool
	}{
		{"basebackup as a list", "  basebackup:\n    - verbose\n    - max-rate: 100M\n", func(c *Config) bool { _, ok := c.Postgresql.Basebackup.([]any); return ok }},
		{"basebackup as a map", "  basebackup:\n    checkpoint: fast\n", func(c *Config) bool { _, ok := c.Postgresql.Basebackup.(map[string]any); return ok }},
		{"quoted integers", "bootstrap:\n  dcs:\n    ttl: \"40\"\n    loop_wait: \"10\"\n    retry_timeout: 10\n", func(c *Config) bool {
			return c.Bootstrap.DCS.LoopWait == 10 && c.Bootstrap.DCS.RetryTimeout == 10 && c.Bootstrap.DCS.TTL.Value == "40"
		}},
		{"an integer that is no integer is zero", "bootstrap:\n  dcs:\n    loop_wait: soon\n", func(c *Config) bool { return c.Bootstrap.DCS.LoopWait == 0 }},
		{"booleans in YAML 1.1 spelling", "tags:\n  nofailover: yes\n  nosync: \"maybe\"\n", func(c *Config) bool { return bool(c.Tags.NoFailover) && !bool(c.Tags.NoSync) }},
		{"a map where a boolean belongs", "tags:\n  clonefrom: {a: 1}\n", func(c *Config) bool { return !bool(c.Tags.CloneFrom) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(base + tc.extra)) // extra indented: under postgresql
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.check(c) {
				t.Errorf("not read as expected: %+v", c)
			}
		})
	}
}

// TestWriteReadRoundTrip: what is written with these types reads back.
func TestWriteReadRoundTrip(t *testing.T) {
	c := Config{Scope: "s", Namespace: "/service/", Name: "n1",
		RestAPI: RestAPI{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.1:8008", Auth: &BasicAuth{Username: "patroni", Password: "pw"}},
		Etcd3:   &Etcd{Hosts: HostList([]string{"10.0.0.1:2379", "10.0.0.2:2379"}), Protocol: "https"},
		Postgresql: Postgres{Listen: "0.0.0.0:5433", DataDir: "/d", UseUnixSocket: true,
			Authentication: map[string]*BasicAuth{"rewind": {Username: "rewind_user", Password: "x"}}},
		Tags: Tags{NoSync: true},
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(%s): %v", b, err)
	}
	eps, err := got.Etcd3.Endpoints()
	if err != nil || strings.Join(eps, ",") != "https://10.0.0.1:2379,https://10.0.0.2:2379" {
		t.Errorf("endpoints %v, %v", eps, err)
	}
	if p, _ := got.Port(); p != 5433 || got.UserName("rewind") != "rewind_user" || got.DCS() != "etcd3" || !bool(got.Tags.NoSync) ||
		got.RestAPI.Auth == nil || got.RestAPI.Auth.Password != "pw" || !bool(got.Postgresql.UseUnixSocket) {
		t.Errorf("read back %+v", got)
	}
	for _, absent := range []string{"consul", "zookeeper", "kubernetes", "raft", "watchdog", "certfile", "host:", "url:"} {
		if strings.Contains(string(b), absent) {
			t.Errorf("unset key %s written:\n%s", absent, b)
		}
	}
}
