# shellcheck shell=bash
# subnets.sh — LAB_TOPOLOGY=two-subnet: the lab's nodes in two subnets joined by a router,
# one VIP per subnet, named in DNS. Sourced by lib.sh when the topology is two-subnet
# (its lab_* functions replace the single-bridge ones); lab.sh calls subnets_net_up,
# subnets_net_down and subnets_install_args where its own network and VIP steps would run.
#
#   subnet A 10.251.77.0/24, bridge pghbr0 (root .1): pgh-n1 .11, pgh-n2 .12; VIP .100
#   subnet B 10.251.79.0/24, bridge pghbr1 (root .1): pgh-n3 .13;             VIP .100
#   subnet C 10.251.76.0/24, bridge pghbr2 (root .1): pgh-cl .50 (client), pgh-dns .53 (BIND)
#   pgh-rt: the router, .254 in each subnet, IP forwarding on; every other namespace's
#   default route goes through it (the root namespace reaches each subnet on its bridge).
#
# pghook on every node: `pghook install --vip A-VIP/24 --vip B-VIP/24 --dns-name …`
# (backend netlink with vip.dns): the primary holds its own subnet's VIP through the VIP
# helper's watcher (`pghook-vip watch`, one per node), which also points
# primary.pglab.test. at that VIP; replicas.pglab.test. names the streaming replicas' own
# addresses. Implies LAB_VIP=dns (BIND); the arp sysctls are set as for netlink.

LAB_NET_B=10.251.79
LAB_NET_C=10.251.76
LAB_BRIDGE_B=pghbr1
LAB_BRIDGE_C=pghbr2
LAB_VIP_ADDR_B=$LAB_NET_B.100
# pg_hba's network (install --network): the three subnets.
LAB_HBA_NET=10.251.76.0/22
LAB_ROUTER=rt

lab_ip() {
	case $1 in
	n1) echo "$LAB_NET.11" ;;
	n2) echo "$LAB_NET.12" ;;
	n3) echo "$LAB_NET_B.13" ;;
	cl) echo "$LAB_NET_C.50" ;;
	dns) echo "$LAB_NET_C.53" ;;
	*) lab_log "unknown node '$1'"; return 1 ;;
	esac
}

# lab_subnet NODE — a, b or c.
lab_subnet() {
	case $1 in
	n1 | n2) echo a ;;
	n3) echo b ;;
	cl | dns) echo c ;;
	*) lab_log "unknown node '$1'"; return 1 ;;
	esac
}
subnets__net() { case $1 in a) echo "$LAB_NET" ;; b) echo "$LAB_NET_B" ;; c) echo "$LAB_NET_C" ;; esac; }
subnets__bridge() { case $1 in a) echo "$LAB_BRIDGE" ;; b) echo "$LAB_BRIDGE_B" ;; c) echo "$LAB_BRIDGE_C" ;; esac; }

# lab_subnet_vip NODE — the VIP of NODE's subnet (the one NODE takes as primary).
lab_subnet_vip() {
	case $(lab_subnet "$1") in
	a) echo "$LAB_VIP_ADDR" ;;
	b) echo "$LAB_VIP_ADDR_B" ;;
	*) return 1 ;;
	esac
}

# lab_vip_holders [VIP] — the nodes whose eth0 holds VIP (default: either subnet's VIP),
# space-separated.
lab_vip_holders() {
	local n out=() pat
	pat="inet (${1:-$LAB_VIP_ADDR|$LAB_VIP_ADDR_B})/"
	for n in "${LAB_NODES[@]}"; do
		if ip -n "$(lab_ns "$n")" -4 -o addr show dev "$LAB_VIP_IF" 2>/dev/null | grep -Eq "$pat"; then
			out+=("$n")
		fi
	done
	echo "${out[*]}"
}

# lab_vip_probe — from the client (subnet C), through the name's VIP.
lab_vip_probe() { lab_psql_client "$(lab_dns_answer)" -c 'select pg_is_in_recovery()'; }

# lab_dns_on_leader — the leader alone holds a VIP, it is its subnet's, and the primary's
# name names that VIP alone.
lab_dns_on_leader() {
	local l
	l=$(lab_leader) || return 1
	[[ $(lab_vip_holders) == "$l" ]] || return 1
	[[ $(lab_dns_answer) == "$(lab_subnet_vip "$l")" ]]
}

