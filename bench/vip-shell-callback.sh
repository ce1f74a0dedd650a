#!/bin/sh
# The seed's intended VIP route, as a Patroni callback would run it on the new primary:
# add the address, then one gratuitous ARP. Debian's arping is Habets' arping: -U alone
# uses the interface's primary address as sender (peers keep their stale entry for the
# VIP); -S VIP makes sender IP = target IP = VIP, a real gratuitous ARP request.
# arping then waits ~1 s for a reply that never comes and exits 1: ignored.
VIP=${VIP:-192.0.2.100} PREFIX=${PREFIX:-24} IFACE=${IFACE:-eth0}
ip addr add "$VIP/$PREFIX" dev "$IFACE" || exit 1
arping -q -U -S "$VIP" -i "$IFACE" -c 1 "$VIP" || true
