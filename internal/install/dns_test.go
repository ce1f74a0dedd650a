package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallDNS(t *testing.T) {
	o := baseOpts(t)
	o.DNSName, o.DNSServer, o.TSIGKeyFile = "primary.pglab.example.", "192.0.2.53", "/etc/pghook/tsig-main.key"
	o.DNSReplicaName = "replicas.pglab.example."
	res, out := run(t, o)
	root := o.Root
	cfg := installedConfig(t, root)
	v := cfg.Scopes["main"].VIP
	if v.Backend != "dns" || v.Interface != "eth0" || v.Address != "" || v.DNS.Name != "primary.pglab.example." ||
		v.DNS.Zone != "pglab.example." || v.DNS.Server != "192.0.2.53" || v.DNS.TSIGKeyFile != "/etc/pghook/tsig-main.key" ||
		v.DNS.ReplicaName != "replicas.pglab.example." {
		t.Fatalf("vip section: %+v", v)
	}
	checkUnitsWithoutHelper(t, root, "dns")
	if strings.Contains(out, "tsig") && len(res.Warnings) > 0 {
		t.Logf("warnings: %v", res.Warnings)
	}
	// Idempotent, and switching back to netlink drops the dns keys.
	run(t, o)
	o2 := baseOpts(t)
	o2.Root, o2.VIP = root, VIPList{"10.0.0.100/24"}
	run(t, o2)
	cfg = installedConfig(t, root)
	if cfg.Scopes["main"].VIP.Backend != "netlink" || cfg.Scopes["main"].VIP.DNS.Name != "" {
		t.Fatalf("after --vip: %+v", cfg.Scopes["main"].VIP)
	}
}

func TestInstallDNSBadInput(t *testing.T) {
	checkBadInput(t, []badInput{
		{"dns-server", func(o *Options) { o.DNSName, o.TSIGKeyFile = "p.z.example", "/k" }},
		{"tsig-key-file", func(o *Options) { o.DNSName, o.DNSServer = "p.z.example", "192.0.2.53" }},
		{"tsig-key-file", func(o *Options) { o.DNSName, o.DNSServer, o.TSIGKeyFile = "p.z.example", "192.0.2.53", "relative.key" }},
		{"dns-name", func(o *Options) { o.DNSName, o.DNSServer, o.TSIGKeyFile = "p q", "192.0.2.53", "/k" }},
		{"vip-backend", func(o *Options) {
			o.DNSName, o.DNSServer, o.TSIGKeyFile, o.VIP, o.VIPBackend = "p.z.example", "192.0.2.53", "/k", VIPList{"10.0.0.100/24"}, "dns"
		}},
		{"vip", func(o *Options) { o.VIP = VIPList{"10.0.0.100/24", "10.0.0.101/24"} }},
		{"vip", func(o *Options) { o.VIP = VIPList{"10.0.0.100/24", "10.1.0.100"} }},
		{"dns-name", func(o *Options) { o.VIPBackend = "dns" }},
		{"dns-server", func(o *Options) { o.DNSServer = "192.0.2.53" }},
		{"dns-replica-name", func(o *Options) { o.DNSReplicaName = "replicas.z.example" }},
		{"dns-replica-name", func(o *Options) {
			o.DNSName, o.DNSServer, o.TSIGKeyFile, o.DNSReplicaName = "p.z.example", "192.0.2.53", "/k", "r.other.example"
		}},
		{"vip-backend", func(o *Options) {
			o.DNSName, o.DNSServer, o.TSIGKeyFile, o.VIPBackend = "p.z.example", "192.0.2.53", "/k", "netlink"
		}},
	})
}

// --vip repeated with --dns-name: one VIP per subnet, held by netlink, the
// record naming it; the VIP helper's watcher keeps both (the drop-in says
// so, replacing one written for the unprivileged watcher), and the Patroni
// unit's stop runs the helper, which releases the record before the address.
func TestInstallNamedVIPs(t *testing.T) {
	o := baseOpts(t)
	o.VIP = VIPList{"10.1.0.100/24", "10.2.0.100/24"}
	o.DNSName, o.DNSServer, o.TSIGKeyFile = "primary.pglab.example.", "192.0.2.53", "/etc/pghook/tsig-main.key"
	run(t, o)
	root := o.Root
	cfg := installedConfig(t, root)
	v := cfg.Scopes["main"].VIP
	if !v.Named() || v.Address != "" || strings.Join(v.Addresses, " ") != "10.1.0.100/24 10.2.0.100/24" || v.Interface != "eth0" ||
		v.DNS.Name != "primary.pglab.example." || v.DNS.Zone != "pglab.example." || cfg.VIPHelper != VIPHelper {
		t.Fatalf("vip section: %+v (helper %q)", v, cfg.VIPHelper)
	}
	drop := string(read(t, filepath.Join(root, SystemdEtc, "pghook-vip-watch@main.service.d", "pghook-dns.conf")))
	if !strings.Contains(drop, "ExecStart=\nExecStart="+VIPHelper+" watch --scope %i\n") {
		t.Errorf("watch drop-in: %q", drop)
	}
	if _, err := os.Stat(filepath.Join(root, SysctlDir, "60-pghook-eth0.conf")); err != nil {
		t.Errorf("arp_announce drop-in for the VIP: %v", err)
	}
	unit := string(read(t, filepath.Join(root, SystemdEtc, "patroni@main.service")))
	if !strings.Contains(unit, "ExecStopPost=-"+VIPHelper+" down --scope main") {
		t.Errorf("unit's ExecStopPost must run the helper, which releases the record and the address:\n%s", unit)
	}
	// One VIP again, without dns: address, no addresses, no dns keys.
	o2 := baseOpts(t)
	o2.Root, o2.VIP = root, VIPList{"10.1.0.100/24"}
	run(t, o2)
	cfg = installedConfig(t, root)
	if v := cfg.Scopes["main"].VIP; v.Named() || v.Address != "10.1.0.100/24" || len(v.Addresses) != 0 {
		t.Fatalf("after one --vip: %+v", v)
	}
}