# lab_scope_vip_del S NODE — remove both VIPs (scope main) from NODE's eth0 by hand.
lab_scope_vip_del() {
	local ns vip
	ns=$(lab_ns "$2")
	[[ -e /run/netns/$ns ]] || return 0
	for vip in "$LAB_VIP_ADDR" "$LAB_VIP_ADDR_B"; do
		if ip -n "$ns" -4 -o addr show dev "$LAB_VIP_IF" 2>/dev/null | grep -q "inet $vip/"; then
			ip -n "$ns" addr del "$vip/$LAB_VIP_PREFIX" dev "$LAB_VIP_IF" 2>/dev/null || true
		fi
	done
}

# subnets_install_args — the VIP flags of every node's `pghook install`.
subnets_install_args() {
	printf '%s\n' --vip "$LAB_VIP_ADDR/$LAB_VIP_PREFIX" --vip "$LAB_VIP_ADDR_B/$LAB_VIP_PREFIX" \
		--vip-interface "$LAB_VIP_IF" --vip-label vip \
		--dns-name "$LAB_DNS_NAME" --dns-zone "$LAB_DNS_ZONE" --dns-server "$(lab_ip dns)" \
		--dns-replica-name "$LAB_DNS_REPLICAS" --tsig-key-file "/etc/pghook/tsig-$LAB_SCOPE.key"
}

subnets__ipv6_off() {
	# shellcheck disable=SC2016 # $f is for the inner sh
	ip netns exec "$1" sh -c 'for f in /proc/sys/net/ipv6/conf/default/disable_ipv6 /proc/sys/net/ipv6/conf/all/disable_ipv6; do [ -w $f ] && echo 1 > $f; done; true'
}

# subnets__link NS VETH PEER BRIDGE ADDR — VETH (root side, on BRIDGE) to PEER in NS, up,
# with ADDR/24.
subnets__link() {
	local ns=$1 veth=$2 peer=$3 br=$4 addr=$5
	if ! ip link show "$veth" >/dev/null 2>&1; then
		ip link add "$veth" type veth peer name "$peer" netns "$ns"
	fi
	disable_ipv6 "" "$veth"
	ip link set "$veth" master "$br"
	ip link set "$veth" up
	ip -n "$ns" addr replace "$addr/24" dev "$peer"
	ip -n "$ns" link set "$peer" up
}

subnets__router_links() { printf '%s\n' "a pghv-rta eth0" "b pghv-rtb eth1" "c pghv-rtc eth2"; }

# subnets_net_up — the three bridges, the router and every namespace on its subnet with a
# default route through the router. Idempotent.
subnets_net_up() {
	local s br n ns veth peer rt
	for s in a b c; do
		br=$(subnets__bridge "$s")
		ip link show "$br" >/dev/null 2>&1 || ip link add "$br" type bridge stp_state 0 forward_delay 0
		disable_ipv6 "" "$br"
		ip addr replace "$(subnets__net "$s").1/24" dev "$br"
		ip link set "$br" up
	done
	rt=$(lab_ns "$LAB_ROUTER")
	ns_exists "$rt" || ip netns add "$rt"
	ip -n "$rt" link set lo up
	subnets__ipv6_off "$rt"
	ip netns exec "$rt" sysctl -q -w net.ipv4.ip_forward=1
	while read -r s veth peer; do
		subnets__link "$rt" "$veth" "$peer" "$(subnets__bridge "$s")" "$(subnets__net "$s").254"
	done < <(subnets__router_links)
	for n in "${LAB_NODES[@]}" "$LAB_CLIENT" dns; do
		ns=$(lab_ns "$n")
		s=$(lab_subnet "$n")
		ns_exists "$ns" || ip netns add "$ns"
		ip -n "$ns" link set lo up
		subnets__ipv6_off "$ns"
		subnets__link "$ns" "$(lab_veth "$n")" eth0 "$(subnets__bridge "$s")" "$(lab_ip "$n")"
		ip -n "$ns" route replace default via "$(subnets__net "$s").254" dev eth0
	done
}

# subnets_net_down — every namespace (router included), its veths and the bridges.
subnets_net_down() {
	local n ns s veth peer br
	for n in "${LAB_NODES[@]}" "$LAB_CLIENT" dns "$LAB_ROUTER"; do
		ns=$(lab_ns "$n")
		if ns_exists "$ns"; then
			kill_ns_pids "$ns"
			ip netns del "$ns"
		fi
		veth=$(lab_veth "$n")
		if ip link show "$veth" >/dev/null 2>&1; then ip link del "$veth" 2>/dev/null || true; fi
	done
	while read -r s veth peer; do
		if ip link show "$veth" >/dev/null 2>&1; then ip link del "$veth" 2>/dev/null || true; fi
	done < <(subnets__router_links)
	for s in a b c; do
		br=$(subnets__bridge "$s")
		if ip link show "$br" >/dev/null 2>&1; then ip link del "$br"; fi
	done
}
