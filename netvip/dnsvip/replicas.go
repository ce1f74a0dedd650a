package dnsvip

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ReplicaRecord is the optional second name (dns.replica_name): every
// replica that serves reads adds its own address to one RRset and takes it
// out again when it stops being one, so that clients resolving the name
// spread their read-only connections over the replicas (what Consul's
// service DNS gives Patroni users). Each node touches only its own value:
// Join adds it (an RR already there is left as it is, RFC 2136 3.4.2.2),
// Leave deletes it; the other nodes' values are never part of an update.
type ReplicaRecord struct {
	b    *Backend
	name string
}

// Replicas returns the backend's replica record, nil when replica_name is
// not set.
func (b *Backend) Replicas() *ReplicaRecord {
	if b.replicaName == "" {
		return nil
	}
	return &ReplicaRecord{b: b, name: b.replicaName}
}

// Name is the record's canonical name.
func (r *ReplicaRecord) Name() string { return r.name }

// Join adds this node's address to the replica RRset.
func (r *ReplicaRecord) Join(ctx context.Context) error {
	start := time.Now()
	me, err := r.b.self()
	if err != nil {
		return fmt.Errorf("dns record %s: %w", r.name, err)
	}
	m := new(dns.Msg).SetUpdate(r.b.zone)
	m.Insert([]dns.RR{addrRR(r.name, me, r.b.ttl)})
	if err := r.b.update(ctx, m); err != nil {
		return fmt.Errorf("adding this node's %s to dns record %s (server %s): %w", me, r.name, r.b.server, err)
	}
	r.b.log.Info().Str("action", "replica join").Str("dns_name", r.name).Str("address", me.String()).Dur("took_ms", time.Since(start)).Msg("this replica's address added to the replica record")
	return nil
}

// Leave deletes this node's address from the replica RRset; the other
// replicas' values stay.
func (r *ReplicaRecord) Leave(ctx context.Context) error {
	start := time.Now()
	me, err := r.b.self()
	if err != nil {
		return fmt.Errorf("dns record %s: %w", r.name, err)
	}
	m := new(dns.Msg).SetUpdate(r.b.zone)
	m.Remove([]dns.RR{addrRR(r.name, me, 0)})
	if err := r.b.update(ctx, m); err != nil {
		return fmt.Errorf("removing this node's %s from dns record %s (server %s): %w", me, r.name, r.b.server, err)
	}
	r.b.log.Info().Str("action", "replica leave").Str("dns_name", r.name).Str("address", me.String()).Dur("took_ms", time.Since(start)).Msg("this node's address removed from the replica record")
	return nil
}

// Member reports whether the server serves this node's address in the
// replica RRset now, and the whole set.
func (r *ReplicaRecord) Member(ctx context.Context) (bool, []netip.Addr, error) {
	me, err := r.b.self()
	if err != nil {
		return false, nil, fmt.Errorf("dns record %s: %w", r.name, err)
	}
	vals, _, err := r.b.lookupName(ctx, r.name, rrtype(me))
	if err != nil {
		return false, nil, fmt.Errorf("dns record %s on %s: %w", r.name, r.b.server, err)
	}
	return slices.Contains(vals, me), vals, nil
}

// checkReplicaName: the replica name lies below the zone and differs from
// the primary's name.
func checkReplicaName(name, primary, zone string) error {
	if !validName(name) || !strings.HasSuffix(name, "."+zone) {
		return fmt.Errorf("dnsvip: replica name %q is not a name below zone %q", name, zone)
	}
	if name == primary {
		return fmt.Errorf("dnsvip: replica name %q is the primary's name", name)
	}
	return nil
}
