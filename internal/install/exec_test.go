package install

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInstallExec(t *testing.T) {
	o := baseOpts(t)
	o.ExecHold = SplitCommand("/usr/local/bin/vip-api assign --zone a")
	o.ExecRelease = SplitCommand("/usr/local/bin/vip-api unassign")
	o.ExecCheck = SplitCommand("/usr/local/bin/vip-api is-mine")
	o.ExecTimeout, o.ExecAddress = 3*time.Second, "203.0.113.10"
	run(t, o)
	root := o.Root
	cfg := installedConfig(t, root)
	v := cfg.Scopes["main"].VIP
	if v.Backend != "exec" || v.Address != "203.0.113.10" || v.Interface != "" || v.DNS.Name != "" ||
		!slices.Equal(v.Exec.Hold, []string{"/usr/local/bin/vip-api", "assign", "--zone", "a"}) ||
		!slices.Equal(v.Exec.Release, []string{"/usr/local/bin/vip-api", "unassign"}) ||
		!slices.Equal(v.Exec.Check, []string{"/usr/local/bin/vip-api", "is-mine"}) || v.Exec.Timeout != 3*time.Second {
		t.Fatalf("vip section: %+v", v)
	}
	checkUnitsWithoutHelper(t, root, "exec")
	// Idempotent; then switching to netlink drops the exec keys.
	if res, _ := run(t, o); res.Changes != 0 {
		t.Errorf("second run: %d change(s), want 0", res.Changes)
	}
	o2 := baseOpts(t)
	o2.Root, o2.VIP = root, VIPList{"10.0.0.100/24"}
	run(t, o2)
	cfg = installedConfig(t, root)
	if cfg.Scopes["main"].VIP.Backend != "netlink" || len(cfg.Scopes["main"].VIP.Exec.Hold) != 0 {
		t.Fatalf("after --vip: %+v", cfg.Scopes["main"].VIP)
	}
}

func TestInstallExecFrom(t *testing.T) {
	o, err := ReadFrom(strings.NewReader("scope: main\nexec-hold: [/bin/vip, hold]\nexec-release: [/bin/vip, release]\nexec-check: [/bin/vip, check]\nexec-timeout: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.ExecHold, []string{"/bin/vip", "hold"}) || o.ExecTimeout != 2*time.Second {
		t.Fatalf("ReadFrom: %+v %v", o.ExecHold, o.ExecTimeout)
	}
}

func TestInstallExecBadInput(t *testing.T) {
	hold, rel, chk := []string{"/bin/vip", "hold"}, []string{"/bin/vip", "release"}, []string{"/bin/vip", "check"}
	all := func(o *Options) { o.ExecHold, o.ExecRelease, o.ExecCheck = hold, rel, chk }
	checkBadInput(t, []badInput{
		{"exec-hold", func(o *Options) { o.VIPBackend = "exec" }},
		{"exec-release", func(o *Options) { o.ExecRelease = rel }},
		{"exec-timeout", func(o *Options) { o.ExecTimeout = time.Second }},
		{"exec-release", func(o *Options) { o.ExecHold, o.ExecCheck = hold, chk }},
		{"exec-check", func(o *Options) { o.ExecHold, o.ExecRelease = hold, rel }},
		{"exec-hold", func(o *Options) { all(o); o.ExecHold = []string{"vip", "hold"} }},
		{"exec-check", func(o *Options) { all(o); o.ExecCheck = []string{"/bin/../vip"} }},
		{"exec-timeout", func(o *Options) { all(o); o.ExecTimeout = time.Hour }},
		{"exec-address", func(o *Options) { all(o); o.ExecAddress = "not-an-ip" }},
		{"exec-hold", func(o *Options) { all(o); o.VIP = VIPList{"10.0.0.100/24"} }},
		{"vip-backend", func(o *Options) { all(o); o.VIPBackend = "netlink" }},
	})
}
