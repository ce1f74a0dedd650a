package patroni

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Without a readable DCS the ttl comes from bootstrap.dcs.ttl, else the
// default.
func TestTTLFromPatroniYml(t *testing.T) {
	for _, tt := range []struct {
		name, yml string
		want      time.Duration
	}{
		{"bootstrap ttl", "bootstrap: {dcs: {ttl: 10}}\n", 10 * time.Second},
		{"quoted", "bootstrap: {dcs: {ttl: '20'}}\n", 20 * time.Second},
		{"absent", "", DefaultTTL},
		{"nonsense", "bootstrap: {dcs: {ttl: soon}}\n", DefaultTTL},
		{"negative", "bootstrap: {dcs: {ttl: -5}}\n", DefaultTTL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("name: n1\nscope: pg\npostgresql: {data_dir: /d}\n" + tt.yml))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.TTL(context.Background(), 100*time.Millisecond); got != tt.want {
				t.Fatalf("TTL %v, want %v", got, tt.want)
			}
		})
	}
}

// The DCS's dynamic configuration wins over patroni.yml (etcd v2 keys API).
func TestTTLFromDCSConfig(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/keys/service/pg/config" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errorCode":100}`))
			return
		}
		w.Write([]byte(`{"node":{"value":"{\"ttl\":12,\"loop_wait\":2}"}}`))
	}))
	defer srv.Close()
	c, err := Parse([]byte("name: n1\nscope: pg\npostgresql: {data_dir: /d}\nbootstrap: {dcs: {ttl: 10}}\netcd: {host: '" + strings.TrimPrefix(srv.URL, "http://") + "'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.TTL(context.Background(), time.Second); got != 12*time.Second {
		t.Fatalf("TTL %v, want 12s from the DCS", got)
	}
}
