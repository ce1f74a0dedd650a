//go:build integration

package dnsvip

// Against BIND 9 (Debian bind9) as the zone's primary, in namespace
// pghdns-srv (internal/dnslab). Root only; run under the shared lock:
//   flock /tmp/pghook-root.lock go test -tags integration -run BIND ./netvip/dnsvip/

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/pghook/pghook/internal/dnslab"
	"github.com/pghook/pghook/internal/testenv"
	"github.com/rs/zerolog"
)

// startLab starts dnslab's BIND for the test (root only); it is removed
// when the test ends.
func startLab(t *testing.T) *dnslab.Lab {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "/usr/sbin/named")
	lab, err := dnslab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	return lab
}

// expectRecord fails t unless the lab's server answers exactly want
// (sorted) for name's A records.
func expectRecord(t *testing.T, lab *dnslab.Lab, name string, want ...string) {
	t.Helper()
	got, err := lab.Lookup(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("BIND answers %v for %s, want %v", got, name, want)
	}
}

func TestBIND(t *testing.T) {
	lab := startLab(t)
	ctx := context.Background()
	node := func(t *testing.T, addr, keyFile, transport string) (*Backend, *bytes.Buffer) {
		t.Helper()
		var buf bytes.Buffer
		s := Settings{Name: dnslab.Name, Zone: dnslab.Zone, Server: dnslab.ServerAddr, KeyFile: keyFile, Transport: transport, Timeout: time.Second}
		if addr == "" {
			s.Interface = dnslab.HostIf
		} else {
			s.Address = netip.MustParseAddr(addr)
		}
		b, err := New(s, zerolog.New(&buf))
		if err != nil {
			t.Fatal(err)
		}
		return b, &buf
	}
	served := func(t *testing.T, want ...string) {
		t.Helper()
		expectRecord(t, lab, dnslab.Name, want...)
	}
	const n1, n2 = dnslab.HostAddr, "10.251.78.12"

	t.Run("take with this node's interface address", func(t *testing.T) {
		b, _ := node(t, "", lab.KeyFile, "tcp")
		if err := b.Hold(ctx); err != nil {
			t.Fatal(err)
		}
		served(t, n1)
		st, err := b.Status(ctx)
		if err != nil || !st.Held || !strings.Contains(st.Detail, "(ttl 1)") {
			t.Fatalf("status %+v %v", st, err)
		}
	})
	t.Run("new primary takes, the former primary's late release and status", func(t *testing.T) {
		newP, _ := node(t, n2, lab.KeyFile, "tcp")
		if err := newP.Hold(ctx); err != nil {
			t.Fatal(err)
		}
		served(t, n2)
		old, log := node(t, n1, lab.KeyFile, "tcp")
		if err := old.Release(ctx); err != nil {
			t.Fatalf("a refused release is not an error: %v", err)
		}
		served(t, n2)
		if !strings.Contains(log.String(), "NXRRSET") || !strings.Contains(log.String(), n2) {
			t.Fatalf("the refusal is not logged with the record's value: %s", log)
		}
		if !strings.Contains(lab.Log(), "prerequisite not satisfied (NXRRSET)") {
			t.Errorf("named did not log the failed prerequisite:\n%s", lab.Log())
		}
		if st, err := old.Status(ctx); err != nil || st.Held {
			t.Fatalf("former primary's status %+v %v", st, err)
		}
	})
	t.Run("over UDP the holder releases", func(t *testing.T) {
		b, log := node(t, n2, lab.KeyFile, "udp")
		if err := b.Release(ctx); err != nil {
			t.Fatal(err)
		}
		served(t)
		if !strings.Contains(log.String(), "dns record removed") {
			t.Fatalf("log: %s", log)
		}
		if err := b.Hold(ctx); err != nil {
			t.Fatal(err)
		}
		served(t, n2)
	})
	t.Run("a key the policy does not grant is refused", func(t *testing.T) {
		b, _ := node(t, n1, lab.OtherKeyFile, "tcp")
		for _, op := range []func(context.Context) error{b.Hold, b.Release} {
			var rc *RcodeError
			if err := op(ctx); !errors.As(err, &rc) || rc.Rcode != dns.RcodeRefused {
				t.Fatalf("err %v, want REFUSED", err)
			}
		}
		served(t, n2)
	})
	t.Run("a wrong secret is BADSIG and never logged", func(t *testing.T) {
		raw, err := os.ReadFile(lab.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		secret := regexp.MustCompile(`secret "([^"]+)"`).FindSubmatch(raw)[1]
		bad := bytes.Replace(raw, secret, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), 1)
		p := filepath.Join(filepath.Dir(lab.KeyFile), "bad.key")
		if err := os.WriteFile(p, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		b, log := node(t, n1, p, "tcp")
		err = b.Hold(ctx)
		var rc *RcodeError
		if !errors.As(err, &rc) || rc.Rcode != dns.RcodeNotAuth || rc.TSIGError != dns.RcodeBadSig {
			t.Fatalf("err %v, want NOTAUTH (TSIG BADSIG)", err)
		}
		if bytes.Contains([]byte(err.Error()+log.String()), secret) {
			t.Fatal("the secret appears in the error or the log")
		}
		served(t, n2)
	})
	t.Run("a key file others can read is refused", func(t *testing.T) {
		p := filepath.Join(filepath.Dir(lab.KeyFile), "open.key")
		raw, _ := os.ReadFile(lab.KeyFile)
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		b, _ := node(t, n1, p, "tcp")
		if err := b.Hold(ctx); !errors.Is(err, ErrKeyFileUnsafe) {
			t.Fatalf("err %v", err)
		}
		served(t, n2)
	})
	t.Run("replicas join and leave the replica record, each its own value", func(t *testing.T) {
		rep := func(addr string) *ReplicaRecord {
			b, err := New(Settings{Name: dnslab.Name, Zone: dnslab.Zone, Server: dnslab.ServerAddr, KeyFile: lab.KeyFile,
				ReplicaName: dnslab.ReplicaName, Address: netip.MustParseAddr(addr), Timeout: time.Second}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			return b.Replicas()
		}
		r1, r2 := rep(n1), rep(n2)
		before, err := lab.Lookup(ctx, dnslab.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			op   func(context.Context) error
			want []string
		}{{r1.Join, []string{n1}}, {r2.Join, []string{n1, n2}}, {r1.Join, []string{n1, n2}}, {r1.Leave, []string{n2}}, {r2.Leave, nil}} {
			if err := step.op(ctx); err != nil {
				t.Fatal(err)
			}
			expectRecord(t, lab, dnslab.ReplicaName, step.want...)
		}
		after, err := lab.Lookup(ctx, dnslab.Name)
		if err != nil || !slices.Equal(before, after) {
			t.Fatalf("the primary's record moved: %v → %v (%v)", before, after, err)
		}
	})
	t.Run("server down: an error within the timeout, and the record after restart", func(t *testing.T) {
		lab.StopServer()
		b, _ := node(t, n1, lab.KeyFile, "tcp")
		start := time.Now()
		if err := b.Hold(ctx); err == nil || !strings.Contains(err.Error(), dnslab.ServerAddr) {
			t.Fatalf("err %v", err)
		}
		if _, err := b.Status(ctx); err == nil {
			t.Fatal("status with the server down succeeded")
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("took %v", took)
		}
		if err := lab.StartServer(); err != nil {
			t.Fatal(err)
		}
		served(t, n2) // the journal kept the update
		if err := b.Hold(ctx); err != nil {
			t.Fatal(err)
		}
		served(t, n1)
	})
}
