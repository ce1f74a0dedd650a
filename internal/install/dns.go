package install

import (
	"errors"
	"strings"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/netvip"
	"github.com/pghook/pghook/netvip/dnsvip"
)

// checkDNS validates the dns backend's options: --dns-name selects it and
// needs --dns-server and --tsig-key-file; --dns-zone defaults to the name
// without its first label.
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
	if o.VIP != "" {
		return usage("dns-name", "with --vip: pick one (a floating address, or a DNS record)")
	}
	if o.VIPBackend == "" {
		o.VIPBackend = "dns"
	}
	if o.VIPBackend != "dns" {
		return usage("vip-backend", "%q with --dns-name: want dns", o.VIPBackend)
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
	v := config.VIP{Settings: netvip.Settings{Backend: "dns", Interface: "x"}, DNS: config.DNS{Name: o.DNSName, Zone: o.DNSZone, Server: o.DNSServer, TSIGKeyFile: o.TSIGKeyFile, ReplicaName: o.DNSReplicaName}}
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
// helper, except for backends dns and exec, which pghook runs itself (the
// helper refuses them); a dns release deletes only this node's value.
func vipDownCommand(o *Options) string {
	if o.VIPBackend == "dns" || o.VIPBackend == "exec" {
		return o.PghookBin + " vip"
	}
	return o.VIPHelper
}
