//go:build integration

package install

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pghook/pghook/internal/testenv"
)

func requirePatroni(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	for _, p := range patroniCandidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("patroni not installed")
	return ""
}

// pghookBin is the binary under test: $PGHOOK_BIN (make integration), or a
// fresh build.
func pghookBin(t *testing.T) string {
	if b := os.Getenv("PGHOOK_BIN"); b != "" {
		return b
	}
	b := filepath.Join(t.TempDir(), "pghook")
	out, err := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", b, "../../cmd/pghook").CombinedOutput()
	if err != nil {
		t.Fatalf("building pghook: %v\n%s", err, out)
	}
	return b
}

// TestRealBinaryOutputPassesValidateConfig runs the real binary's
// `install --root DIR` and Patroni 3.0.2's own validator on the result,
// with the DCS reachable (etcd on loopback) and the ports free.
// connect_address must not be loopback for the validator; 192.0.2.77
// (RFC 5737) is only written, never used.
func TestRealBinaryOutputPassesValidateConfig(t *testing.T) {
	patroni := requirePatroni(t)
	testenv.RequireBinary(t, "/usr/lib/postgresql/15/bin/initdb")
	etcd := testenv.StartEtcd(t)
	root := t.TempDir()
	bin := pghookBin(t)
	for _, layout := range []string{"debian", "seed"} {
		scope := "val" + layout
		pg, rest := testenv.FreePort(t), testenv.FreePort(t)
		cmd := exec.Command(bin, "install", "--root", root, "--scope", scope, "--name", "n1",
			"--interface", "eth9", "--address", "192.0.2.77", "--network", "192.0.2.0/24",
			"--etcd-endpoints", etcd.Endpoint, "--pg-version", "15", "--layout", layout,
			"--port", fmt.Sprint(pg), "--rest-port", fmt.Sprint(rest), "--vip", "192.0.2.100/24")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install --root: %v\n%s", err, out)
		}
		file := filepath.Join(root, "etc/patroni", scope+".yml")
		if out, err := exec.Command(patroni, "--validate-config", file).CombinedOutput(); err != nil {
			t.Fatalf("%s layout: patroni --validate-config %s: %v\n%s", layout, file, err, out)
		}
		// A second run of the real binary changes nothing.
		out, err = exec.Command(bin, cmd.Args[1:]...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "unchanged") {
			t.Fatalf("second run: %v\n%s", err, out)
		}
	}
}

// TestValidateLiveChecks: without --root, install validates before writing
// (here as a dry run, so nothing is written): an unreachable etcd is a
// warning, a PostgreSQL port held by something other than this scope's
// Patroni is an error.
func TestValidateLiveChecks(t *testing.T) {
	requirePatroni(t)
	testenv.RequireBinary(t, "/usr/lib/postgresql/15/bin/initdb")
	o := Options{Scope: "pghook-it-validate", Name: "n1", Interface: "eth9", Address: "192.0.2.77", Network: "192.0.2.0/24",
		PGVersion: "15", DryRun: true, Port: testenv.FreePort(t), RestPort: testenv.FreePort(t),
		PatroniConfig: filepath.Join(t.TempDir(), "p.yml"), DataDir: filepath.Join(t.TempDir(), "data")}

	etcd := testenv.StartEtcd(t)
	o.EtcdEndpoints = []string{etcd.Endpoint}
	var out bytes.Buffer
	res, err := Run(o, &out)
	if err != nil || len(res.Warnings) != 0 || !strings.Contains(out.String(), "validated") {
		t.Fatalf("reachable etcd: %v %v\n%s", err, res, out.String())
	}

	o.EtcdEndpoints = []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	out.Reset()
	res, err = Run(o, &out)
	if err != nil || !strings.Contains(strings.Join(res.Warnings, "\n"), "is not reachable") {
		t.Fatalf("unreachable etcd must be a warning: %v %v\n%s", err, res, out.String())
	}

	l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", o.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	o.EtcdEndpoints = []string{etcd.Endpoint}
	out.Reset()
	if _, err := Run(o, &out); err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "nothing written") {
		t.Fatalf("a port held by another program must be an error, got %v\n%s", err, out.String())
	}
}

// TestValidateUnderRoot: with --root the rendered file is validated too;
// what Patroni checks against this host (here PostgreSQL 99's bin_dir,
// which does not exist here) is a warning, and the files are written.
func TestValidateUnderRoot(t *testing.T) {
	requirePatroni(t)
	o := Options{Scope: "main", Name: "n1", Interface: "eth9", Address: "192.0.2.77", Network: "192.0.2.0/24",
		PGVersion: "99", EtcdEndpoints: []string{"127.0.0.1:1"}, Root: t.TempDir()}
	var out bytes.Buffer
	res, err := Run(o, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	w := strings.Join(res.Warnings, "\n")
	if !strings.Contains(w, "postgresql.bin_dir") || !strings.Contains(w, "not the --root target") {
		t.Fatalf("want a host-dependent bin_dir warning, got:\n%s", w)
	}
	if _, err := os.Stat(filepath.Join(o.Root, "/etc/patroni/main.yml")); err != nil {
		t.Fatal(err)
	}
}
