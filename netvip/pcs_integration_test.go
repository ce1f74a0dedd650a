//go:build integration

package netvip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
	"github.com/rs/zerolog"
)

// A real two-node Pacemaker 2.1 + corosync 3 cluster, started by the test
// without systemd: each node is a network namespace (eth0 of a veth pair,
// 192.0.2.11 and .12/24, corosync over knet on them) plus a private mount
// namespace in which testdata/pcsnode.sh bind mounts the node's own
// /var/lib/pacemaker, /var/lib/corosync and /var/log/pacemaker from a
// temporary directory. Nothing on the host is written outside that
// directory; killing the namespaces' processes and deleting the network
// namespaces removes everything. The VIP is a real ocf:heartbeat:IPaddr2
// resource (192.0.2.100/24 on eth0), so the test also sees the address
// appear in the namespace of the node that holds it.

const pcsVIP = "192.0.2.100"

type pcsNode struct {
	name, ns, dir string
	cmd           *exec.Cmd
}

// nsRunner runs the Pacemaker tools inside a node's namespaces.
type nsRunner struct{ pid int }

func (r nsRunner) Run(ctx context.Context, name string, args ...string) (string, string, error) {
	return ExecRunner{}.Run(ctx, "nsenter", append([]string{"-t", strconv.Itoa(r.pid), "-n", "-m", "--", name}, args...)...)
}

func (n *pcsNode) runner() nsRunner { return nsRunner{pid: n.cmd.Process.Pid} }

// ctl runs a command on the node and fails the test if it fails.
func (n *pcsNode) ctl(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, _, err := n.runner().Run(ctx, name, args...)
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	return out
}

func requirePacemaker(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	for _, b := range []string{"/usr/sbin/pcs", "/usr/sbin/corosync", "/usr/sbin/pacemakerd", "/usr/sbin/crm_resource", "/usr/sbin/cibadmin", "/usr/bin/nsenter", "/usr/bin/unshare", "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("%s not installed (apt-get install --no-install-recommends pacemaker pacemaker-cli-utils pcs corosync resource-agents)", b)
		}
	}
}

const pcsCorosyncConf = `totem {
  version: 2
  cluster_name: pghooktest
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: 1000
}
logging {
  to_stderr: yes
  to_logfile: no
  to_syslog: no
}
quorum {
  provider: corosync_votequorum
  two_node: 1
}
nodelist {
  node {
    name: pcs1
    nodeid: 1
    ring0_addr: 192.0.2.11
  }
  node {
    name: pcs2
    nodeid: 2
    ring0_addr: 192.0.2.12
  }
}
`

// The initial CIB: no fencing (there is nothing to fence), dc-deadtime 2s
// instead of 20s so the cluster forms quickly, and the stickiness pcs
// cluster setup gives new clusters, without which a resource may move back
// once the move constraint is gone.
const pcsCIB = `<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="2s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
    <rsc_defaults>
      <meta_attributes id="build-resource-defaults">
        <nvpair id="build-resource-stickiness" name="resource-stickiness" value="1"/>
      </meta_attributes>
    </rsc_defaults>
  </configuration>
  <status/>
</cib>
`

