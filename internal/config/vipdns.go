package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DNS configures the dns VIP backend: instead of moving an address, the
// primary replaces one DNS record (RFC 2136 UPDATE, signed with TSIG) with
// its own address on the scope's vip.interface. With backend netlink, the
// same keys make the record name the VIP the primary holds (VIP.Named):
// with addresses, its subnet's.
type DNS struct {
	// Name is the record clients resolve, e.g. primary.pglab.example.
	Name string `yaml:"name"`
	// Zone is the zone that holds Name, e.g. pglab.example.
	Zone string `yaml:"zone"`
	// Server is the primary authoritative server, host or host:port
	// (port 53 by default), e.g. 192.0.2.53.
	Server string `yaml:"server"`
	// TTL of the record (0: 1s); whole seconds.
	TTL time.Duration `yaml:"ttl"`
	// TSIGKeyFile is a BIND key file (tsig-keygen), owned by root and
	// readable by root and group postgres only.
	TSIGKeyFile string `yaml:"tsig_key_file"`
	// Transport is tcp (the default) or udp.
	Transport string `yaml:"transport"`
	// Timeout bounds each exchange with the server (0: 2s).
	Timeout time.Duration `yaml:"timeout"`
	// ReplicaName, when set, is a second record in the zone: every replica
	// that serves reads (Patroni's GET /replica answers 200) adds its own
	// address to it and removes it when it stops being one; `pghook vip
	// watch` keeps it, e.g. replicas.pglab.example.
	ReplicaName string `yaml:"replica_name"`
}

// Bounds of the dns settings.
const (
	MaxDNSTTL     = 24 * time.Hour
	MaxDNSTimeout = 30 * time.Second
)

func (d DNS) validate(v VIP) error {
	if v.Backend == "netlink" {
		// Named: the record names the VIP; netlink has checked the rest.
		if d.Name == "" || d.Zone == "" || d.Server == "" || d.TSIGKeyFile == "" {
			return errors.New("dns with backend netlink needs dns.name, dns.zone, dns.server and dns.tsig_key_file (the record then names the VIP this node holds)")
		}
	} else {
		if d.Name == "" || d.Zone == "" || d.Server == "" || d.TSIGKeyFile == "" || v.Interface == "" {
			return errors.New("backend dns needs dns.name, dns.zone, dns.server, dns.tsig_key_file and interface (whose address the record names)")
		}
		if v.Address != "" {
			return fmt.Errorf("address %q: backend dns names this node's own address on interface %s; remove address (or use backend netlink with dns: the record then names the VIP)", v.Address, v.Interface)
		}
		if len(v.Addresses) > 0 {
			return fmt.Errorf("addresses %v: backend dns names this node's own address on interface %s; for one VIP per subnet named in DNS use backend netlink with dns", v.Addresses, v.Interface)
		}
	}
	if err := checkDomain(d.Name); err != nil {
		return fmt.Errorf("dns.name %q: %w", d.Name, err)
	}
	if err := checkDomain(d.Zone); err != nil {
		return fmt.Errorf("dns.zone %q: %w", d.Zone, err)
	}
	name, zone := canonical(d.Name), canonical(d.Zone)
	if name == zone || !strings.HasSuffix(name, "."+zone) {
		return fmt.Errorf("dns.name %q is not a name below dns.zone %q", d.Name, d.Zone)
	}
	if d.ReplicaName != "" {
		if err := checkDomain(d.ReplicaName); err != nil {
			return fmt.Errorf("dns.replica_name %q: %w", d.ReplicaName, err)
		}
		if r := canonical(d.ReplicaName); r == name || !strings.HasSuffix(r, "."+zone) {
			return fmt.Errorf("dns.replica_name %q: want a name below dns.zone %q other than dns.name", d.ReplicaName, d.Zone)
		}
	}
	if err := checkServer(d.Server); err != nil {
		return fmt.Errorf("dns.server %q: %w", d.Server, err)
	}
	switch {
	case d.TTL < 0 || d.TTL > MaxDNSTTL:
		return fmt.Errorf("dns.ttl %v: want 1s to %v (0: the default, 1s)", d.TTL, MaxDNSTTL)
	case d.TTL%time.Second != 0:
		return fmt.Errorf("dns.ttl %v: want whole seconds, e.g. 1s", d.TTL)
	}
	if !filepath.IsAbs(d.TSIGKeyFile) || filepath.Clean(d.TSIGKeyFile) != d.TSIGKeyFile {
		return fmt.Errorf("dns.tsig_key_file %q: want a clean absolute path, e.g. /etc/pghook/tsig-main.key", d.TSIGKeyFile)
	}
	switch d.Transport {
	case "", "tcp", "udp":
	default:
		return fmt.Errorf("dns.transport %q: want tcp or udp", d.Transport)
	}
	if d.Timeout < 0 || d.Timeout > MaxDNSTimeout {
		return fmt.Errorf("dns.timeout %v: want up to %v (0: the default, 2s)", d.Timeout, MaxDNSTimeout)
	}
	return nil
}

