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
	"syscall"
	"testing"

	"github.com/pghook/pghook/internal/testenv"
)

// TestVIPPrivilegeSplit proves the privilege design end to end with the
// real binary and kernel: a callback running as postgres, with no
// capabilities, moves the VIP through the file-capability helper; the
// helper refuses VIP settings from anywhere but a root-owned config.
func TestVIPPrivilegeSplit(t *testing.T) {
	dir, pgh, helper, gid := privilegedInstall(t, "pghook-vip-")
	ns := vipTestNS(t)

	roster := filepath.Join(dir, "home")
	os.Mkdir(roster, 0o755)
	os.Chown(roster, 0, gid)
	os.Chmod(roster, 0o775)
	conf := helperConf(t, ns, gid, fmt.Sprintf(`pgtab: %s/.pgtab
vip_helper: %s
run_dir: %s
scopes:
  s:
    patroni_config: %s
    vip: {backend: netlink, address: 192.0.2.10/24, interface: d0, label: vip, takeover_wait: -1s, announcements: 2, announce_interval: 100ms}
`, roster, helper, runDirFor(t), patroniYml(t, dir, gid)))

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
	// The helper's announcer takes what to announce from the config alone
	// (the detached process a hold starts runs exactly this).
	if out, code := asPG(helper, "announce", "--scope", "s"); code != 0 {
		t.Fatalf("helper announce: exit %d %s", code, out)
	}
	if out, code := asPG(pgh, "--config", conf, "callback", "on_stop", "master", "s"); code != 0 || hasVIP() {
		t.Fatalf("on_stop did not release the VIP (exit %d):\n%s", code, out)
	}
	// The helper refuses settings from its caller, and non-VIP commands.
	if out, code := asPG(helper, "up", "--scope", "s", "--vip-address", "192.0.2.99/24"); code != 2 || !strings.Contains(out, "refused") {
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
	if out, code := asPG(helper, "up", "--scope", "s"); code != 2 || !strings.Contains(out, "owned by uid") || hasVIP() {
		t.Fatalf("helper trusted a config postgres owns (exit %d):\n%s", code, out)
	}
	// The unprivileged pghook itself holds no capability.
	if out, _ := asPG("/bin/grep", "CapEff", "/proc/self/status"); !strings.Contains(out, "0000000000000000") {
		t.Fatalf("postgres has capabilities: %s", out)
	}
}

// TestVIPHelperAttacks runs, as an attacker — a user in group postgres, as
// PostgreSQL's own COPY ... TO PROGRAM would be — every known way to get
// more than "the configured VIP, with a DCS check" out of the helper. Each
// must fail with a clear error and leave the interface as it was.
func TestVIPHelperAttacks(t *testing.T) {
	dir, pgh, helper, gid := privilegedInstall(t, "pghook-attack-")
	ns := vipTestNS(t)
	// The "host's own address", which an attacker would like to delete.
	mustRun(t, "ip", "-n", ns, "addr", "add", "192.0.2.5/24", "dev", "d0")
	good := fmt.Sprintf(`run_dir: %s
scopes:
  s:
    vip: {backend: netlink, address: 192.0.2.10/24, interface: d0, takeover_wait: -1s, announcements: 1}
`, runDirFor(t))
	conf := helperConf(t, ns, gid, good)
	addrs := func() string {
		out, _ := exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", "d0").CombinedOutput()
		return string(out)
	}
	before := addrs()
	link := filepath.Join(dir, "vip-tool") // a name that is not the helper's
	os.Remove(link)
	if err := os.Symlink(helper, link); err != nil {
		t.Fatal(err)
	}
	yamlArgv0 := "scopes: {evil: {vip: {backend: netlink, address: 192.0.2.66/24, interface: d0}}}\n#/pghook-vip"

	tests := []struct {
		name  string
		env   []string
		argv  []string
		setup func(t *testing.T) // changes the fixed config file; undone after
		want  string             // in the output
	}{
		{name: "F1 argv[0] says pghook: delete the host's address", argv: []string{"/bin/bash", "-c", `exec -a pghook "$0" vip down --scope x --vip-backend netlink --vip-address 192.0.2.5/24 --vip-interface d0`, helper}, want: `"--vip-backend" is refused`},
		{name: "F1 argv[0] says pghook: add any address", argv: []string{"/bin/bash", "-c", `exec -a pghook "$0" vip up --scope x --vip-backend netlink --vip-address 192.0.2.77/24 --vip-interface d0`, helper}, want: "refused"},
		{name: "F1 argv[0] says pghook: another command", argv: []string{"/bin/bash", "-c", `exec -a pghook "$0" callback on_start master s`, helper}, want: "not a VIP helper command"},
		{name: "F1 a symlink with another name", argv: []string{link, "vip", "up", "--scope", "s", "--vip-address", "192.0.2.77/24"}, want: "refused"},
		{name: "F1 PGHOOK_ variables", env: []string{"PGHOOK_VIP_ADDRESS=192.0.2.77/24", "PGHOOK_VIP_INTERFACE=d0", "PGHOOK_CONFIG=/proc/self/environ", "PGHOOK_PATRONI_CONFIG=/nonexistent"}, argv: []string{"/bin/bash", "-c", `exec -a pghook "$0" vip up --scope s`, helper}, want: "only with a DCS check"},
		{name: "F2 --config /proc/self/cmdline", argv: []string{helper, "up", "--scope", "s", "--config", "/proc/self/cmdline"}, want: `"--config" is refused`},
		{name: "F2 YAML in argv[0]", argv: []string{"/bin/bash", "-c", `exec -a "$1" "$0" up --scope evil`, helper, yamlArgv0}, want: "no key scopes.evil"},
		{name: "F3 the config path is a symlink", setup: func(t *testing.T) { swapConf(t, conf, func() error { return os.Symlink("/etc/passwd", conf) }) }, argv: []string{helper, "up", "--scope", "s"}, want: "symbolic link"},
		{name: "F3 the config path is a FIFO", setup: func(t *testing.T) {
			swapConf(t, conf, func() error { return exec.Command("mkfifo", "-m", "0644", conf).Run() })
		}, argv: []string{helper, "up", "--scope", "s"}, want: "not a regular file"},
		{name: "F4 --patroni-config to a missing file", argv: []string{helper, "up", "--scope", "s", "--patroni-config", "/nonexistent.yml"}, want: `"--patroni-config" is refused`},
		{name: "F4 no patroni.yml: no VIP without a DCS check", argv: []string{helper, "up", "--scope", "s"}, want: "only with a DCS check"},
		{name: "F7 unbounded announcements", argv: []string{helper, "announce", "--scope", "s", "--rounds", "2000", "--interval", "0"}, want: `"--rounds" is refused`},
		{name: "F7 announcements from the config are bounded too", setup: func(t *testing.T) {
			swapConf(t, conf, func() error {
				return writeRootFile(conf, gid, strings.Replace(good, "announcements: 1", "announcements: 2000", 1))
			})
		}, argv: []string{helper, "announce", "--scope", "s"}, want: "announcements 2000"},
		{name: "F8 --config /dev/zero", argv: []string{helper, "up", "--scope", "s", "--config", "/dev/zero"}, want: `"--config" is refused`},
		{name: "F8 a huge config", setup: func(t *testing.T) {
			swapConf(t, conf, func() error { return writeRootFile(conf, gid, good+strings.Repeat("#", 2<<20)) })
		}, argv: []string{helper, "up", "--scope", "s"}, want: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			out, code := runAsAttacker(t, ns, gid, tt.env, tt.argv...)
			if code == 0 || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, output %q; want a failure naming %q", code, out, tt.want)
			}
			if got := addrs(); got != before {
				t.Errorf("the interface changed:\nbefore %s\nafter  %s", before, got)
			}
		})
	}
	// Control: the same attacker reaches the helper (so the refusals above
	// are the helper's), and postgres's own pghook stays capability-free.
	if out, code := runAsAttacker(t, ns, gid, nil, helper, "status", "--scope", "s"); code != 0 || !strings.Contains(out, `"held":false`) {
		t.Fatalf("control: helper status as the attacker: exit %d %s", code, out)
	}
	if out, code := runAsAttacker(t, ns, gid, nil, pgh, "version"); code != 0 {
		t.Fatalf("control: pghook version: exit %d %s", code, out)
	}
}

