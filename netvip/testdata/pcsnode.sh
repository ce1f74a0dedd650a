#!/bin/sh
# Runs one Pacemaker node for the pcs integration test: corosync and
# pacemakerd in the foreground, in the network namespace and the private
# mount namespace this script is started in
#   ip netns exec NS unshare --mount --propagation private pcsnode.sh DIR
# Pacemaker's state directories are compiled in, so DIR's copies are bind
# mounted over them; /run and /dev/shm (libqb's ring buffers) are private
# tmpfs. Nothing outside DIR is written, and everything else goes away with
# the namespace. DIR holds corosync.conf and, optionally, cib.xml.
set -eu
d=$1
for sub in lib-pacemaker/cib lib-pacemaker/pengine lib-pacemaker/blackbox lib-pacemaker/cores lib-corosync log-pacemaker; do
	mkdir -p "$d/$sub"
done
if [ -f "$d/cib.xml" ]; then
	cp "$d/cib.xml" "$d/lib-pacemaker/cib/cib.xml"
	chmod 600 "$d/lib-pacemaker/cib/cib.xml"
fi
chown -R hacluster:haclient "$d/lib-pacemaker" "$d/log-pacemaker"
chmod 750 "$d/lib-pacemaker/cib"
mount --bind "$d/lib-pacemaker" /var/lib/pacemaker
mount --bind "$d/lib-corosync" /var/lib/corosync
mount --bind "$d/log-pacemaker" /var/log/pacemaker
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mkdir -p /run/crm /run/resource-agents
chown hacluster:haclient /run/crm
/usr/sbin/corosync -f -c "$d/corosync.conf" >"$d/corosync.log" 2>&1 &
# pacemakerd gives up when corosync is not up yet.
i=0
until /usr/sbin/corosync-cfgtool -s >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "corosync did not start" >&2; exit 1; }
	sleep 0.1
done
exec /usr/sbin/pacemakerd -f >"$d/pacemaker.log" 2>&1
