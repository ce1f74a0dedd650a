package dnsvip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// NamedVIP holds a floating address (backend netlink, directly or through
// the VIP helper) and points a DNS name at it: a cluster over several
// subnets has one VIP per subnet (vip.addresses), and the name tells
// clients which subnet's VIP the primary holds. Record is a Backend whose
// Target is that VIP.
//
// The order keeps clients off an address that no longer answers:
//
//   - Hold: the address (probe, add, first announcement), then the record.
//     A refused or failed hold of the address leaves the record alone, so
//     the record is moved only under the address's own DCS guard.
//   - Release: the record first (with its prerequisite that it names
//     exactly this VIP), then the address. Nodes of one subnet share its
//     VIP, so only the node that holds the address deletes the record: a
//     replica's release must not take the name from its subnet's primary.
//     A failed record update does not keep the address: it is released
//     all the same and both errors are returned. Nor does a slow one: the
//     address waits at most RecordWait for the record.
//   - ReleasePromptly (netvip.PromptReleaser): the address, then the
//     record. A node that cannot read the DCS is likely cut off from the
//     DNS server too, and the new leader may take its VIP at any moment:
//     the address must not wait on an update that cannot arrive.
//
// It needs no capabilities itself: the record is updated by the calling
// process (a callback, `pghook vip watch`), the address by VIP.
type NamedVIP struct {
	VIP    netvip.Backend // the address: netlink, or the VIP helper running it
	Record *Backend       // the name, with Settings.Target the VIP
	// Here, when set, tells whether the address is on this node without
	// asking VIP (netvip.OnInterface: no capability needed, so no run of
	// the VIP helper before each release and at each status).
	Here func() (bool, error)
	// RecordWait bounds how long a release waits for the record's update
	// before it releases the address, and how long Status waits for the
	// record (0: DefaultRecordWait).
	RecordWait time.Duration
	Log        zerolog.Logger

	mu sync.Mutex
	// seen: when this process last saw the record name the VIP (its own
	// update, or an answered read); zero after a release, a failed update
	// or a read that showed another value.
	seen time.Time
}

// TrustUnanswered is how long after the record was last seen naming the
// VIP an unanswered read of it still counts as held (NamedVIP.Status):
// Patroni's default ttl, within which an isolated primary demotes. Past
// it, Status is an error again and a reconciler re-takes the VIP, which
// re-points a record that changed while the server was out of reach.
const TrustUnanswered = 30 * time.Second

// saw records whether the record was just seen naming the VIP.
func (n *NamedVIP) saw(names bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seen = time.Time{}
	if names {
		n.seen = time.Now()
	}
}

// trusted: the record was seen naming the VIP within TrustUnanswered.
func (n *NamedVIP) trusted() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.seen.IsZero() && time.Since(n.seen) < TrustUnanswered
}

// DefaultRecordWait is NamedVIP.RecordWait's default: an RFC 2136 update to
// a reachable server takes 1-26 ms in the lab.
const DefaultRecordWait = 250 * time.Millisecond

var (
	_ netvip.Backend        = (*NamedVIP)(nil)
	_ netvip.PromptReleaser = (*NamedVIP)(nil)
	_ netvip.PromptReleaser = refusingNamedVIP{}
)

// Name implements netvip.Backend.
func (n *NamedVIP) Name() string { return n.VIP.Name() + " named by dns " + n.Record.name }

// Hold implements netvip.Backend.
func (n *NamedVIP) Hold(ctx context.Context) error {
	if err := n.VIP.Hold(ctx); err != nil {
		return err
	}
	return n.pointRecord(ctx)
}

// HoldIf implements netvip.GatedHolder when the address backend does, so
// that a guard reads the DCS while the address is probed.
func (n *NamedVIP) HoldIf(ctx context.Context, gate netvip.Gate) error {
	gh, ok := n.VIP.(netvip.GatedHolder)
	if !ok {
		if err := gate(ctx); err != nil {
			return err
		}
		return n.Hold(ctx)
	}
	if err := gh.HoldIf(ctx, gate); err != nil {
		return err
	}
	return n.pointRecord(ctx)
}

func (n *NamedVIP) pointRecord(ctx context.Context) error {
	if err := n.Record.Hold(ctx); err != nil {
		n.saw(false)
		return fmt.Errorf("vip %s held, but its name is not: %w", n.Record.target, err)
	}
	n.saw(true)
	return nil
}

// addressStatus is whether the address is here: Here, else VIP's status.
func (n *NamedVIP) addressStatus(ctx context.Context) (netvip.Status, error) {
	if n.Here == nil {
		return n.VIP.Status(ctx)
	}
	held, err := n.Here()
	if err != nil {
		return netvip.Status{}, err
	}
	if held {
		return netvip.Status{Held: true, Detail: fmt.Sprintf("vip %s held", n.Record.target)}, nil
	}
	return netvip.Status{Detail: fmt.Sprintf("vip %s not held", n.Record.target)}, nil
}

// Release implements netvip.Backend.
func (n *NamedVIP) Release(ctx context.Context) error {
	start := time.Now()
	n.saw(false)
	st, serr := n.addressStatus(ctx)
	var recErr error
	recDone := make(chan error, 1)
	go func() { recDone <- n.releaseRecord(ctx, st, serr) }()
	wait := n.recordWait()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	pending := false
	select {
	case recErr = <-recDone:
	case <-timer.C:
		pending = true
		n.Log.Warn().Str("action", "vip release").Str("vip", n.Record.target.String()).Dur("waited", wait).
			Msg("dns record update not answered yet: releasing the address without waiting for it")
	}
	err := n.VIP.Release(ctx)
	if pending {
		recErr = <-recDone // bounded by the record's own timeout and ctx
	}
	return n.released(start, "named vip release incomplete", recErr, err)
}

