//go:build integration

package main

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
)

// TestVIPPrivilegeSplit proves the privilege design end to end with the
// real binary and kernel: a callback running as postgres, with no
// capabilities, moves the VIP through the file-capability helper; the
// helper refuses VIP settings from anywhere but a root-owned config.
func TestVIPPrivilegeSplit(t *testing.T) {
	dir, pgh, helper, gid := privilegedInstall(t, "pghook-vip-")
	ns := fmt.Sprintf("pghcli-%d", rand.Intn(1e6))
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	mustRun(t, "ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	mustRun(t, "ip", "-n", ns, "link", "set", "d1", "up")
	mustRun(t, "ip", "-n", ns, "link", "set", "d0", "up")

	roster := filepath.Join(dir, "home")
	os.Mkdir(roster, 0o755)
	os.Chown(roster, 0, gid)
	os.Chmod(roster, 0o775)
	conf := filepath.Join(dir, "pghook.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`pgtab: %s/.pgtab
vip_helper: %s
scopes:
  s:
    vip: {backend: netlink, address: 192.0.2.10/24, interface: d0, label: vip, takeover_wait: -1s, announcements: 1}
`, roster, helper)), 0o640)
	os.Chown(conf, 0, gid)

	asPG := func(args ...string) (string, int) {
		out, errOut, code := runAsPostgres(t, ns, roster, args...)
		return out + errOut, code
	}
	hasVIP := func() bool {
		out, _ := exec.Command("ip", "-n", ns, "-4", "addr", "show", "dev", "d0").CombinedOutput()
		return strings.Contains(string(out), "192.0.2.10/24")
	}

	if out, code := asPG(pgh, "--config", conf, "callback", "on_role_change", "master", "s"); code != 0 || !hasVIP() {
		t.Fatalf("unprivileged callback did not take the VIP (exit %d):\n%s", code, out)
	}
	out, _ := exec.Command("ip", "-n", ns, "-4", "addr", "show", "dev", "d0").CombinedOutput()
	if !strings.Contains(string(out), "d0:vip") || !strings.Contains(string(out), "noprefixroute") {
		t.Fatalf("label/noprefixroute missing:\n%s", out)
	}
	if out, code := asPG(pgh, "--config", conf, "vip", "status", "--scope", "s"); code != 0 || !strings.Contains(out, "held=true") {
		t.Fatalf("status: %d %s", code, out)
	}
	if out, code := asPG(pgh, "--config", conf, "callback", "on_stop", "master", "s"); code != 0 || hasVIP() {
		t.Fatalf("on_stop did not release the VIP (exit %d):\n%s", code, out)
	}
	// The helper refuses settings from its caller, and non-VIP commands.
	if out, code := asPG(helper, "up", "--scope", "s", "--config", conf, "--vip-address", "192.0.2.99/24"); code != 2 || !strings.Contains(out, "refused") {
		t.Fatalf("helper accepted a caller's address (exit %d):\n%s", code, out)
	}
	if out, code := asPG(helper, "callback", "on_start", "master", "s"); code != 2 {
		t.Fatalf("helper ran a non-VIP command (exit %d):\n%s", code, out)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	os.Chown(conf, uid, gid)
	if out, code := asPG(helper, "up", "--scope", "s", "--config", conf); code != 2 || !strings.Contains(out, "owned by root") || hasVIP() {
		t.Fatalf("helper trusted a config postgres owns (exit %d):\n%s", code, out)
	}
	// The unprivileged pghook itself holds no capability.
	if out, _ := asPG("/bin/grep", "CapEff", "/proc/self/status"); !strings.Contains(out, "0000000000000000") {
		t.Fatalf("postgres has capabilities: %s", out)
	}
	_ = time.Second
}

// privilegedInstall lays pghook and its capability helper into a fresh
// directory others may enter, as the package does: the helper root:postgres
// 0750 with cap_net_admin,cap_net_raw. It skips without root, setcap or a
// postgres user.
func privilegedInstall(t *testing.T, prefix string) (dir, pgh, helper string, gid int) {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("setcap"); err != nil {
		t.Skip("setcap missing (libcap2-bin)")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user")
	}
	gid, _ = strconv.Atoi(u.Gid)
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	pgh = filepath.Join(dir, "pghook")
	helper = filepath.Join(dir, "pghook-vip")
	copyFile(t, bin, pgh, 0o755)
	copyFile(t, bin, helper, 0o750)
	os.Chown(helper, 0, gid)
	mustRun(t, "setcap", "cap_net_admin,cap_net_raw+ep", helper)
	return dir, pgh, helper, gid
}

// runAsPostgres runs args as postgres in network namespace ns, with a bare
// environment and HOME home, as Patroni would run a callback.
func runAsPostgres(t *testing.T, ns, home string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "env", "-i", "PATH=/usr/bin:/bin", "HOME=" + home}, args...)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(to, mode)
}
