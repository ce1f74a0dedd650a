#!/usr/bin/env bash
# Installs the built .deb on this machine, checks what a user relies on, removes it and
# checks nothing is left behind. Root only; used by `make test` (target deb-test).
# It refuses to run where a pghook package is already installed: it would remove it.
set -euo pipefail
deb=${1:?usage: test-deb.sh dist/pghook_VERSION_ARCH.deb}
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }
if dpkg-query -W -f='${Status}' pghook 2>/dev/null | grep -q "install ok installed"; then
  echo "deb-test: pghook is already installed here; not touching it (skipped)" >&2
  exit 0
fi
trap 'apt-get purge -y -qq pghook >/dev/null 2>&1 || true' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null || fail "apt-get install ./$deb"
/usr/bin/pghook version | grep -q '^pghook ' || fail "pghook version"
for n in callback.sh create_replica.sh post_init.sh; do
  [[ $(readlink -f /usr/lib/pghook/$n) == /usr/bin/pghook ]] || fail "/usr/lib/pghook/$n does not lead to /usr/bin/pghook"
done
getcap /usr/lib/pghook/pghook-vip | grep -q 'cap_net_admin,cap_net_raw=ep' || fail "pghook-vip lacks its file capabilities: $(getcap /usr/lib/pghook/pghook-vip)"
[[ $(stat -c '%U:%G %a' /usr/lib/pghook/pghook-vip) == "root:postgres 750" ]] || fail "pghook-vip owner/mode: $(stat -c '%U:%G %a' /usr/lib/pghook/pghook-vip)"
[[ -z $(getcap /usr/bin/pghook) ]] || fail "/usr/bin/pghook must hold no capability"
[[ -f /lib/systemd/system/pghook-vip-watch@.service ]] || fail "reconciler unit missing"
for f in pghook.rules.yml pghook-dashboard.json; do
  [[ -f /usr/share/pghook/prometheus/$f ]] || fail "/usr/share/pghook/prometheus/$f missing"
done
promtool check rules /usr/share/pghook/prometheus/pghook.rules.yml >/dev/null || fail "shipped rules do not pass promtool check rules"
grep -q '^RuntimeDirectory=pghook$' /lib/systemd/system/pghook-vip-watch@.service || fail "reconciler unit makes no /run/pghook"
# The installed helper takes its privilege from the kernel, not from the name it is run
# under: as postgres, renamed to pghook, it still refuses every flag but --scope.
if out=$(cd / && runuser -u postgres -- bash -c 'exec -a pghook /usr/lib/pghook/pghook-vip vip up --scope x --vip-backend netlink --vip-address 192.0.2.77/24 --vip-interface lo' 2>&1); then
  fail "pghook-vip under the name pghook accepted VIP flags: $out"
fi
grep -q '"--vip-backend" is refused' <<<"$out" || fail "pghook-vip under the name pghook: $out"
man -w pghook >/dev/null 2>&1 || [[ -f /usr/share/man/man1/pghook.1.gz ]] || fail "man page missing"
# The seed's callback path works for postgres and never shows the password.
out=$(cd / && runuser -u postgres -- env PGHOOK_PGTAB=/tmp/deb-test.pgtab /usr/lib/pghook/callback.sh s n /d 0.0.0.0:5432 /b sekrit on_start replica s 2>&1) || fail "callback.sh as postgres: $out"
{ cat /tmp/deb-test.pgtab; echo "$out"; } | grep -q sekrit && fail "password leaked"
rm -f /tmp/deb-test.pgtab /tmp/deb-test.pgtab.lock
apt-get remove -y -qq pghook >/dev/null || fail "apt-get remove"
[[ ! -e /usr/bin/pghook && ! -e /usr/lib/pghook/pghook-vip ]] || fail "binaries left after remove"
[[ ! -e /lib/systemd/system/pghook-vip-watch@.service ]] || fail "unit left after remove"
apt-get purge -y -qq pghook >/dev/null || fail "apt-get purge"
[[ ! -e /etc/pghook && ! -e /var/lib/pghook ]] || fail "/etc/pghook or /var/lib/pghook left after purge"
trap - EXIT
echo "deb-test: install, capabilities, entry points, remove and purge OK"
