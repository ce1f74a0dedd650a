package install

// go test -fuzz target (make fuzz runs it for FUZZTIME; plain go test runs
// the seeds in testdata/fuzz/FuzzFromFile/). `pghook install --from FILE`
// reads a YAML file of settings, merges them into an existing pghook.yaml
// and renders patroni.yml with passwords that may come from a file
// (--etcd-password-file) or be adopted from an earlier install.

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/patroni"
)

func FuzzFromFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, from, existing []byte, su, rep, rew, rest, etcd string) {
		o, err := ReadFrom(bytes.NewReader(from))
		if err != nil {
			return
		}
		o.Root, o.NoValidate = "", true
		if err := o.normalize(); err != nil {
			return
		}
		if !scopeRE().MatchString(o.Scope) || strings.Contains(o.Scope, "..") {
			t.Fatalf("accepted scope %q", o.Scope)
		}
		if o.Port < 1 || o.Port > 65535 || o.RestPort < 1 || o.RestPort > 65535 {
			t.Fatalf("accepted ports %d/%d", o.Port, o.RestPort)
		}

		// Render patroni.yml and read it back as pghook and Patroni would.
		fa := Facts{Hostname: o.Name, Address: netip.MustParseAddr("192.0.2.10"), Network: netip.MustParsePrefix("192.0.2.0/24"),
			PGVersion: o.PGVersion, BinDir: "/usr/lib/postgresql/15/bin", Interface: "eth0"}
		if fa.Hostname == "" {
			fa.Hostname = "node1"
		}
		if o.Address != "" {
			fa.Address = netip.MustParseAddr(o.Address)
		}
		if fa.PGVersion == "" {
			fa.PGVersion = "15"
		}
		for _, s := range []string{su, rep, rew, rest, etcd} {
			if s == "" || !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\r\n") || strings.TrimSpace(s) != s {
				return // secrets are single trimmed lines (files, generated)
			}
		}
		sec := Secrets{Superuser: su, Replication: rep, Rewind: rew, RestAPI: rest, Etcd: etcd}
		py, err := renderPatroni(&o, &fa, &sec)
		if err != nil {
			t.Fatalf("rendering patroni.yml for accepted settings: %v", err)
		}
		c, err := patroni.Parse(py)
		if err != nil {
			t.Fatalf("rendered patroni.yml does not load: %v\n%s", err, py)
		}
		if c.Scope != o.Scope || c.Name != fa.Hostname || c.DCS() != o.DCS {
			t.Fatalf("rendered scope %q name %q dcs %q, want %q %q %q", c.Scope, c.Name, c.DCS(), o.Scope, fa.Hostname, o.DCS)
		}
		for kind, want := range map[string]string{"superuser": su, "replication": rep, "rewind": rew} {
			if a := c.Postgresql.Authentication[kind]; a == nil || a.Password != want {
				t.Fatalf("authentication.%s password does not read back as written:\n%s", kind, py)
			}
		}
		if c.RestAPI.Auth == nil || c.RestAPI.Auth.Password != rest {
			t.Fatalf("restapi password does not read back as written:\n%s", py)
		}
		e := c.Etcd3
		if e == nil {
			e = c.Etcd
		}
		if o.EtcdUser != "" && (e.Username != o.EtcdUser || e.Password != etcd) {
			t.Fatalf("etcd user/password %q/%q, want %q and the secret:\n%s", e.Username, e.Password, o.EtcdUser, py)
		}
		if eps, err := e.Endpoints(); err != nil || len(eps) != len(o.EtcdEndpoints) {
			t.Fatalf("etcd endpoints %q (%v) from %q", eps, err, o.EtcdEndpoints)
		}

		// Merge this scope into an existing pghook.yaml: the result loads,
		// points at the rendered patroni.yml, and merging again changes
		// nothing.
		ss := scopeSettings{PatroniConfig: o.PatroniConfig, VIPBackend: o.VIPBackend, VIPAddresses: o.VIP, VIPInterface: o.VIPInterface}
		if ss.VIPBackend == "netlink" && ss.VIPInterface == "" {
			ss.VIPInterface = "eth0"
		}
		once, err := mergePghookYAML(existing, o.Scope, ss)
		if err != nil {
			return // an existing file pghook cannot merge into is reported, not rewritten
		}
		cfg, err := config.Parse(bytes.NewReader(once))
		if err != nil {
			t.Fatalf("merged pghook.yaml does not load: %v\n%s", err, once)
		}
		if s := cfg.Scopes[o.Scope]; s == nil || s.PatroniConfig != o.PatroniConfig {
			t.Fatalf("merged pghook.yaml: scope %q section %+v, want patroni_config %q\n%s", o.Scope, s, o.PatroniConfig, once)
		}
		twice, err := mergePghookYAML(once, o.Scope, ss)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("merging twice is not a no-op (%v):\nonce:\n%s\ntwice:\n%s", err, once, twice)
		}
	})
}
