package clusterstatus

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pghook/pghook/netvip"
)

// NetlinkView finds who answers for a VIP that the netlink backend moves:
// this host when the address is on its interface, plus every host that
// answers an ARP probe / neighbour solicitation for it on the link. The
// answering MACs are matched to members through the kernel's neighbour
// table of the members' addresses: before reading it, a TCP connection
// to each member's REST port makes the kernel resolve their addresses.
type NetlinkView struct {
	Prefix    netip.Prefix
	Interface string
	// Held reports whether this host holds the VIP (the backend's Status).
	Held func(ctx context.Context) (bool, error)
	// Ask returns the MACs of the other hosts that answer for the VIP
	// (netvip.WhoHas, or the VIP helper's when this process lacks
	// CAP_NET_RAW).
	Ask func(ctx context.Context) ([]net.HardwareAddr, error)
	// Neighbours reads the kernel's neighbour table of Interface
	// (netvip.Neighbours).
	Neighbours func(ifname string) ([]netvip.Neighbour, error)
	// Dial opens and closes a connection, so that the kernel resolves a
	// member's address (nil: net.Dialer with a 300ms timeout).
	Dial func(ctx context.Context, hostport string) error
	// Resolve turns a member's host name into addresses (nil: the
	// default resolver).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Look implements VIPView.
func (n NetlinkView) Look(ctx context.Context, ms []Member) (*VIP, error) {
	v := &VIP{Backend: "netlink", Address: n.Prefix.String(), Interface: n.Interface, Holders: []Holder{}}
	var (
		wg              sync.WaitGroup
		held            bool
		heldErr, askErr error
		answers         []net.HardwareAddr
	)
	wg.Add(2)
	go func() { defer wg.Done(); held, heldErr = n.Held(ctx) }()
	go func() { defer wg.Done(); answers, askErr = n.Ask(ctx) }()
	// Meanwhile, make the kernel resolve the members' addresses.
	addrs := n.memberAddrs(ctx, ms)
	wg.Wait()
	if heldErr != nil {
		return v, fmt.Errorf("is the VIP on this host: %w", heldErr)
	}
	v.HeldLocally = held
	if held {
		h := Holder{Local: true}
		for _, m := range ms {
			if m.Local {
				h.Member = m.Name
			}
		}
		v.Holders = append(v.Holders, h)
	}
	if askErr != nil {
		return v, fmt.Errorf("asking the link who answers for %s: %w", n.Prefix.Addr(), askErr)
	}
	var neigh []netvip.Neighbour
	if len(answers) > 0 && n.Neighbours != nil {
		var err error
		if neigh, err = n.Neighbours(n.Interface); err != nil {
			return v, err
		}
	}
	v.Holders = append(v.Holders, MapAnswers(answers, neigh, addrs)...)
	return v, nil
}

// memberAddrs resolves every non-local member's host and REST host, and
// connects to the REST port of each so that the kernel has a neighbour
// entry for it. It returns member name → addresses.
func (n NetlinkView) memberAddrs(ctx context.Context, ms []Member) map[string][]netip.Addr {
	resolve := n.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	dial := n.Dial
	if dial == nil {
		dial = func(ctx context.Context, hostport string) error {
			d := net.Dialer{Timeout: 300 * time.Millisecond}
			c, err := d.DialContext(ctx, "tcp", hostport)
			if err == nil {
				c.Close()
			}
			return err
		}
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string][]netip.Addr{}
	)
	for _, m := range ms {
		if m.Local {
			continue
		}
		hosts := []string{m.Host}
		restPort := ""
		if u, err := url.Parse(m.apiURL); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
			restPort = u.Port()
			if restPort == "" {
				restPort = map[string]string{"https": "443"}[u.Scheme]
				if restPort == "" {
					restPort = "80"
				}
			}
		}
		for _, h := range hosts {
			if h == "" {
				continue
			}
			wg.Add(1)
			go func(name, host string) {
				defer wg.Done()
				var as []netip.Addr
				if a, err := netip.ParseAddr(host); err == nil {
					as = []netip.Addr{a.Unmap()}
				} else if rs, err := resolve(ctx, host); err == nil {
					for _, a := range rs {
						as = append(as, a.Unmap())
					}
				}
				if restPort != "" {
					for _, a := range as {
						_ = dial(ctx, net.JoinHostPort(a.String(), restPort)) // only to fill the neighbour table
					}
				}
				mu.Lock()
				out[name] = append(out[name], as...)
				mu.Unlock()
			}(m.Name, h)
		}
	}
	wg.Wait()
	return out
}

// MapAnswers names the host behind each answering MAC: the member one of
// whose addresses has that MAC in the neighbour table, else just the MAC.
func MapAnswers(answers []net.HardwareAddr, neigh []netvip.Neighbour, addrs map[string][]netip.Addr) []Holder {
	names := make([]string, 0, len(addrs))
	for name := range addrs {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]Holder, 0, len(answers))
	for _, mac := range answers {
		h := Holder{MAC: mac.String()}
	find:
		for _, name := range names {
			for _, a := range addrs[name] {
				for _, nb := range neigh {
					if nb.Addr == a && bytes.Equal(nb.MAC, mac) {
						h.Member = name
						break find
					}
				}
			}
		}
		out = append(out, h)
	}
	return out
}

// PcsView asks Pacemaker where the VIP resource runs.
type PcsView struct {
	Resource string
	// Locate returns the nodes the resource runs on and this node's name
	// ((*netvip.Pcs).Locate).
	Locate func(ctx context.Context) (on []string, self string, err error)
}

// Look implements VIPView. A Pacemaker node is matched to the member of
// the same name, or whose host is that name.
func (p PcsView) Look(ctx context.Context, ms []Member) (*VIP, error) {
	v := &VIP{Backend: "pcs", Resource: p.Resource, Holders: []Holder{}}
	on, self, err := p.Locate(ctx)
	if err != nil {
		return v, err
	}
	for _, node := range on {
		h := Holder{Node: node, Local: node == self}
		for _, m := range ms {
			if strings.EqualFold(m.Name, node) || strings.EqualFold(m.Host, node) || (h.Local && m.Local) {
				h.Member = m.Name
				break
			}
		}
		v.HeldLocally = v.HeldLocally || h.Local
		v.Holders = append(v.Holders, h)
	}
	return v, nil
}