// TestEnvAsRootIgnoresAForeignBinDir: root's `pghook env` reads a roster
// postgres writes; a BIN_DIR there that postgres controls never reaches
// root's PATH.
func TestEnvAsRootIgnoresAForeignBinDir(t *testing.T) {
	testenv.RequireRoot(t)
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	dir := t.TempDir()
	evil := filepath.Join(dir, "bin")
	os.Mkdir(evil, 0o755)
	os.Chown(evil, uid, 0)
	tests := []struct {
		binDir   string
		wantPath bool
	}{
		{binDir: evil},
		{binDir: "/usr/bin", wantPath: true},
	}
	for _, tt := range tests {
		roster := filepath.Join(dir, ".pgtab")
		os.WriteFile(roster, []byte("SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,ROLE\ns,n1,/d,127.0.0.1:5432,"+tt.binDir+",master\n"), 0o640)
		os.Chown(roster, uid, 0)
		cmd := exec.Command(bin, "--pgtab", roster, "env", "--no-query", "s")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root"}
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("env: %v %s", err, e.String())
		}
		gotPath := strings.Contains(o.String(), tt.binDir+":")
		if gotPath != tt.wantPath {
			t.Errorf("bin_dir %s: PATH exported %t, want %t\n%s\n%s", tt.binDir, gotPath, tt.wantPath, o.String(), e.String())
		}
		if !tt.wantPath && !strings.Contains(e.String(), "PATH left as it is") {
			t.Errorf("bin_dir %s left out without saying so: %s", tt.binDir, e.String())
		}
	}
}

