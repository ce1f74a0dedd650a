package netvip

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const (
	capNetAdmin = 12 // CAP_NET_ADMIN: add and delete addresses
	capNetRaw   = 13 // CAP_NET_RAW: packet sockets for announcements and probes
)

// HaveCaps reports whether this process has CAP_NET_ADMIN (admin), needed
// to add and delete the VIP, and CAP_NET_RAW (raw), needed to announce and
// probe it, in its effective set (CapEff in /proc/self/status). It reports
// false for both when the file cannot be read.
func HaveCaps() (admin, raw bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, false
	}
	defer f.Close()
	eff, err := capEff(f)
	if err != nil {
		return false, false
	}
	return eff&(1<<capNetAdmin) != 0, eff&(1<<capNetRaw) != 0
}

// capEff returns the CapEff mask of a /proc/PID/status file.
func capEff(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing CapEff %q: %w", strings.TrimSpace(v), err)
		}
		return m, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no CapEff line")
}
