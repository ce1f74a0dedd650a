package config

// go test -fuzz target for pghook.yaml (make fuzz runs it for FUZZTIME;
// plain go test runs the seeds in testdata/fuzz/FuzzParse/). The file is
// root:postgres 0640 and read by every callback and by the privileged VIP
// helper, which trusts only a root-owned copy; a hand edit can hold any
// YAML.

import (
	"bytes"
	"testing"

	"gopkg.in/yaml.v3"
)

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse(bytes.NewReader(b))
		if err != nil {
			return
		}
		if cfg.Scopes == nil {
			t.Fatal("accepted with a nil scope map")
		}
		for name, s := range cfg.Scopes {
			if s == nil {
				t.Fatalf("scope %q is nil", name)
			}
			// An accepted file never carries a VIP setting that Validate
			// refuses: the backends rely on it.
			if err := s.VIP.Validate(); err != nil {
				t.Fatalf("scope %q accepted with an invalid vip: %v", name, err)
			}
			// A netlink VIP named in DNS (VIP.Named) is accepted only with
			// every key its record needs: the stack builds it unchecked.
			if d := s.VIP.DNS; s.VIP.Named() && (d.Name == "" || d.Zone == "" || d.Server == "" || d.TSIGKeyFile == "") {
				t.Fatalf("scope %q accepted a netlink vip named in dns without its record's keys: %+v", name, d)
			}
			if _, err := cfg.Scope(name); err != nil {
				t.Fatalf("Scope(%q) of an accepted file: %v", name, err)
			}
		}
		// parse → render → parse: what pghook read is what a re-encoded file
		// says (install rewrites pghook.yaml).
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		again, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-encoded file refused: %v\n%s", err, out)
		}
		// Compared as rendered: an empty list and a missing one mean the same.
		out2, err := yaml.Marshal(again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the settings (%v):\nfirst:\n%s\nsecond:\n%s", err, out, out2)
		}
	})
}