// releaseRecord deletes the record when this node held the address (st,
// serr: the address's state before the release): nodes of one subnet
// share its VIP, and a replica's release must not take the name from its
// subnet's primary.
func (n *NamedVIP) releaseRecord(ctx context.Context, st netvip.Status, serr error) error {
	switch {
	case serr != nil:
		return fmt.Errorf("dns record %s left as it is: whether this node holds vip %s is unknown: %w", n.Record.name, n.Record.target, serr)
	case st.Held:
		return n.Record.Release(ctx)
	}
	n.Log.Debug().Str("action", "vip release").Str("vip", n.Record.target.String()).
		Msg("this node does not hold the vip: its dns record (if any) is the holder's")
	return nil
}

// released logs an incomplete release (msg) and returns both errors.
func (n *NamedVIP) released(start time.Time, msg string, recErr, addrErr error) error {
	if recErr != nil || addrErr != nil {
		n.Log.Warn().AnErr("record_err", recErr).AnErr("address_err", addrErr).Str("action", "vip release").
			Dur("took_ms", time.Since(start)).Msg(msg)
	}
	return errors.Join(recErr, addrErr)
}

// AddressHeld implements netvip.PromptReleaser: whether the address is
// here, without reading the record.
func (n *NamedVIP) AddressHeld(ctx context.Context) (bool, error) {
	st, err := n.addressStatus(ctx)
	return st.Held, err
}

func (n *NamedVIP) recordWait() time.Duration {
	if n.RecordWait <= 0 {
		return DefaultRecordWait
	}
	return n.RecordWait
}

// ReleasePromptly implements netvip.PromptReleaser: the address first,
// then, when this node held it, the record (still guarded by naming
// exactly this VIP), so no network exchange delays the address.
func (n *NamedVIP) ReleasePromptly(ctx context.Context) error {
	start := time.Now()
	n.saw(false)
	st, serr := n.addressStatus(ctx)
	err := n.VIP.Release(ctx)
	return n.released(start, "named vip prompt release incomplete", n.releaseRecord(ctx, st, serr), err)
}

// Status implements netvip.Backend. Held: the address is here and the
// record names exactly it. The address here with another record (or a read
// the server refused) is an error, so that a reconciler acts whichever way it
// decided; without the address the record is not this node's to judge
// (its subnet's primary may hold the same VIP), and Status reports not held.
//
// A record the server does not answer for within RecordWait (unreachable,
// silent, slow), which this process saw naming the VIP within
// TrustUnanswered, counts as held, its state unknown (in Detail): a
// reconciler's hold could not reach the server either, and a watcher cut
// off from the network must not spend its steps on the DNS server while
// its release waits. A record whose last update failed, or not seen
// naming the VIP lately, is an error, so the update is retried.
func (n *NamedVIP) Status(ctx context.Context) (netvip.Status, error) {
	st, err := n.addressStatus(ctx)
	if err != nil {
		return netvip.Status{}, err
	}
	if !st.Held {
		return st, nil
	}
	rctx, cancel := context.WithTimeout(ctx, n.recordWait())
	rs, err := n.Record.Status(rctx)
	cancel()
	if unanswered(err) && ctx.Err() == nil && n.trusted() {
		return netvip.Status{Held: true, Detail: st.Detail + "; its dns record unknown: " + err.Error()}, nil
	}
	if err != nil {
		n.saw(false)
		return netvip.Status{}, fmt.Errorf("vip %s is held here, but its dns record is not known to name it: %w", n.Record.target, err)
	}
	n.saw(rs.Held)
	if !rs.Held {
		return netvip.Status{}, fmt.Errorf("vip %s is held here, but its dns record does not name it: %s", n.Record.target, rs.Detail)
	}
	return netvip.Status{Held: true, Detail: st.Detail + "; " + rs.Detail}, nil
}

// refuser is hooks.Refuser (the netlink backend's refusal after letting
// go), which a NamedVIP over such an address backend passes on.
type refuser interface {
	Refuse(ctx context.Context) (bool, error)
	Unrefuse(ctx context.Context) error
}

// NameVIP returns the NamedVIP of vip, record and here (nil: ask vip). It refuses connections
// after letting go (hooks.Refuser) exactly when vip does: the netlink
// backend itself can, the VIP helper cannot.
func NameVIP(vip netvip.Backend, record *Backend, here func() (bool, error), log zerolog.Logger) netvip.Backend {
	n := &NamedVIP{VIP: vip, Record: record, Here: here, Log: log}
	if r, ok := vip.(refuser); ok {
		return refusingNamedVIP{n, r}
	}
	return n
}

// refusingNamedVIP is a NamedVIP whose address backend refuses connections
// after letting go.
type refusingNamedVIP struct {
	*NamedVIP
	r refuser
}

// Refuse passes the refusal on to the address backend.
func (n refusingNamedVIP) Refuse(ctx context.Context) (bool, error) { return n.r.Refuse(ctx) }

// Unrefuse ends the address backend's refusal.
func (n refusingNamedVIP) Unrefuse(ctx context.Context) error { return n.r.Unrefuse(ctx) }
