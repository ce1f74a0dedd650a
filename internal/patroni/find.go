package patroni

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FindConfig returns the patroni.yml of scope: the configured path if set;
// else the config file of the calling Patroni (the parent process, whose
// command line names it: Patroni does not pass it to callbacks); else the
// first existing /etc/patroni/<scope>.yml, /etc/patroni/patroni.yml,
// /etc/patroni/config.yml. It returns "" when none is found.
func FindConfig(scope, configured string, ppid int) string {
	if configured != "" {
		return configured
	}
	if p := configFromProcess(ppid); p != "" {
		return p
	}
	for _, p := range []string{"/etc/patroni/" + scope + ".yml", "/etc/patroni/patroni.yml", "/etc/patroni/config.yml"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// configFromProcess reads /proc/PID/cmdline and returns the YAML file a
// Patroni process was started with, or "".
func configFromProcess(pid int) string {
	if pid <= 1 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
	isPatroni := false
	for _, a := range args {
		if filepath.Base(a) == "patroni" {
			isPatroni = true
		}
	}
	if !isPatroni {
		return ""
	}
	cwd, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	for i := len(args) - 1; i > 0; i-- {
		a := args[i]
		if strings.HasSuffix(a, ".yml") || strings.HasSuffix(a, ".yaml") {
			if !filepath.IsAbs(a) && cwd != "" {
				a = filepath.Join(cwd, a)
			}
			return a
		}
	}
	return ""
}
