#!/usr/bin/env bash
# Installs what building, testing and the demo lab need on a Debian 12 machine (root).
# Idempotent: a second run installs nothing.
set -euo pipefail
pkgs=(postgresql-15 postgresql-client-15 patroni etcd-server etcd-client iproute2 procps util-linux hyperfine curl jq lintian libcap2-bin python3-psycopg2 zstd lz4 gzip pigz isal
  prometheus prometheus-node-exporter
  bind9 bind9-dnsutils  # bind9: the dns VIP backend's tests and benchmark run named in a namespace
  arping iputils-ping vip-manager)  # the benchmarks' comparisons (make bench-vip, bench-vip-lab)
# The Pacemaker stack is only for the pcs VIP backend's integration test, which starts
# its own two-node cluster in namespaces. PGHOOK_PACEMAKER=0 skips it.
if [[ ${PGHOOK_PACEMAKER:-1} == 1 ]]; then
  pkgs+=(pacemaker pacemaker-cli-utils pcs corosync resource-agents)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Never let a package start a service on this host (corosync, pacemaker, etcd,
  # postgresql, named): the tests start their own, in namespaces or on loopback.
  guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
  fi
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
  [[ -n $guard ]] && rm -f /usr/sbin/policy-rc.d
  if [[ -d /run/systemd/system ]]; then
    for unit in corosync pacemaker pcsd etcd prometheus prometheus-node-exporter named; do systemctl disable --now "$unit" >/dev/null 2>&1 || true; done
  fi
fi
# Debian's postgresql-common creates a default cluster; the lab never uses it, stop it if running.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done
fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null; then
  echo "deps: Go >= 1.24 is needed (Debian 12's golang is older): install it in /usr/local/go" >&2
  exit 1
fi
go mod download
