package install

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/netvip"
)

// checkExec validates the exec backend's options: --exec-hold selects it
// and needs --exec-release and --exec-check, each a command whose first
// word is an absolute path (no shell: the words are the argument list).
func (o *Options) checkExec() error {
	if len(o.ExecHold) == 0 {
		for flag, set := range map[string]bool{"exec-release": len(o.ExecRelease) > 0, "exec-check": len(o.ExecCheck) > 0,
			"exec-timeout": o.ExecTimeout != 0, "exec-address": o.ExecAddress != ""} {
			if set {
				return usage(flag, "needs --exec-hold (the command that makes this node hold the VIP)")
			}
		}
		if o.VIPBackend == "exec" {
			return usage("exec-hold", "is required with --vip-backend exec (with --exec-release and --exec-check)")
		}
		return nil
	}
	switch {
	case len(o.VIP) > 0:
		return usage("exec-hold", "with --vip: pick one (an address on an interface, or commands that move it)")
	case o.DNSName != "":
		return usage("exec-hold", "with --dns-name: pick one backend")
	}
	if o.VIPBackend == "" {
		o.VIPBackend = "exec"
	}
	if o.VIPBackend != "exec" {
		return usage("vip-backend", "%q with --exec-hold: want exec", o.VIPBackend)
	}
	switch {
	case len(o.ExecRelease) == 0:
		return usage("exec-release", "is required with --exec-hold (the command that makes this node let the VIP go)")
	case len(o.ExecCheck) == 0:
		return usage("exec-check", "is required with --exec-hold (exit 0: this node holds the VIP, 1: it does not)")
	}
	if o.ExecAddress != "" {
		if _, err := netip.ParseAddr(o.ExecAddress); err != nil {
			if _, perr := netip.ParsePrefix(o.ExecAddress); perr != nil {
				return usage("exec-address", "%q is not an IP address or CIDR", o.ExecAddress)
			}
		}
	}
	v := config.VIP{Settings: netvip.Settings{Backend: "exec", Address: o.ExecAddress},
		Exec: config.Exec{Hold: o.ExecHold, Release: o.ExecRelease, Check: o.ExecCheck, Timeout: o.ExecTimeout}}
	if err := v.Validate(); err != nil {
		flag := "exec-hold"
		for key, f := range map[string]string{"exec.release": "exec-release", "exec.check": "exec-check", "exec.timeout": "exec-timeout", "address": "exec-address"} {
			if strings.HasPrefix(err.Error(), key+" ") || strings.HasPrefix(err.Error(), key+":") {
				flag = f
			}
		}
		return usage(flag, "%v", err)
	}
	return nil
}

// SplitCommand splits a command given as one flag value into its argument
// list at white space (no quoting, no shell): an argument with a space
// needs pghook.yaml's list form or a wrapper script.
func SplitCommand(s string) []string { return strings.Fields(s) }

// watchDropIn is the reconciler unit's drop-in. Backends dns and exec need
// no capabilities: the watcher runs as pghook itself (the VIP helper serves
// the netlink address only). A dns record naming a netlink VIP is kept by
// the VIP helper's own watcher, as the packaged unit runs it: it holds the
// address and points the record in one process, at the leader key's
// write; the drop-in says so explicitly, so that one written for the
// unprivileged watcher is replaced on the next install.
func watchDropIn(o *Options) (path string, data []byte) {
	kind := o.VIPBackend
	if o.DNSName != "" {
		kind = "dns"
	}
	path = filepath.Join(o.SystemdDir, vipWatchName(o.Scope)+".d", "pghook-"+kind+".conf")
	if len(o.VIP) > 0 {
		data = []byte(fmt.Sprintf("# Written by pghook install: a dns record naming the VIP is kept by the VIP\n"+
			"# helper's watcher, which holds the address and points the record in one process.\n[Service]\nExecStart=\nExecStart=%s watch --scope %%i\n", o.VIPHelper))
		return path, data
	}
	data = []byte(fmt.Sprintf("# Written by pghook install: a %s watcher needs no capabilities, and the VIP\n"+
		"# helper serves the netlink address only.\n[Service]\nExecStart=\nExecStart=%s vip watch --scope %%i\n", kind, o.PghookBin))
	return path, data
}
