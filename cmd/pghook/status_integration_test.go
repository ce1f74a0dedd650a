//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// listenIn opens a TCP listener inside network namespace ns.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	type res struct {
		l   net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // the thread is thrown away, never moved back
		h, err := netns.GetFromName(ns)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ch <- res{nil, err}
			return
		}
		l, err := net.Listen("tcp", addr)
		ch <- res{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listening in %s: %v", ns, r.err)
	}
	t.Cleanup(func() { r.l.Close() })
	return r.l
}

// TestStatusAsPostgresThroughTheHelper runs `pghook status` as postgres,
// without capabilities, on a host (namespace) whose neighbour holds the
// VIP: the helper answers the ARP probe, and the answering MAC is named
// as the member whose address has it.
func TestStatusAsPostgresThroughTheHelper(t *testing.T) {
	dir, pgh, helper, gid := privilegedInstall(t, "pghook-status-")
	id := rand.Intn(1e6)
	me, peer := fmt.Sprintf("pghst-%d-a", id), fmt.Sprintf("pghst-%d-b", id)
	for _, ns := range []string{me, peer} {
		mustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	const peerMAC = "02:00:00:00:02:02"
	mustRun(t, "ip", "-n", me, "link", "add", "d0", "address", "02:00:00:00:02:01", "type", "veth", "peer", "name", "d0", "address", peerMAC, "netns", peer)
	mustRun(t, "ip", "-n", me, "addr", "add", "192.0.2.1/24", "dev", "d0")
	mustRun(t, "ip", "-n", peer, "addr", "add", "192.0.2.2/24", "dev", "d0")
	mustRun(t, "ip", "-n", me, "link", "set", "d0", "up")
	mustRun(t, "ip", "-n", peer, "link", "set", "d0", "up")
	mustRun(t, "ip", "-n", peer, "addr", "add", "192.0.2.10/24", "dev", "d0") // the peer holds the VIP

	// Patroni's REST API of this host: a fake of /cluster, listening in
	// this host's namespace; n2 (the peer) leads.
	l := listenIn(t, me, "127.0.0.1:0")
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cluster":
			fmt.Fprint(w, `{"members":[{"name":"n1","role":"replica","state":"running","api_url":"http://`+l.Addr().String()+`/patroni","host":"192.0.2.1","port":5432,"timeline":1,"lag":0},`+
				`{"name":"n2","role":"leader","state":"running","api_url":"http://192.0.2.2:8008/patroni","host":"192.0.2.2","port":5432,"timeline":1}]}`)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))

	pyml := filepath.Join(dir, "patroni.yml")
	os.WriteFile(pyml, []byte("scope: s\nname: n1\nrestapi: {connect_address: '"+l.Addr().String()+"'}\npostgresql: {data_dir: /nonexistent}\n"), 0o644)
	conf := helperConf(t, me, gid, fmt.Sprintf("vip_helper: %s\nscopes:\n  s:\n    patroni_config: %s\n    vip: {backend: netlink, address: 192.0.2.10/24, interface: d0}\n", helper, pyml))

	asPG := func(args ...string) (string, string, int) { return runAsPostgres(t, me, "/", args...) }

	// The helper alone: the peer's MAC answers.
	out, errOut, code := asPG(helper, "who-has", "--scope", "s", "--json")
	var ans struct{ Answers []string }
	if code != 0 || json.Unmarshal([]byte(out), &ans) != nil || len(ans.Answers) != 1 || ans.Answers[0] != peerMAC {
		t.Fatalf("helper who-has (exit %d): %s %s", code, out, errOut)
	}
	// It takes the address only from the root-owned config.
	if _, errOut, code := asPG(helper, "who-has", "--scope", "s", "--vip-address", "192.0.2.99/24"); code != 2 || !strings.Contains(errOut, "refused") {
		t.Fatalf("helper took a caller's address (exit %d): %s", code, errOut)
	}

	type doc struct {
		Scopes []struct {
			Leader  string `json:"leader"`
			Members []struct {
				Name string `json:"name"`
				VIP  bool   `json:"vip"`
			} `json:"members"`
			VIP struct {
				HeldLocally bool   `json:"held_locally"`
				Answer      string `json:"answer"`
				Holders     []struct {
					Member, MAC string
					Local       bool
				} `json:"holders"`
			} `json:"vip"`
		} `json:"scopes"`
		ExitCode int `json:"exit_code"`
	}
	status := func() (doc, string, int) {
		out, errOut, code := asPG(pgh, "status", "--config", conf, "--json")
		var d doc
		if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Scopes) != 1 {
			t.Fatalf("status output (exit %d) is not one scope's JSON: %v\n%s\n%s", code, err, out, errOut)
		}
		return d, out, code
	}
	// The VIP on the leader n2, found by MAC through the neighbour table.
	d, out, code := status()
	s := d.Scopes[0]
	if code != 0 || d.ExitCode != 0 || s.Leader != "n2" || s.VIP.Answer != "n2" || s.VIP.HeldLocally ||
		len(s.VIP.Holders) != 1 || s.VIP.Holders[0].MAC != peerMAC || !s.Members[1].VIP || s.Members[0].VIP {
		t.Fatalf("status (exit %d), want the VIP on n2:\n%s", code, out)
	}
	// This host takes it too: two hosts answer.
	mustRun(t, "ip", "-n", me, "addr", "add", "192.0.2.10/24", "dev", "d0")
	d, out, code = status()
	if s = d.Scopes[0]; code != 5 || s.VIP.Answer != "2 hosts!" || !s.VIP.HeldLocally || len(s.VIP.Holders) != 2 ||
		s.VIP.Holders[0].Member != "n1" || !s.VIP.Holders[0].Local || s.VIP.Holders[1].Member != "n2" {
		t.Fatalf("status (exit %d), want 2 hosts:\n%s", code, out)
	}
	// Nobody: exit 3; and the table says so.
	mustRun(t, "ip", "-n", me, "addr", "del", "192.0.2.10/24", "dev", "d0")
	mustRun(t, "ip", "-n", peer, "addr", "del", "192.0.2.10/24", "dev", "d0")
	tab, errOut, code := asPG(pgh, "status", "--config", conf)
	if code != 3 || !strings.Contains(tab, "VIP 192.0.2.10/24 on d0 (netlink): nobody") || !strings.Contains(tab, "! nobody answers for the VIP; the leader is n2") {
		t.Fatalf("status table (exit %d):\n%s\n%s", code, tab, errOut)
	}
}
