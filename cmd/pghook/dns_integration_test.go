//go:build integration

package main

// The dns backend through the CLI, as Patroni's callbacks run it: as
// postgres, without capabilities, against BIND (internal/dnslab), with the
// key file root:postgres 0640. Under the shared lock:
//   flock /tmp/pghook-root.lock go test -tags integration -run TestDNSBackendCLI ./cmd/pghook/

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pghook/pghook/internal/dnslab"
	"github.com/pghook/pghook/netvip/dnsvip"
	"github.com/rs/zerolog"
)

func TestDNSBackendCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespace, BIND)")
	}
	bin := os.Getenv("PGHOOK_BIN")
	if bin == "" {
		t.Skip("PGHOOK_BIN unset (make integration)")
	}
	if _, err := os.Stat("/usr/sbin/named"); err != nil {
		t.Skip("bind9 not installed (make deps)")
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no user postgres")
	}
	gid, _ := strconv.Atoi(pg.Gid)
	lab, err := dnslab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	dir := filepath.Join(lab.Dir, "pg")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(lab.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "tsig.key")
	conf := filepath.Join(dir, "pghook.yaml")
	for _, f := range []struct {
		path string
		data []byte
	}{
		{key, raw},
		{conf, []byte("scopes:\n  s:\n    patroni_config: " + dir + "/none.yml\n    vip:\n      backend: dns\n      interface: " + dnslab.HostIf +
			"\n      dns: {name: " + dnslab.Name + ", zone: " + dnslab.Zone + ", server: " + dnslab.ServerAddr + ", tsig_key_file: " + key + "}\n")},
	} {
		if err := os.WriteFile(f.path, f.data, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f.path, 0, gid); err != nil {
			t.Fatal(err)
		}
	}
	secret := regexp.MustCompile(`secret "([^"]+)"`).FindSubmatch(raw)[1]
	asPostgres := func(args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command("setpriv", append([]string{"--reuid", pg.Uid, "--regid", pg.Gid, "--init-groups", "--inh-caps=-all", bin}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "PGHOOK_CONFIG=" + conf, "HOME=" + dir}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if strings.Contains(out.String()+errb.String(), string(secret)) {
			t.Fatalf("the TSIG secret appears in the output of %v", args)
		}
		return out.String(), errb.String(), err
	}
	served := func() []string {
		got, err := lab.Lookup(context.Background(), dnslab.Name)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	status := func() bool {
		out, errOut, err := asPostgres("vip", "status", "--scope", "s", "--json")
		if err != nil {
			t.Fatalf("vip status: %v: %s", err, errOut)
		}
		var st struct{ Held bool }
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("vip status output %q: %v", out, err)
		}
		return st.Held
	}

	if _, errOut, err := asPostgres("vip", "up", "--scope", "s"); err != nil {
		t.Fatalf("vip up as postgres: %v: %s", err, errOut)
	}
	if got := served(); !slices.Equal(got, []string{dnslab.HostAddr}) {
		t.Fatalf("after vip up the server answers %v", got)
	}
	if !status() {
		t.Fatal("vip status: not held after vip up")
	}
	// Another node takes the name; this node's late release leaves it.
	other, err := dnsvip.New(dnsvip.Settings{Name: dnslab.Name, Zone: dnslab.Zone, Server: dnslab.ServerAddr, KeyFile: lab.KeyFile,
		Address: netip.MustParseAddr("10.251.78.12")}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Hold(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := asPostgres("--log-level", "info", "vip", "down", "--scope", "s")
	if err != nil {
		t.Fatalf("vip down: %v: %s", err, errOut)
	}
	if !strings.Contains(errOut, "NXRRSET") {
		t.Errorf("the refused release is not logged: %s", errOut)
	}
	if got := served(); !slices.Equal(got, []string{"10.251.78.12"}) {
		t.Fatalf("after this node's late release the server answers %v", got)
	}
	if status() {
		t.Fatal("vip status: held while the record names another node")
	}
	// A key file others can read is refused, and nothing is sent.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := asPostgres("vip", "up", "--scope", "s"); err == nil || !strings.Contains(errOut, "others may read it") {
		t.Fatalf("vip up with a world-readable key: %v: %s", err, errOut)
	}
	if got := served(); !slices.Equal(got, []string{"10.251.78.12"}) {
		t.Fatalf("a refused key changed the record: %v", got)
	}
}
