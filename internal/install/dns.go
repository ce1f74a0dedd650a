package install

import (
	"errors"
	"strings"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/netvip/dnsvip"
)

// checkDNS validates the dns options: --dns-name selects backend dns and
// needs --dns-server and --tsig-key-file; --dns-zone defaults to the name
// without its first label. With --vip (backend netlink) the record names
// the VIP the primary holds instead (config.VIP.Named).
func (o *Options) checkDNS() error {
	if o.DNSName == "" {
		for flag, v := range map[string]string{"dns-zone": o.DNSZone, "dns-server": o.DNSServer, "tsig-key-file": o.TSIGKeyFile, "dns-replica-name": o.DNSReplicaName} {
			if v != "" {
				return usage(flag, "needs --dns-name (the record the primary points at itself)")
			}
		}
		if o.VIPBackend == "dns" {
			return usage("dns-name", "is required with --vip-backend dns")
		}
		return nil
	}
	if o.VIPBackend == "" {
		o.VIPBackend = "dns"
	}
	want := "dns"
	if len(o.VIP) > 0 {
		want = "netlink" // normalizeVIP's default with --vip
	}
	if o.VIPBackend != want {
		return usage("vip-backend", "%q with --dns-name: want %s (dns: the record names the primary's own address; with --vip, netlink: it names the VIP)", o.VIPBackend, want)
	}
	if o.DNSZone == "" {
		if _, zone, ok := strings.Cut(strings.TrimSuffix(o.DNSName, "."), "."); ok {
			o.DNSZone = zone + "."
		}
	}
	switch {
	case o.DNSServer == "":
		return usage("dns-server", "is required with --dns-name (the zone's primary authoritative server)")
	case o.TSIGKeyFile == "":
		return usage("tsig-key-file", "is required with --dns-name (updates are always signed)")
	case o.DNSZone == "":
		return usage("dns-name", "%q has no parent zone: give --dns-zone", o.DNSName)
	}
	v := config.VIP{Settings: netvip.Settings{Backend: o.VIPBackend, Interface: "x", Addresses: o.VIP}, DNS: config.DNS{Name: o.DNSName, Zone: o.DNSZone, Server: o.DNSServer, TSIGKeyFile: o.TSIGKeyFile, ReplicaName: o.DNSReplicaName}}
	if err := v.Validate(); err != nil {
		flag := "dns-name"
		for key, f := range map[string]string{"dns.zone": "dns-zone", "dns.server": "dns-server", "dns.tsig_key_file": "tsig-key-file", "dns.replica_name": "dns-replica-name"} {
			if strings.HasPrefix(err.Error(), key+" ") {
				flag = f
			}
		}
		return usage(flag, "%v", err)
	}
	return nil
}

// checkTSIGKey warns when the key file is missing or would be refused.
func (in *installer) checkTSIGKey() {
	if in.o.TSIGKeyFile == "" || in.root != "" {
		return
	}
	if _, err := dnsvip.ReadKeyFile(in.o.TSIGKeyFile); err != nil {
		msg := err.Error()
		if errors.Is(err, dnsvip.ErrKeyFileUnsafe) {
			msg += "; it is refused until fixed"
		}
		in.warn("%s (tsig-keygen -a hmac-sha256 NAME > %s; chown root:postgres; chmod 0640)", msg, in.o.TSIGKeyFile)
	}
}

// vipDownCommand is what the Patroni unit's ExecStopPost runs: the VIP
// helper (for a named VIP it releases the record, then the address),
// except with backends exec and dns, which pghook runs itself (the helper
// refuses them); a dns release deletes only this node's value.
func vipDownCommand(o *Options) string {
	if o.VIPBackend == "dns" || o.VIPBackend == "exec" {
		return o.PghookBin + " vip"
	}
	return o.VIPHelper
}