func startPcsCluster(t *testing.T) []*pcsNode {
	t.Helper()
	script, err := filepath.Abs("testdata/pcsnode.sh")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	var nodes []*pcsNode
	for i := 1; i <= 2; i++ {
		n := &pcsNode{name: fmt.Sprintf("pcs%d", i), ns: fmt.Sprintf("pghpcs-%s-%d", id, i)}
		run(t, "ip", "netns", "add", n.ns)
		t.Cleanup(func() {
			// Everything the node started runs in its namespace.
			out, _ := exec.Command("ip", "netns", "pids", n.ns).Output()
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			if n.cmd != nil {
				n.cmd.Wait()
			}
			exec.Command("ip", "netns", "del", n.ns).Run()
		})
		dir, err := os.MkdirTemp("", "pghook-pcs-")
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o755)
		n.dir = dir
		t.Cleanup(func() {
			if t.Failed() {
				for _, f := range []string{"corosync.log", "pacemaker.log"} {
					if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
						t.Logf("%s %s (tail):\n%s", n.name, f, tail(string(b), 40))
					}
				}
			}
			os.RemoveAll(dir)
		})
		nodes = append(nodes, n)
	}
	run(t, "ip", "-n", nodes[0].ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", nodes[1].ns)
	for i, n := range nodes {
		run(t, "ip", "-n", n.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", n.ns, "addr", "add", fmt.Sprintf("192.0.2.%d/24", 11+i), "dev", "eth0")
		run(t, "ip", "-n", n.ns, "link", "set", "eth0", "up")
		if err := os.WriteFile(filepath.Join(n.dir, "corosync.conf"), []byte(pcsCorosyncConf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, "cib.xml"), []byte(pcsCIB), 0o644); err != nil {
			t.Fatal(err)
		}
		n.cmd = exec.Command("ip", "netns", "exec", n.ns, "unshare", "--mount", "--propagation", "private", script, n.dir)
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 60*time.Second, "both pacemaker nodes online", func() error {
		for _, n := range nodes {
			out, _, err := n.runner().Run(context.Background(), "crm_mon", "-1")
			if err != nil {
				return err
			}
			if !strings.Contains(out, "Online: [ pcs1 pcs2 ]") || strings.Contains(out, "Current DC: NONE") {
				return fmt.Errorf("%s: crm_mon -1:\n%s", n.name, out)
			}
		}
		return nil
	})
	return nodes
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestPcsIntegration(t *testing.T) {
	requirePacemaker(t)
	start := time.Now()
	nodes := startPcsCluster(t)
	t.Logf("cluster of %d nodes up in %s", len(nodes), time.Since(start).Round(time.Millisecond))
	n1 := nodes[0]
	n1.ctl(t, "pcs", "resource", "create", "vip", "ocf:heartbeat:IPaddr2", "ip="+pcsVIP, "cidr_netmask=24", "nic=eth0",
		"op", "monitor", "interval=10s", "--wait=30")

	backends := map[string]*Pcs{}
	for _, n := range nodes {
		// Settings.Node empty: the backend asks crm_node -n.
		b, err := NewPcs(Settings{Backend: "pcs", Resource: "vip"}, zerolog.New(zerolog.NewTestWriter(t)), WithPcsRunner(n.runner()))
		if err != nil {
			t.Fatal(err)
		}
		backends[n.name] = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	where := func() string {
		t.Helper()
		on, err := backends["pcs1"].locate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(on, ",")
	}
	noCliConstraints := func() {
		t.Helper()
		out := n1.ctl(t, "cibadmin", "--query", "--scope", "constraints")
		if strings.Contains(out, "cli-") {
			t.Errorf("cli-* constraint left behind:\n%s", out)
		}
	}
	// hasVIP tells whether the address is on the node's eth0.
	hasVIP := func(n *pcsNode) bool {
		return strings.Contains(run(t, "ip", "-n", n.ns, "-4", "addr", "show", "dev", "eth0"), pcsVIP+"/24")
	}
	hold := func(n *pcsNode) time.Duration {
		t.Helper()
		s := time.Now()
		if err := backends[n.name].Hold(ctx); err != nil {
			t.Fatalf("Hold on %s: %v", n.name, err)
		}
		d := time.Since(s)
		if got := where(); got != n.name {
			t.Fatalf("after Hold on %s the resource runs on %q", n.name, got)
		}
		if !hasVIP(n) {
			t.Errorf("after Hold on %s, %s is not on its eth0", n.name, pcsVIP)
		}
		for _, o := range nodes {
			if o != n && hasVIP(o) {
				t.Errorf("after Hold on %s, %s is also on %s", n.name, pcsVIP, o.name)
			}
		}
		noCliConstraints()
		st, err := backends[n.name].Status(ctx)
		if err != nil || !st.Held {
			t.Errorf("Status on %s after Hold = %+v, %v", n.name, st, err)
		}
		return d
	}
	byName := map[string]*pcsNode{"pcs1": nodes[0], "pcs2": nodes[1]}
	here := byName[where()]
	if here == nil {
		t.Fatalf("vip runs on %q", where())
	}
	other := nodes[0]
	if other == here {
		other = nodes[1]
	}

	// Status on both.
	if st, err := backends[other.name].Status(ctx); err != nil || st.Held || !strings.Contains(st.Detail, "runs on "+here.name+", not on this node ("+other.name+")") {
		t.Errorf("Status on %s = %+v, %v", other.name, st, err)
	}

	// Already here: nothing moves, fast.
	t.Logf("Hold where it runs (%s): %s", here.name, hold(here))
	// Move it over, and back.
	t.Logf("Hold moving it %s -> %s: %s", here.name, other.name, hold(other))
	t.Logf("Hold moving it %s -> %s: %s", other.name, here.name, hold(here))

	// Release changes nothing, on the holder and elsewhere.
	for _, n := range nodes {
		if err := backends[n.name].Release(ctx); err != nil {
			t.Errorf("Release on %s: %v", n.name, err)
		}
	}
	if got := where(); got != here.name {
		t.Errorf("after Release the resource runs on %q, want %s (unchanged)", got, here.name)
	}
	noCliConstraints()

	// A leftover cli-prefer from a killed Hold: the next Hold removes it.
	n1.ctl(t, "cibadmin", "--create", "--scope", "constraints", "--xml-text",
		`<rsc_location id="cli-prefer-vip" rsc="vip" role="Started" node="`+here.name+`" score="INFINITY"/>`)
	if st, err := backends[here.name].Status(ctx); err != nil || !strings.Contains(st.Detail, "leftover constraints pin it: cli-prefer-vip") {
		t.Errorf("Status with a leftover = %+v, %v", st, err)
	}
	hold(here)

	// A leftover cli-ban on the next primary (from an old Release-by-ban,
	// or an admin's pcs resource ban) does not stop Hold: crm_resource
	// --move drops a ban on its destination, and nothing is left behind.
	n1.ctl(t, "crm_resource", "--ban", "--resource", "vip", "--node", other.name)
	t.Logf("Hold onto a banned node %s: %s", other.name, hold(other))
	here, other = other, here

	// A move that times out after pcs added its cli-prefer (pcs --wait=1
	// runs out while the cluster is still busy): Hold fails, and the
	// cli-prefer pcs left behind is removed.
	b := backends[other.name]
	b.moveTimeout = 2 * time.Second
	s := time.Now()
	err := b.Hold(ctx)
	t.Logf("timed-out Hold: %s: %v", time.Since(s).Round(time.Millisecond), err)
	if err == nil {
		t.Log("the move finished within the 1s pcs wait: the timeout path was not exercised")
	}
	noCliConstraints()
	testenv.WaitFor(t, 30*time.Second, "the cluster to settle", func() error {
		_, _, err := n1.runner().Run(ctx, "crm_resource", "--wait", "--timeout=5s")
		return err
	})
	here = byName[where()]
	other = nodes[0]
	if other == here {
		other = nodes[1]
	}

	// A move that cannot succeed (an admin's location constraint keeps the
	// resource off other): Hold fails within its bound and leaves no cli-*
	// constraint, and the admin's constraint stays.
	n1.ctl(t, "cibadmin", "--create", "--scope", "constraints", "--xml-text",
		`<rsc_location id="location-vip-avoid" rsc="vip" node="`+other.name+`" score="-INFINITY"/>`)
	b = backends[other.name]
	b.moveTimeout = 10 * time.Second
	s = time.Now()
	err = b.Hold(ctx)
	t.Logf("failing Hold: %s: %v", time.Since(s).Round(time.Millisecond), err)
	if err == nil {
		t.Error("Hold on an avoided node succeeded")
	}
	if d := time.Since(s); d > 25*time.Second {
		t.Errorf("failing Hold took %s", d)
	}
	noCliConstraints()
	if out := n1.ctl(t, "cibadmin", "--query", "--scope", "constraints"); !strings.Contains(out, `rsc="vip"`) {
		t.Errorf("the admin's location constraint is gone:\n%s", out)
	}
	if got := where(); got != here.name {
		t.Errorf("after the failed Hold the resource runs on %q, want %s", got, here.name)
	}
	if st, err := b.Status(ctx); err != nil || st.Held {
		t.Errorf("Status after the failed Hold = %+v, %v", st, err)
	}
}
