package patroni

// go test -fuzz targets (make fuzz runs each for FUZZTIME; plain go test
// runs the seeds in testdata/fuzz/<Name>/): patroni.yml, which every
// callback reads, and the answers of etcd (v2 keys API) and of
// Patroni's REST API, which come over the network.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		if c.Scope == "" || c.Name == "" || c.Postgresql.DataDir == "" {
			t.Fatalf("accepted without scope, name or data_dir: %+v", c)
		}
		if c.Etcd != nil && c.Etcd3 != nil {
			t.Fatal("accepted both etcd and etcd3")
		}
		port, err := c.Port()
		if err != nil || port < 1 || port > 65535 {
			t.Fatalf("accepted listen %q: port %d, %v", c.Postgresql.Listen, port, err)
		}
		if k := c.LeaderKey(); !strings.HasPrefix(k, "/") || !strings.HasSuffix(k, "/leader") {
			t.Fatalf("leader key %q", k)
		}
		if u, err := url.Parse(c.RestURL()); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			// Only a URL pghook can request is useful; a bad one must fail
			// at the request, not crash. Record what the parser let through.
			t.Logf("REST URL %q: %v", c.RestURL(), err)
		}
		_ = c.SocketDir()
		_ = c.DCS()
		for _, e := range []*Etcd{c.Etcd, c.Etcd3} {
			if e == nil {
				continue
			}
			eps, err := e.Endpoints()
			if err == nil && len(eps) == 0 {
				t.Fatal("Endpoints: no error and no endpoint")
			}
			for _, ep := range eps {
				if ep == "" {
					t.Fatalf("empty endpoint in %q", eps)
				}
			}
		}
		// BasicAuth's String is what gets logged: never the password.
		for kind, a := range c.Postgresql.Authentication {
			if a != nil && len(a.Password) >= 4 && !strings.Contains(a.Username, a.Password) && strings.Contains(a.String(), a.Password) {
				t.Fatalf("authentication.%s String() shows the password: %s", kind, a)
			}
		}
		// parse -> render -> parse keeps what pghook reads.
		out, err := yaml.Marshal(struct {
			Name       string     `yaml:"name"`
			Scope      string     `yaml:"scope"`
			Namespace  string     `yaml:"namespace"`
			RestAPI    RestAPI    `yaml:"restapi"`
			Etcd3      *Etcd      `yaml:"etcd3,omitempty"`
			Etcd       *Etcd      `yaml:"etcd,omitempty"`
			Consul     *yaml.Node `yaml:"consul,omitempty"`
			ZooKeeper  *yaml.Node `yaml:"zookeeper,omitempty"`
			Kubernetes *yaml.Node `yaml:"kubernetes,omitempty"`
			Raft       *yaml.Node `yaml:"raft,omitempty"`
			Postgresql Postgres   `yaml:"postgresql"`
		}{c.Name, c.Scope, c.Namespace, c.RestAPI, c.Etcd3, c.Etcd, node(c.Consul), node(c.ZooKeeper), node(c.Kubernetes), node(c.Raft), c.Postgresql})
		if err != nil {
			t.Skipf("re-encoding: %v", err) // e.g. a parameter value yaml cannot encode
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded patroni.yml refused: %v\n%s", err, out)
		}
		if c2.Scope != c.Scope || c2.Name != c.Name || c2.Postgresql.DataDir != c.Postgresql.DataDir ||
			c2.LeaderKey() != c.LeaderKey() || c2.RestURL() != c.RestURL() || c2.DCS() != c.DCS() || c2.SocketDir() != c.SocketDir() {
			t.Fatalf("round trip changed what pghook reads:\n%+v\n%+v\n%s", c, c2, out)
		}
		if p2, _ := c2.Port(); p2 != port {
			t.Fatalf("round trip changed the port %d -> %d", port, p2)
		}
	})
}

// node is n, or nil when the section is absent.
func node(n yaml.Node) *yaml.Node {
	if n.IsZero() {
		return nil
	}
	return &n
}

// fuzzServer answers every request with the status and body set last.
type fuzzServer struct {
	mu     sync.Mutex
	status int
	body   []byte
	srv    *httptest.Server
}

func newFuzzServer(f *testing.F) *fuzzServer {
	s := &fuzzServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		st, b := s.status, s.body
		s.mu.Unlock()
		w.WriteHeader(st)
		w.Write(b)
	}))
	f.Cleanup(s.srv.Close)
	return s
}

func (s *fuzzServer) set(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// fuzzStatus maps a byte to the HTTP statuses these clients branch on.
func fuzzStatus(b uint8) int {
	return []int{200, 201, 204, 400, 401, 404, 500, 503}[int(b)%8]
}

// FuzzDCSAnswers feeds one answer to each HTTP reader of the leader:
// etcd v2 (with and without authentication) and Patroni's REST API.
// Whatever the answer, no reader panics or hangs and an error never shows
// the etcd or REST password.
func FuzzDCSAnswers(f *testing.F) {
	srv := newFuzzServer(f)
	const pw = "Fuzz-DCS-Secret-7x"
	f.Fuzz(func(t *testing.T, status uint8, body []byte) {
		if strings.Contains(string(body), pw) {
			return // a server may echo anything; only pghook's own leaks count
		}
		srv.set(fuzzStatus(status), body)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hosts := yaml.Node{Kind: yaml.ScalarNode, Value: strings.TrimPrefix(srv.srv.URL, "http://")}
		for _, user := range []string{"", "root"} {
			c := &Config{Scope: "s", Name: "n",
				RestAPI: RestAPI{ConnectAddress: strings.TrimPrefix(srv.srv.URL, "http://"), Auth: &BasicAuth{Username: "patroni", Password: pw}}}
			c2 := &Config{Scope: "s", Name: "n", Etcd: &Etcd{Hosts: hosts, Username: user, Password: pw}}
			r, err := c2.Etcd2Reader(time.Second)
			if err != nil {
				t.Fatalf("v2 reader: %v", err)
			}
			if _, err := r.Leader(ctx); err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("etcd v2 error shows the password: %v", err)
			}
			rest, err := c.RestClient(time.Second)
			if err != nil {
				t.Fatalf("REST client: %v", err)
			}
			if _, err := (&restLeader{rest: rest}).Leader(ctx); err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("REST error shows the password: %v", err)
			}
			if _, err := rest.IsPrimary(ctx); err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("REST error shows the password: %v", err)
			}
			if _, err := rest.Status(ctx); err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("REST error shows the password: %v", err)
			}
			rest.Close()
		}
	})
}
