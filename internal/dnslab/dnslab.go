// Package dnslab runs BIND 9 (Debian's bind9) as the authoritative primary
// of one test zone with a TSIG update-policy, in its own network namespace
// joined to the root namespace by a veth pair, for the dns backend's
// integration tests and benchmark. Everything it creates carries the
// prefix pghdns- and lives in 10.251.78.0/24; callers hold the shared
// root lock (flock /tmp/pghook-root.lock).
package dnslab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Fixed names and addresses.
const (
	NetNS      = "pghdns-srv"
	HostIf     = "pghdns-h" // root namespace end
	ServerIf   = "pghdns-s"
	HostAddr   = "10.251.78.11" // on HostIf; a second node is .12
	ServerAddr = "10.251.78.53"
	Zone       = "pglab.test."
	Name       = "primary.pglab.test."
	// ReplicaName is the read-only record (dns.replica_name).
	ReplicaName = "replicas.pglab.test."
	KeyName     = "pglab-hook"
	OtherKey    = "other-key" // valid on the server, granted nothing
)

// Lab is a running BIND.
type Lab struct {
	Dir          string // working directory (removed by Close)
	KeyFile      string // the granted key, root:root 0600, for the client
	OtherKeyFile string // a valid key the policy grants nothing
	Server       string // ServerAddr:53

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	log  *bytes.Buffer
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Start sets up the namespace and the zone and starts named. Close undoes
// all of it.
func Start() (*Lab, error) {
	if _, err := exec.LookPath("named"); err != nil {
		if _, err2 := os.Stat("/usr/sbin/named"); err2 != nil {
			return nil, fmt.Errorf("named not installed (apt-get install bind9 bind9-dnsutils, or make deps): %w", err)
		}
	}
	Teardown()
	for _, c := range [][]string{
		{"ip", "netns", "add", NetNS},
		{"ip", "link", "add", HostIf, "type", "veth", "peer", "name", ServerIf, "netns", NetNS},
		{"ip", "addr", "add", HostAddr + "/24", "dev", HostIf},
		{"ip", "link", "set", HostIf, "up"},
		{"ip", "-n", NetNS, "addr", "add", ServerAddr + "/24", "dev", ServerIf},
		{"ip", "-n", NetNS, "link", "set", ServerIf, "up"},
		{"ip", "-n", NetNS, "link", "set", "lo", "up"},
	} {
		if err := run(c[0], c[1:]...); err != nil {
			Teardown()
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("/var/tmp", "pghdns-")
	if err != nil {
		Teardown()
		return nil, err
	}
	l := &Lab{Dir: dir, Server: ServerAddr + ":53"}
	if err := l.writeConfig(); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.StartServer(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) writeConfig() error {
	bind, err := user.Lookup("bind")
	if err != nil {
		return fmt.Errorf("user bind (from the bind9 package): %w", err)
	}
	uid, _ := strconv.Atoi(bind.Uid)
	gid, _ := strconv.Atoi(bind.Gid)
	etc, zones, runDir, client := filepath.Join(l.Dir, "etc"), filepath.Join(l.Dir, "zones"), filepath.Join(l.Dir, "run"), filepath.Join(l.Dir, "client")
	if err := os.Chmod(l.Dir, 0o755); err != nil {
		return err
	}
	for _, d := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{{etc, 0o750, 0, gid}, {zones, 0o770, uid, gid}, {runDir, 0o770, uid, gid}, {client, 0o700, 0, 0}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chown(d.path, d.uid, d.gid); err != nil {
			return err
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
	}
	for _, k := range []string{KeyName, OtherKey} {
		out, err := exec.Command("tsig-keygen", "-a", "hmac-sha256", k).Output()
		if err != nil {
			return fmt.Errorf("tsig-keygen: %w", err)
		}
		srv := filepath.Join(etc, k+".key")
		if err := os.WriteFile(srv, out, 0o640); err != nil {
			return err
		}
		if err := os.Chown(srv, 0, gid); err != nil {
			return err
		}
		cli := filepath.Join(client, k+".key")
		if err := os.WriteFile(cli, out, 0o600); err != nil {
			return err
		}
	}
	l.KeyFile, l.OtherKeyFile = filepath.Join(client, KeyName+".key"), filepath.Join(client, OtherKey+".key")
	conf := fmt.Sprintf(`include "%[1]s/%[3]s.key";
include "%[1]s/%[4]s.key";
options {
	directory "%[2]s";
	pid-file "%[5]s/named.pid";
	session-keyfile "%[5]s/session.key";
	listen-on port 53 { %[6]s; };
	listen-on-v6 { none; };
	recursion no; allow-query { any; }; allow-transfer { none; };
	dnssec-validation no; notify no;
};
controls { };
zone "%[7]s" {
	type primary; file "zone.db";
	update-policy { grant %[3]s name %[8]s A AAAA; grant %[3]s name %[9]s A AAAA; };
};
`, etc, zones, KeyName, OtherKey, runDir, ServerAddr, strings.TrimSuffix(Zone, "."), Name, ReplicaName)
	zone := fmt.Sprintf("$TTL 30\n@ IN SOA ns1.%[1]s hostmaster.%[1]s (1 3600 600 86400 30)\n@ IN NS ns1.%[1]s\nns1 IN A %[2]s\n", Zone, ServerAddr)
	for _, f := range []struct {
		path, text string
		mode       os.FileMode
		uid, gid   int
	}{{filepath.Join(etc, "named.conf"), conf, 0o640, 0, gid}, {filepath.Join(zones, "zone.db"), zone, 0o640, uid, gid}} {
		if err := os.WriteFile(f.path, []byte(f.text), f.mode); err != nil {
			return err
		}
		if err := os.Chown(f.path, f.uid, f.gid); err != nil {
			return err
		}
	}
	return nil
}

// StartServer starts named (again) and waits until it answers for the zone.
func (l *Lab) StartServer() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd != nil {
		return errors.New("named already runs")
	}
	l.log = new(bytes.Buffer)
	cmd := exec.Command("ip", "netns", "exec", NetNS, "/usr/sbin/named", "-g", "-4", "-u", "bind", "-c", filepath.Join(l.Dir, "etc", "named.conf"))
	cmd.Stdout, cmd.Stderr = l.log, l.log
	if err := cmd.Start(); err != nil {
		return err
	}
	l.cmd, l.done = cmd, make(chan error, 1)
	go func() { l.done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := &dns.Client{Net: "tcp", Timeout: 200 * time.Millisecond}
		if r, _, err := c.Exchange(new(dns.Msg).SetQuestion(Zone, dns.TypeSOA), l.Server); err == nil && r.Rcode == dns.RcodeSuccess {
			return nil
		}
		select {
		case err := <-l.done:
			l.cmd = nil
			return fmt.Errorf("named exited (%v): %s", err, l.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("named did not answer within 10s: %s", l.log.String())
}

// StopServer stops named and waits for it to exit.
func (l *Lab) StopServer() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd == nil {
		return
	}
	_ = l.cmd.Process.Signal(os.Interrupt)
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.done
	}
	l.cmd = nil
}

// Log is what named wrote so far.
func (l *Lab) Log() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.log == nil {
		return ""
	}
	return l.log.String()
}

// Lookup asks the server for name's A records.
func (l *Lab) Lookup(ctx context.Context, name string) ([]string, error) {
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = false
	r, _, err := c.ExchangeContext(ctx, m, l.Server)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out, nil
}

// Close stops named and removes the namespace, the veth pair and Dir.
func (l *Lab) Close() {
	l.StopServer()
	Teardown()
	if l.Dir != "" {
		os.RemoveAll(l.Dir)
	}
}

// Teardown removes what Start creates in the root namespace, if present.
func Teardown() {
	_ = exec.Command("ip", "link", "del", HostIf).Run()
	_ = exec.Command("ip", "netns", "del", NetNS).Run()
}
