#!/usr/bin/env bash
# Installs what building, testing and the demo lab need on a Debian 12 machine (root).
# Idempotent: a second run installs nothing.
set -euo pipefail
pkgs=(postgresql-15 postgresql-client-15 patroni etcd-server etcd-client iproute2 procps util-linux hyperfine curl jq lintian libcap2-bin)
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
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's postgresql-common creates a default cluster; the lab never uses it, stop it if running.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done
fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
go mod download
