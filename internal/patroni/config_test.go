package patroni

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const seedYAML = `
name: postgresql1
namespace: /service/
scope: postgres
restapi:
  listen: 0.0.0.0:8008
  connect_address: 192.168.0.10:8008
  authentication: {username: patroni, password: qaz}
etcd3:
  host: 192.168.0.10:2379
  username: root
  password: qaz
postgresql:
  listen: 0.0.0.0:5432
  connect_address: 192.168.0.10:5432
  bin_dir: /usr/lib/postgresql/15/bin
  data_dir: /var/lib/postgresql/15/main
  pgpass: /etc/patroni/.pgpass
  authentication:
    superuser: {username: postgres, password: qaz1}
    replication: {username: replicator, password: qaz2}
    rewind: {username: rewind_user, password: qaz3}
  parameters:
    unix_socket_directories: '/var/run/postgresql/'
`

func TestParseSeed(t *testing.T) {
	c, err := Parse([]byte(seedYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.DCS() != "etcd3" || c.LeaderKey() != "/service/postgres/leader" {
		t.Fatalf("dcs %q leader key %q", c.DCS(), c.LeaderKey())
	}
	if p, _ := c.Port(); p != 5432 {
		t.Fatalf("port %d", p)
	}
	if c.SocketDir() != "/var/run/postgresql/" || c.UserName("rewind") != "rewind_user" || c.UserName("nope") != "" {
		t.Fatalf("socket %q rewind %q", c.SocketDir(), c.UserName("rewind"))
	}
	eps, err := c.Etcd3.Endpoints()
	if err != nil || !reflect.DeepEqual(eps, []string{"http://192.168.0.10:2379"}) {
		t.Fatalf("endpoints %v %v", eps, err)
	}
	if c.RestURL() != "http://192.168.0.10:8008" {
		t.Fatalf("rest %s", c.RestURL())
	}
	if s := c.RestAPI.Auth.String(); strings.Contains(s, "qaz") {
		t.Fatalf("password in String(): %s", s)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not yaml", "name: [", "YAML"},
		{"no scope", "name: n\npostgresql: {data_dir: /d}\n", "key scope"},
		{"no data dir", "name: n\nscope: s\n", "postgresql.data_dir"},
		{"two dcs", "name: n\nscope: s\npostgresql: {data_dir: /d}\netcd: {host: a:1}\netcd3: {host: a:1}\n", "both"},
		{"bad port", "name: n\nscope: s\npostgresql: {data_dir: /d, listen: '*:abc'}\n", "postgresql.listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"hosts list", "{hosts: [a:2379, b:2379]}", []string{"http://a:2379", "http://b:2379"}},
		{"hosts string", "{hosts: 'a:2379,b:2379'}", []string{"http://a:2379", "http://b:2379"}},
		{"protocol https", "{host: a:2379, protocol: https}", []string{"https://a:2379"}},
		{"tls implies https", "{host: a:2379, cacert: /ca.pem}", []string{"https://a:2379"}},
		{"url", "{url: http://x:2379}", []string{"http://x:2379"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("name: n\nscope: s\npostgresql: {data_dir: /d}\netcd3: " + tt.in + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Etcd3.Endpoints()
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v %v want %v", got, err, tt.want)
			}
		})
	}
	c, _ := Parse([]byte("name: n\nscope: s\npostgresql: {data_dir: /d}\netcd3: {srv: example}\n"))
	if _, err := c.Etcd3.Endpoints(); err == nil {
		t.Fatal("srv accepted")
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.yml")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("missing: %v", err)
	}
	os.WriteFile(p, []byte("name: n\n"), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("bad: %v", err)
	}
}
