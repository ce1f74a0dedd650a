// Package privilege decides what a process may trust when it runs with
// more privilege than its caller gave it (the VIP helper: a copy of pghook
// with file capabilities that anything running as postgres can execute).
//
// Two rules, both taken from the kernel rather than from anything the
// caller controls (argv[0], flags, the environment):
//
//   - Elevated: the process gained privilege at exec — the kernel set
//     AT_SECURE (set-user-ID, set-group-ID, or file capabilities gained by
//     a non-root user), or it holds permitted capabilities that are not
//     ambient (inherited) while its real uid is not root.
//   - ReadTrusted: a file is trusted only when it, and every directory on
//     its path, is owned by root and writable by root alone, checked on the
//     open descriptors (no symlink followed, no check-then-open race), is a
//     regular file on neither procfs nor sysfs, and is small.
package privilege

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Elevated reports whether this process runs with privilege its caller did
// not hand it: the kernel set AT_SECURE for this exec, or it holds
// permitted capabilities beyond its ambient set while its real uid is not
// root. Such a process must decide nothing from argv[0], flags or
// environment variables its caller chose.
func Elevated() bool {
	if secure, err := atSecure(); err != nil || secure {
		// An auxiliary vector that cannot be read is treated as secure:
		// failing closed costs a refused command, failing open a host.
		return true
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return true
	}
	defer f.Close()
	st, err := parseStatus(f)
	if err != nil {
		return true
	}
	return elevated(st)
}

// procStatus holds the fields of /proc/self/status that Elevated reads.
type procStatus struct {
	realUID        int
	permitted, amb uint64
}

func elevated(st procStatus) bool {
	return st.realUID != 0 && st.permitted&^st.amb != 0
}

// atSecureTag is AT_SECURE in <elf.h>: non-zero when the kernel ran this
// program in secure-execution mode.
const atSecureTag = 23

func atSecure() (bool, error) {
	auxv, err := unix.Auxv()
	if err != nil {
		return false, fmt.Errorf("reading the auxiliary vector: %w", err)
	}
	for _, kv := range auxv {
		if kv[0] == atSecureTag {
			return kv[1] != 0, nil
		}
	}
	return false, nil
}

// parseStatus reads Uid, CapPrm and CapAmb from a /proc/PID/status file.
func parseStatus(r io.Reader) (procStatus, error) {
	st := procStatus{realUID: -1}
	var havePrm bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Uid":
			fields := strings.Fields(val)
			if len(fields) == 0 {
				return st, fmt.Errorf("empty Uid line")
			}
			uid, err := strconv.Atoi(fields[0])
			if err != nil {
				return st, fmt.Errorf("parsing Uid %q: %w", val, err)
			}
			st.realUID = uid
		case "CapPrm", "CapAmb":
			m, err := strconv.ParseUint(val, 16, 64)
			if err != nil {
				return st, fmt.Errorf("parsing %s %q: %w", key, val, err)
			}
			if key == "CapPrm" {
				st.permitted, havePrm = m, true
			} else {
				st.amb = m
			}
		}
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	if st.realUID < 0 || !havePrm {
		return st, fmt.Errorf("no Uid or CapPrm line")
	}
	return st, nil
}
