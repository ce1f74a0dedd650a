package netvip

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ArpAnnounceWarning returns a warning when the kernel may send ARP
// requests with the VIP as sender address from ifname: with arp_announce
// below 2 (the kernel uses the maximum of the "all" and per-interface
// values), a demoted node that still has a session bound to the VIP pulls
// clients back to itself when its link returns (seen in the lab: 8–40 s of
// outage; none with arp_announce=2). "" means the setting is right or
// cannot be read (not Linux, no such interface).
func ArpAnnounceWarning(ifname string) string {
	return arpAnnounceWarning("/proc/sys/net/ipv4/conf", ifname)
}

// arpIgnoreLevel is max(all, ifname) of net.ipv4.conf.*.arp_ignore under
// root, or -1 when it cannot be read.
func arpIgnoreLevel(root, ifname string) int {
	if ifname == "" || strings.ContainsAny(ifname, "/") {
		return -1
	}
	level := -1
	for _, conf := range []string{"all", ifname} {
		b, err := os.ReadFile(filepath.Join(root, conf, "arp_ignore"))
		if err != nil {
			return -1
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return -1
		}
		level = max(level, v)
	}
	return level
}

func arpAnnounceWarning(root, ifname string) string {
	if ifname == "" || strings.ContainsAny(ifname, "/") {
		return ""
	}
	level := -1
	for _, conf := range []string{"all", ifname} {
		b, err := os.ReadFile(filepath.Join(root, conf, "arp_announce"))
		if err != nil {
			return ""
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return ""
		}
		level = max(level, v)
	}
	if level >= 2 {
		return ""
	}
	return fmt.Sprintf("net.ipv4.conf.%s.arp_announce is %d: set it to 2 (pghook install does) so a demoted node never announces the VIP as its ARP sender", ifname, level)
}