// vipTestNS makes a network namespace with a veth pair d0/d1, both up.
func vipTestNS(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("pghcli-%d", rand.Intn(1e6))
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	mustRun(t, "ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	mustRun(t, "ip", "-n", ns, "link", "set", "d1", "up")
	mustRun(t, "ip", "-n", ns, "link", "set", "d0", "up")
	return ns
}

// helperConf writes the helper's fixed config as ns sees it
// (/etc/netns/<ns>/pghook/pghook.yaml, bind-mounted over /etc/pghook by
// `ip netns exec`), root:postgres 0640, and returns its path.
func helperConf(t *testing.T, ns string, gid int, content string) string {
	t.Helper()
	// `ip netns exec` bind-mounts only over a directory that exists; it is
	// left in place (an empty, root-owned directory; the package owns it).
	if err := os.MkdirAll("/etc/pghook", 0o755); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join("/etc/netns", ns, "pghook")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/etc/netns", ns)) })
	conf := filepath.Join(d, "pghook.yaml")
	if err := writeRootFile(conf, gid, content); err != nil {
		t.Fatal(err)
	}
	return conf
}

func writeRootFile(p string, gid int, content string) error {
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		return err
	}
	if err := os.Chown(p, 0, gid); err != nil {
		return err
	}
	return os.Chmod(p, 0o640)
}

// swapConf replaces the config with what make creates, and restores it.
func swapConf(t *testing.T, conf string, make func() error) {
	t.Helper()
	saved, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(conf)
	gid := int(fi.Sys().(*syscall.Stat_t).Gid)
	os.Remove(conf)
	if err := make(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(conf)
		if err := writeRootFile(conf, gid, string(saved)); err != nil {
			t.Error(err)
		}
	})
}

// runDirFor is a run_dir for one test: root-owned, 0755, below /run.
func runDirFor(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/run", "pghook-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// patroniYml writes a patroni.yml for scope s whose DCS does not answer
// (loopback is down in a fresh namespace): the helper has its DCS check,
// and an unreachable DCS does not block a hold Patroni decided.
func patroniYml(t *testing.T, dir string, gid int) string {
	t.Helper()
	p := filepath.Join(dir, "patroni.yml")
	if err := os.WriteFile(p, []byte("scope: s\nname: n1\netcd3: {hosts: 127.0.0.1:1}\nrestapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\npostgresql: {data_dir: /nonexistent, listen: 127.0.0.1:5432}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chown(p, 0, gid)
	return p
}

// runAsAttacker runs argv in ns as uid nobody with group postgres (so it
// may execute the helper), a bare environment plus env.
func runAsAttacker(t *testing.T, ns string, gid int, env []string, argv ...string) (string, int) {
	t.Helper()
	args := []string{"netns", "exec", ns, "setpriv", "--reuid=nobody", "--regid=nogroup", "--groups=" + strconv.Itoa(gid), "env", "-i", "PATH=/usr/bin:/bin", "HOME=/"}
	args = append(args, env...)
	cmd := exec.Command("ip", append(args, argv...)...)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
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
