package patroni

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRestClusterAndReplication(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cluster":
			// Patroni 3.0.2: lag is a number, "unknown", or absent (leader).
			w.Write([]byte(`{"members":[
{"name":"n1","role":"leader","state":"running","api_url":"http://10.0.0.1:8008/patroni","host":"10.0.0.1","port":5432,"timeline":4},
{"name":"n2","role":"replica","state":"running","api_url":"http://10.0.0.2:8008/patroni","host":"10.0.0.2","port":5432,"timeline":4,"lag":2097152},
{"name":"n3","role":"replica","state":"stopped","api_url":"http://10.0.0.3:8008/patroni","timeline":3,"lag":"unknown"}],"pause":true}`))
		case "/patroni":
			w.WriteHeader(http.StatusServiceUnavailable) // a primary whose PostgreSQL is not ready still answers
			w.Write([]byte(`{"state":"running","role":"master","replication":[{"usename":"rep","application_name":"n2","client_addr":"10.0.0.2","state":"streaming","sync_state":"async"}]}`))
		}
	}))
	defer srv.Close()
	r := restFor(t, srv.URL, time.Second)
	ctx := context.Background()
	cl, err := r.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !cl.Pause || len(cl.Members) != 3 {
		t.Fatalf("cluster %+v", cl)
	}
	lag := int64(2097152)
	want := []ClusterMember{
		{Name: "n1", Role: "leader", State: "running", APIURL: "http://10.0.0.1:8008/patroni", Host: "10.0.0.1", Port: 5432, Timeline: 4},
		{Name: "n2", Role: "replica", State: "running", APIURL: "http://10.0.0.2:8008/patroni", Host: "10.0.0.2", Port: 5432, Timeline: 4, Lag: &lag},
		{Name: "n3", Role: "replica", State: "stopped", APIURL: "http://10.0.0.3:8008/patroni", Timeline: 3, LagUnknown: true},
	}
	if !reflect.DeepEqual(cl.Members, want) {
		t.Fatalf("members\n got %+v\nwant %+v", cl.Members, want)
	}
	reps, err := r.Replication(ctx)
	if err != nil || len(reps) != 1 || reps[0].ApplicationName != "n2" || reps[0].State != "streaming" {
		t.Fatalf("replication %+v %v", reps, err)
	}
}

func TestClusterMemberLag(t *testing.T) {
	tests := []struct {
		in      string
		lag     int64
		hasLag  bool
		unknown bool
		err     bool
	}{
		{in: `{"name":"a"}`},
		{in: `{"name":"a","lag":null}`},
		{in: `{"name":"a","lag":0}`, hasLag: true},
		{in: `{"name":"a","lag":123456789012}`, lag: 123456789012, hasLag: true},
		{in: `{"name":"a","lag":1.0e3}`, lag: 1000, hasLag: true},
		{in: `{"name":"a","lag":"unknown"}`, unknown: true},
		{in: `{"name":"a","lag":[1]}`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var m ClusterMember
			err := m.UnmarshalJSON([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if tt.err {
				return
			}
			if m.Name != "a" || (m.Lag != nil) != tt.hasLag || m.LagUnknown != tt.unknown || (m.Lag != nil && *m.Lag != tt.lag) {
				t.Fatalf("got %+v (lag %v)", m, m.Lag)
			}
		})
	}
}

func TestRestClientAt(t *testing.T) {
	c, err := Parse([]byte("name: n1\nscope: pg\npostgresql: {data_dir: /d}\nrestapi: {connect_address: 10.0.0.1:8008, authentication: {username: u, password: p}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url, base string
		bad       bool
	}{
		{url: "http://10.0.0.2:8008/patroni", base: "http://10.0.0.2:8008"},
		{url: "https://db2.example:8443/patroni", base: "https://db2.example:8443"},
		{url: "http://user:pw@10.0.0.3:8008/patroni", base: "http://10.0.0.3:8008"}, // user info never kept
		{url: "10.0.0.2:8008", bad: true},
		{url: "ftp://10.0.0.2/", bad: true},
		{url: "", bad: true},
	}
	for _, tt := range tests {
		r, err := c.RestClientAt(tt.url, time.Second)
		if tt.bad {
			if err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
				t.Errorf("%q: err %v, want a refusal", tt.url, err)
			}
			continue
		}
		if err != nil || r.Base() != tt.base || r.auth == nil || r.auth.Username != "u" {
			t.Errorf("%q: base %v err %v", tt.url, r, err)
		}
	}
}

func TestParseMembers(t *testing.T) {
	prefix := "/service/pg/members/"
	got := ParseMembers(prefix, map[string]string{
		prefix + "n2":        `{"conn_url":"postgres://10.0.0.2:5432/postgres","api_url":"http://10.0.0.2:8008/patroni","state":"running"}`,
		prefix + "n1":        `{"api_url":"http://10.0.0.1:8008/patroni"}`,
		prefix + "broken":    `not json`,
		prefix + "noapi":     `{"state":"running"}`,
		prefix + "x/y":       `{"api_url":"http://10.0.0.9:8008/patroni"}`,
		"/service/pg/leader": "n1",
	})
	want := []MemberAPI{{Name: "n1", APIURL: "http://10.0.0.1:8008/patroni"}, {Name: "n2", APIURL: "http://10.0.0.2:8008/patroni"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