func canonical(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// checkDomain accepts a host name with or without its final dot: labels of
// letters, digits, '-' and '_', 1 to 63 bytes, at most 253 in all.
func checkDomain(s string) error {
	t := strings.TrimSuffix(s, ".")
	if t == "" || len(t) > 253 {
		//lint:ignore ST1005 the example is a fully qualified name, final dot included
		return errors.New("want a domain name such as primary.db.example.")
	}
	for _, l := range strings.Split(t, ".") {
		if l == "" || len(l) > 63 {
			return errors.New("has an empty label or one longer than 63 bytes")
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("contains %q: want letters, digits, '-' and '_'", r)
			}
		}
	}
	return nil
}

func checkServer(s string) error {
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.Count(s, ":") == 1 || strings.HasPrefix(s, "[") {
		return errors.New("want host or host:port, e.g. 192.0.2.53 or [2001:db8::53]:53")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", port)
	}
	if net.ParseIP(host) == nil {
		if err := checkDomain(host); err != nil {
			return fmt.Errorf("host %q: want an IP address or a host name", host)
		}
	}
	return nil
}

// Exec configures the exec VIP backend: commands, run without a shell,
// that hold, release and check the VIP (a cloud provider's API). Each is
// an argument list whose first element is an absolute path.
type Exec struct {
	// Hold makes this node hold the VIP; exit 0 means it does.
	Hold []string `yaml:"hold"`
	// Release makes this node not hold it; exit 0 means it does not.
	Release []string `yaml:"release"`
	// Check exits 0 when this node holds the VIP, 1 when it does not;
	// anything else means unknown.
	Check []string `yaml:"check"`
	// Timeout bounds each command (0: 10s); a command still running is
	// killed, with its process group.
	Timeout time.Duration `yaml:"timeout"`
}

// MaxExecTimeout bounds exec.timeout.
const MaxExecTimeout = 5 * time.Minute

func (e Exec) validate() error {
	for _, c := range []struct {
		key  string
		argv []string
	}{{"exec.hold", e.Hold}, {"exec.release", e.Release}, {"exec.check", e.Check}} {
		if len(c.argv) == 0 {
			return fmt.Errorf("backend exec needs %s (a command as a list, e.g. [/usr/local/bin/vip-api, hold])", c.key)
		}
		if p := c.argv[0]; !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("%s: the command %q must be a clean absolute path (no shell, no PATH lookup)", c.key, p)
		}
		for _, a := range c.argv {
			if strings.ContainsRune(a, 0) {
				return fmt.Errorf("%s: an argument contains a NUL byte", c.key)
			}
		}
	}
	if e.Timeout < 0 || e.Timeout > MaxExecTimeout {
		return fmt.Errorf("exec.timeout %v: want up to %v (0: the default, 10s)", e.Timeout, MaxExecTimeout)
	}
	return nil
}

// MaxVIPAddresses bounds vip.addresses (netvip.MaxAddresses).
const MaxVIPAddresses = 16

// checkAddresses checks vip.addresses: CIDRs, at most MaxVIPAddresses,
// not together with address.
func (v VIP) checkAddresses() error {
	if len(v.Addresses) == 0 {
		return nil
	}
	if v.Address != "" {
		return fmt.Errorf("address %q and addresses: give one (addresses: one VIP per subnet)", v.Address)
	}
	if v.Interface == "" {
		return errors.New("addresses needs interface (the VIP of the subnet that holds its address is taken)")
	}
	if len(v.Addresses) > MaxVIPAddresses {
		return fmt.Errorf("addresses: %d entries, at most %d", len(v.Addresses), MaxVIPAddresses)
	}
	for _, a := range v.Addresses {
		if _, err := netip.ParsePrefix(a); err != nil {
			return fmt.Errorf("addresses: %q is not a CIDR, e.g. 192.0.2.100/24", a)
		}
	}
	return nil
}
