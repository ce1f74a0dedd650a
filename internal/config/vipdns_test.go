package config

import (
	"strings"
	"testing"
)

const dnsOK = `{name: primary.pglab.example., zone: pglab.example, server: 192.0.2.53, tsig_key_file: /etc/pghook/tsig.key}`

func TestParseDNSAndExec(t *testing.T) {
	vip := func(s string) string { return "scopes:\n  s:\n    vip: " + s + "\n" }
	tests := []struct {
		name    string
		in      string
		wantErr string // "" accepts; else the key the one-line error must name
	}{
		{"dns", vip(`{backend: dns, interface: eth0, dns: ` + dnsOK + `}`), ""},
		{"dns udp ttl port", vip(`{backend: dns, interface: eth0, dns: {name: p.z.example, zone: z.example, server: "[2001:db8::53]:5353", ttl: 5s, transport: udp, timeout: 1s, tsig_key_file: /k}}`), ""},
		{"dns host name server", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: ns1.z:53, tsig_key_file: /k}}`), ""},
		{"dns without interface", vip(`{backend: dns, dns: ` + dnsOK + `}`), "interface"},
		{"dns without key", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53}}`), "dns.tsig_key_file"},
		{"dns with address", vip(`{backend: dns, interface: eth0, address: 192.0.2.10/24, dns: ` + dnsOK + `}`), "address"},
		{"dns name outside zone", vip(`{backend: dns, interface: eth0, dns: {name: p.other, zone: z, server: 192.0.2.53, tsig_key_file: /k}}`), "dns.name"},
		{"dns name is the zone", vip(`{backend: dns, interface: eth0, dns: {name: z., zone: z, server: 192.0.2.53, tsig_key_file: /k}}`), "dns.name"},
		{"dns name suffix is not a zone cut", vip(`{backend: dns, interface: eth0, dns: {name: pz, zone: z, server: 192.0.2.53, tsig_key_file: /k}}`), "dns.name"},
		{"dns bad name", vip(`{backend: dns, interface: eth0, dns: {name: "p q.z", zone: z, server: 192.0.2.53, tsig_key_file: /k}}`), "dns.name"},
		{"dns bad zone", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: "z..", server: 192.0.2.53, tsig_key_file: /k}}`), "dns.zone"},
		{"dns bad port", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: "192.0.2.53:0", tsig_key_file: /k}}`), "dns.server"},
		{"dns bad server", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: "a b", tsig_key_file: /k}}`), "dns.server"},
		{"dns bare v6 with port", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: "[2001:db8::53", tsig_key_file: /k}}`), "dns.server"},
		{"dns fractional ttl", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53, ttl: 1500ms, tsig_key_file: /k}}`), "dns.ttl"},
		{"dns huge ttl", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53, ttl: 48h, tsig_key_file: /k}}`), "dns.ttl"},
		{"dns relative key", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: tsig.key}}`), "dns.tsig_key_file"},
		{"dns transport", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: /k, transport: tls}}`), "dns.transport"},
		{"dns timeout", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: /k, timeout: 1m}}`), "dns.timeout"},
		{"dns replica name", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: /k, replica_name: replicas.z.}}`), ""},
		{"dns replica name outside zone", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: /k, replica_name: r.other}}`), "dns.replica_name"},
		{"dns replica name is the primary's", vip(`{backend: dns, interface: eth0, dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: /k, replica_name: P.z.}}`), "dns.replica_name"},
		{"dns typo", vip(`{backend: dns, interface: eth0, dns: {nme: p.z}}`), "nme"},
		{"exec", vip(`{backend: exec, address: 192.0.2.10, exec: {hold: [/usr/local/bin/api, hold], release: [/usr/local/bin/api, release], check: [/usr/local/bin/api, check], timeout: 20s}}`), ""},
		{"exec without check", vip(`{backend: exec, exec: {hold: [/a], release: [/a]}}`), "exec.check"},
		{"exec relative command", vip(`{backend: exec, exec: {hold: [api], release: [/a], check: [/a]}}`), "exec.hold"},
		{"exec unclean command", vip(`{backend: exec, exec: {hold: [/a], release: [/usr/../a], check: [/a]}}`), "exec.release"},
		{"exec nul", vip(`{backend: exec, exec: {hold: [/a], release: [/a], check: [/a, "x\0"]}}`), "exec.check"},
		{"exec timeout", vip(`{backend: exec, exec: {hold: [/a], release: [/a], check: [/a], timeout: 1h}}`), "exec.timeout"},
		{"exec as a string", vip(`{backend: exec, exec: {hold: "/a hold", release: [/a], check: [/a]}}`), "scopes.s.vip.exec.hold: want a list"},
		{"netlink per subnet", vip(`{backend: netlink, interface: eth0, addresses: [192.0.2.100/24, 198.51.100.100/24]}`), ""},
		{"addresses and address", vip(`{backend: netlink, interface: eth0, address: 192.0.2.100/24, addresses: [198.51.100.100/24]}`), "addresses"},
		{"addresses not CIDR", vip(`{backend: netlink, interface: eth0, addresses: [192.0.2.100]}`), "addresses"},
		{"addresses without interface", vip(`{backend: exec, addresses: [192.0.2.100/24], exec: {hold: [/a], release: [/a], check: [/a]}}`), "interface"},
		{"too many addresses", vip(`{backend: netlink, interface: eth0, addresses: [` + strings.Repeat("192.0.2.1/24, ", 16) + `192.0.2.1/24]}`), "at most 16"},
		{"netlink per subnet named in dns", vip(`{backend: netlink, interface: eth0, addresses: [192.0.2.100/24, 198.51.100.100/24], dns: ` + dnsOK + `}`), ""},
		{"netlink one address named in dns", vip(`{backend: netlink, interface: eth0, address: 192.0.2.100/24, dns: ` + dnsOK + `}`), ""},
		{"netlink named with replicas", vip(`{backend: netlink, interface: eth0, addresses: [192.0.2.100/24], dns: {name: p.z, zone: z, server: 192.0.2.53, tsig_key_file: /k, replica_name: r.z}}`), ""},
		{"netlink named without key", vip(`{backend: netlink, interface: eth0, addresses: [192.0.2.100/24], dns: {name: p.z, zone: z, server: 192.0.2.53}}`), "dns.tsig_key_file"},
		{"netlink named without name", vip(`{backend: netlink, interface: eth0, addresses: [192.0.2.100/24], dns: {ttl: 5s}}`), "dns.name"},
		{"netlink named bad server", vip(`{backend: netlink, interface: eth0, addresses: [192.0.2.100/24], dns: {name: p.z, zone: z, server: "a b", tsig_key_file: /k}}`), "dns.server"},
		{"netlink named outside zone", vip(`{backend: netlink, interface: eth0, addresses: [192.0.2.100/24], dns: {name: p.other, zone: z, server: 192.0.2.53, tsig_key_file: /k}}`), "dns.name"},
		{"dns with addresses", vip(`{backend: dns, interface: eth0, addresses: [192.0.2.100/24], dns: ` + dnsOK + `}`), "backend netlink with dns"},
		{"other backend ignores dns section", vip(`{backend: none, dns: {name: "bad name"}}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkParse(t, tt.in, tt.wantErr)
			if err == nil {
				return
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Fatalf("err = %q, want one line naming %q", msg, tt.wantErr)
			}
			// Errors found while reading the YAML name their line, then the key.
			if !strings.HasPrefix(msg, "line ") && !strings.HasPrefix(msg, "key scopes.s.vip: ") {
				t.Fatalf("err = %q: want it to start with the key scopes.s.vip", msg)
			}
		})
	}
}

// FuzzParse's seeds for the dns and exec keys live in
// testdata/fuzz/FuzzParse/seed-dns-*; this keeps them parseable.
func TestDNSSeedsParse(t *testing.T) {
	for i, in := range []string{
		"scopes:\n  s:\n    vip: {backend: dns, interface: eth0, dns: " + dnsOK + "}\n",
		"scopes:\n  s:\n    vip: {backend: exec, exec: {hold: [/a, h], release: [/a, r], check: [/a, c]}}\n",
		"scopes:\n  s:\n    vip: {backend: netlink, interface: eth0, addresses: [192.0.2.100/24, 198.51.100.100/24], dns: " + dnsOK + "}\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}
