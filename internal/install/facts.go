package install

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Facts are what install learns about the node.
type Facts struct {
	Hostname  string
	Interface string
	Address   netip.Addr
	Network   netip.Prefix
	PGVersion string
	BinDir    string
	// Patroni is the patroni executable found, or "".
	Patroni string
}

// pgLibDir is where Debian installs PostgreSQL's binaries; a var for tests.
var pgLibDir = "/usr/lib/postgresql"

// patroniCandidates are Debian's and pip's patroni; a var for tests.
var patroniCandidates = []string{"/usr/bin/patroni", "/usr/local/bin/patroni"}

// GatherFacts reads the host's facts, honouring the settings that override
// them (--name, --interface, --address, --network, --pg-version).
func GatherFacts(o *Options) (Facts, error) {
	var f Facts
	f.Hostname = o.Name
	if f.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return f, fmt.Errorf("host name: %w (pass --name)", err)
		}
		f.Hostname = h
		if !scopeRE().MatchString(h) {
			return f, usage("name", "the host name %q is not a valid member name: pass --name", h)
		}
	}
	if err := f.network(o); err != nil {
		return f, err
	}
	if err := f.postgres(o); err != nil {
		return f, err
	}
	for _, p := range patroniCandidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			f.Patroni = p
			break
		}
	}
	return f, nil
}

func (f *Facts) network(o *Options) error {
	if o.Address != "" {
		f.Address = netip.MustParseAddr(o.Address)
	}
	if o.Network != "" {
		f.Network = netip.MustParsePrefix(o.Network).Masked()
	}
	f.Interface = o.Interface
	if f.Address.IsValid() && f.Network.IsValid() && f.Interface != "" {
		return nil
	}
	var link netlink.Link
	var err error
	if f.Interface != "" {
		if link, err = netlink.LinkByName(f.Interface); err != nil {
			return usage("interface", "%q: %v (see `ip link`)", f.Interface, err)
		}
	} else if link, err = defaultLink(); err != nil {
		return usage("interface", "%v; pass --interface", err)
	}
	f.Interface = link.Attrs().Name
	if f.Address.IsValid() && f.Network.IsValid() {
		return nil
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", f.Interface, err)
	}
	vips := map[netip.Addr]bool{}
	for _, v := range o.VIP {
		vips[netip.MustParsePrefix(v).Addr()] = true
	}
	var chosen *netlink.Addr
	for i := range addrs {
		a := &addrs[i]
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || vips[ip] || a.Flags&unix.IFA_F_SECONDARY != 0 {
			continue
		}
		if f.Address.IsValid() && ip != f.Address {
			continue
		}
		chosen = a
		break
	}
	if chosen == nil {
		if f.Address.IsValid() {
			if !f.Network.IsValid() {
				return usage("network", "%s is not an address of %s: pass --network too", f.Address, f.Interface)
			}
			return nil
		}
		return usage("interface", "%s has no IPv4 address: pass --address and --network", f.Interface)
	}
	ip, _ := netip.AddrFromSlice(chosen.IP.To4())
	ones, _ := chosen.Mask.Size()
	if !f.Address.IsValid() {
		f.Address = ip
	}
	if !f.Network.IsValid() {
		f.Network = netip.PrefixFrom(ip, ones).Masked()
	}
	return nil
}

// defaultLink is the interface of the IPv4 default route, else the first
// up non-loopback interface with an IPv4 address.
func defaultLink() (netlink.Link, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err == nil {
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask)) && r.LinkIndex > 0 {
				if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
					return l, nil
				}
			}
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Index < links[j].Attrs().Index })
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.Flags&net.FlagUp == 0 {
			continue
		}
		if addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4); len(addrs) > 0 {
			return l, nil
		}
	}
	return nil, errors.New("no default route and no up interface with an IPv4 address")
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

func (f *Facts) postgres(o *Options) error {
	if o.PGVersion != "" {
		f.PGVersion = o.PGVersion
		f.BinDir = filepath.Join(pgLibDir, o.PGVersion, "bin")
		return nil
	}
	matches, _ := filepath.Glob(filepath.Join(pgLibDir, "*", "bin", "initdb"))
	best := -1
	for _, m := range matches {
		v := filepath.Base(filepath.Dir(filepath.Dir(m)))
		if n, err := strconv.Atoi(v); err == nil && n > best {
			best = n
		}
	}
	if best < 0 {
		return usage("pg-version", "no PostgreSQL found (%s/*/bin/initdb): install postgresql-NN or pass --pg-version", pgLibDir)
	}
	f.PGVersion = strconv.Itoa(best)
	f.BinDir = filepath.Join(pgLibDir, f.PGVersion, "bin")
	return nil
}
