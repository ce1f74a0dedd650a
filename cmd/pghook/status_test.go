package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePatroniREST answers /cluster and /patroni like Patroni 3.0.2, and
// only with the REST credentials of patroni.yml.
func fakePatroniREST(t *testing.T, leader string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "patroni" || p != "rest-S3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		role := func(n string) string {
			if n == leader {
				return "leader"
			}
			return "replica"
		}
		switch r.URL.Path {
		case "/cluster":
			fmt.Fprintf(w, `{"members":[{"name":"n1","role":%q,"state":"running","api_url":"http://%s/patroni","host":"127.0.0.1","port":5432,"timeline":3},`+
				`{"name":"n2","role":%q,"state":"running","api_url":"http://%s/patroni","host":"127.0.0.2","port":5432,"timeline":3,"lag":1048576}]}`,
				role("n1"), r.Host, role("n2"), r.Host)
		case "/patroni":
			fmt.Fprint(w, `{"state":"running","role":"master","replication":[{"usename":"replicator","application_name":"n2","client_addr":"127.0.0.2","state":"streaming","sync_state":"async"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// statusConfig writes patroni.yml (no DCS section: the leader comes from
// /cluster) and pghook.yaml for scope pg, and returns pghook.yaml's path.
func statusConfig(t *testing.T, restAddr string, extraScopes string) string {
	t.Helper()
	dir := t.TempDir()
	pyml := filepath.Join(dir, "patroni.yml")
	os.WriteFile(pyml, []byte(fmt.Sprintf(`scope: pg
name: n1
restapi:
  connect_address: %s
  authentication: {username: patroni, password: rest-S3cret}
postgresql:
  data_dir: /nonexistent
  authentication:
    superuser: {username: postgres, password: su-S3cret}
`, restAddr)), 0o600)
	conf := filepath.Join(dir, "pghook.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("scopes:\n  pg:\n    patroni_config: %s\n%s", pyml, extraScopes)), 0o600)
	return conf
}

func TestStatusCommand(t *testing.T) {
	up := fakePatroniREST(t, "n1")
	noLeader := fakePatroniREST(t, "")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	tests := []struct {
		name   string
		conf   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{name: "healthy, no VIP", conf: statusConfig(t, addr(up), ""), args: []string{"--scope", "pg"}, code: 0,
			stdout: []string{"+ Cluster: pg ", "| Member | Host      | Role    | State     | TL | Lag in MB |",
				"| n1     | 127.0.0.1 | Leader  | running   |  3 |           |", "| n2     | 127.0.0.2 | Replica | streaming |  3 |         1 |",
				"Leader: n1 (patroni http://" + addr(up) + "/cluster)"}},
		{name: "every scope of pghook.yaml by default", conf: statusConfig(t, addr(up), ""), code: 0, stdout: []string{"+ Cluster: pg "}},
		{name: "no leader", conf: statusConfig(t, addr(noLeader), ""), args: []string{"--scope", "pg"}, code: 4,
			stdout: []string{"Leader: none", "! no leader"}},
		{name: "Patroni down", conf: statusConfig(t, addr(down), ""), args: []string{"--scope", "pg"}, code: 1,
			stdout: []string{"! no Patroni REST API answered", "cannot list the members"}},
		{name: "scope without patroni.yml among others: worst code wins", conf: statusConfig(t, addr(up), "  other:\n    patroni_config: /nonexistent/patroni.yml\n"),
			code: 1, stdout: []string{"+ Cluster: other ", "+ Cluster: pg ", "! reading Patroni config"}},
		{name: "unknown scope", conf: statusConfig(t, addr(up), ""), args: []string{"--scope", "nope"}, code: 2, stderr: "no key scopes.nope"},
		{name: "argument instead of --scope", conf: statusConfig(t, addr(up), ""), args: []string{"pg"}, code: 2, stderr: "use --scope S"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBin(t, bin, nil, append([]string{"status", "--config", tt.conf}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, r.stderr)
			}
			for _, secret := range []string{"rest-S3cret", "su-S3cret"} {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("a password reached the output:\n%s\n%s", r.stdout, r.stderr)
				}
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	up := fakePatroniREST(t, "n2")
	r := runBin(t, bin, nil, "status", "--json", "--scope", "pg", "--config", statusConfig(t, strings.TrimPrefix(up.URL, "http://"), ""))
	if r.code != 0 {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	var doc struct {
		Scopes []struct {
			Scope   string `json:"scope"`
			Leader  string `json:"leader"`
			Members []struct {
				Name  string `json:"name"`
				State string `json:"state"`
				Local bool   `json:"local"`
			} `json:"members"`
			VIP      *json.RawMessage `json:"vip"`
			ExitCode int              `json:"exit_code"`
		} `json:"scopes"`
		ExitCode int `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
	}
	if len(doc.Scopes) != 1 || doc.Scopes[0].Leader != "n2" || len(doc.Scopes[0].Members) != 2 || !doc.Scopes[0].Members[0].Local ||
		doc.Scopes[0].VIP != nil || doc.ExitCode != 0 {
		t.Fatalf("unexpected document:\n%s", r.stdout)
	}
	// n2 leads: its own API (the same fake here) said who streams; n1 is
	// not in its replication list, so it stays "running".
	if doc.Scopes[0].Members[0].State != "running" {
		t.Errorf("n1 state %q", doc.Scopes[0].Members[0].State)
	}
}

func TestStatusHelpNamesExitCodes(t *testing.T) {
	r := runBin(t, bin, nil, "status", "--help")
	for _, s := range []string{"0  a leader", "3  the VIP answers on nobody", "4  no leader", "5  more than one host"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("--help lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestVIPWhoHasRefusesOtherBackends(t *testing.T) {
	conf := statusConfig(t, "127.0.0.1:1", "")
	r := runBin(t, bin, nil, "vip", "who-has", "--scope", "pg", "--config", conf)
	if r.code != 2 || !strings.Contains(r.stderr, "only netlink is probed") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	r = runBin(t, bin, nil, "vip", "who-has", "--scope", "pg", "--config", conf, "--vip-backend", "netlink", "--vip-address", "192.0.2.1/24", "--vip-interface", "lo", "--timeout", "1h")
	if r.code != 2 || !strings.Contains(r.stderr, "want 1ms..10s") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}
