package clusterstatus

import (
	"context"
	"net/netip"
)

// DNSView says who a dns-backend name resolves to on its authoritative
// server: each address is matched to the member whose host it is.
type DNSView struct {
	Name string
	// Resolve asks the server ((*dnsvip.Backend).Resolve).
	Resolve func(ctx context.Context) ([]netip.Addr, error)
	// Self is this host's address for the record (invalid: unknown).
	Self netip.Addr
}

// Look implements VIPView.
func (d DNSView) Look(ctx context.Context, ms []Member) (*VIP, error) {
	v := &VIP{Backend: "dns", Address: d.Name, Holders: []Holder{}}
	addrs, err := d.Resolve(ctx)
	if err != nil {
		return v, err
	}
	for _, a := range addrs {
		h := Holder{IP: a.String(), Local: d.Self.IsValid() && a == d.Self}
		for _, m := range ms {
			if ip, err := netip.ParseAddr(m.Host); (err == nil && ip.Unmap() == a) || (h.Local && m.Local) {
				h.Member = m.Name
				break
			}
		}
		v.HeldLocally = v.HeldLocally || h.Local
		v.Holders = append(v.Holders, h)
	}
	return v, nil
}

// ExecView asks the exec backend's check command whether this host holds
// the VIP; other hosts cannot be seen from here.
type ExecView struct {
	Address string
	Held    func(ctx context.Context) (bool, error)
}

// Look implements VIPView.
func (e ExecView) Look(ctx context.Context, _ []Member) (*VIP, error) {
	v := &VIP{Backend: "exec", Address: e.Address, Holders: []Holder{}}
	held, err := e.Held(ctx)
	if err != nil {
		return v, err
	}
	if held {
		v.HeldLocally = true
		v.Holders = append(v.Holders, Holder{Local: true})
	}
	return v, nil
}
