package netvip

import (
	"context"
	"fmt"
)

// Refuse makes this host go on refusing connections to the VIP after it
// lets go of the address: a local route for the VIP on lo, so a SYN that
// a client still sends here (its neighbour entry not yet moved to the new
// holder) is answered by a reset instead of being dropped. It does not
// answer ARP for the VIP — only when arp_ignore is 1 or more on the
// interface (the kernel then replies only for addresses on the link), so
// the new holder's probe finds nobody and clients move on its announcement.
// IPv4 only. ok false: not possible here (arp_ignore 0, IPv6), nothing done.
func (n *Netlink) Refuse(ctx context.Context) (ok bool, err error) {
	a := n.v.addr()
	if !a.Is4() || n.sys.arpIgnore(n.v.ifname) < 1 {
		return false, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := n.sys.localRoute(a, true); err != nil {
		return false, fmt.Errorf("refusing for vip %s: %w", a, err)
	}
	return true, nil
}

// Unrefuse removes what Refuse added; nothing there is success.
func (n *Netlink) Unrefuse(ctx context.Context) error {
	a := n.v.addr()
	if !a.Is4() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := n.sys.localRoute(a, false); err != nil {
		return fmt.Errorf("ending the refusal for vip %s: %w", a, err)
	}
	return nil
}
