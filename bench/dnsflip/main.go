// Command dnsflip measures how fast the dns VIP backend moves the record:
// from the start of the new primary's callback to the authoritative server
// answering with its address, for `pghook callback on_role_change master`
// with `backend: dns` and for a shell callback running nsupdate (what
// dnscp does). BIND runs in namespace pghdns-srv (internal/dnslab). Root
// only; run it under the shared lock (make bench-dns).
//
//	dnsflip -pghook bin/pghook -trials 50 -out bench/results/dns
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/pghook/pghook/internal/dnslab"
	"github.com/pghook/pghook/netvip/dnsvip"
	"github.com/rs/zerolog"
)

const (
	newPrimary = dnslab.HostAddr // this host, on pghdns-h
	oldPrimary = "10.251.78.12"
)

type result struct {
	Tool    string    `json:"tool"`
	Command string    `json:"command"`
	FlipMS  []float64 `json:"flip_ms"` // callback start → server answers the new address
	ExitMS  []float64 `json:"exit_ms"` // callback start → callback exits
	Missed  int       `json:"missed"`  // trials where the record never flipped within 5 s
}

func main() {
	pghook := flag.String("pghook", "bin/pghook", "pghook binary")
	trials := flag.Int("trials", 50, "trials per tool")
	out := flag.String("out", "bench/results/dns", "output prefix (.md, .json)")
	flag.Parse()
	if err := run(*pghook, *trials, *out); err != nil {
		fmt.Fprintln(os.Stderr, "dnsflip:", err)
		os.Exit(1)
	}
}

const nsupdateScript = `#!/bin/sh
# What dnscp does on promotion: replace the A record with nsupdate.
[ "$2" = master ] || exit 0
nsupdate -k %s <<END
server %s 53
zone %s
update delete %s A
update add %s 1 A %s
send
END
`

func run(pghook string, trials int, out string) error {
	bin, err := filepath.Abs(pghook)
	if err != nil {
		return err
	}
	lab, err := dnslab.Start()
	if err != nil {
		return err
	}
	defer lab.Close()
	work := filepath.Join(lab.Dir, "client")
	conf := filepath.Join(work, "pghook.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`scopes:
  bench:
    patroni_config: %s/none.yml
    vip:
      backend: dns
      interface: %s
      dns: {name: %s, zone: %s, server: %s, tsig_key_file: %s}
`, work, dnslab.HostIf, dnslab.Name, dnslab.Zone, dnslab.ServerAddr, lab.KeyFile)), 0o600); err != nil {
		return err
	}
	script := filepath.Join(work, "nsupdate-callback.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(nsupdateScript,
		lab.KeyFile, dnslab.ServerAddr, dnslab.Zone, dnslab.Name, dnslab.Name, newPrimary)), 0o700); err != nil {
		return err
	}
	env := append(os.Environ(), "PGHOOK_CONFIG="+conf, "PGHOOK_PGTAB="+filepath.Join(work, "pgtab"), "HOME="+work)
	tools := []struct {
		name string
		argv []string
	}{
		{"pghook callback, backend dns (TCP, TSIG)", []string{bin, "--log-level", "error", "callback", "on_role_change", "master", "bench"}},
		{"shell callback running nsupdate (UDP, TSIG)", []string{"/bin/sh", script, "on_role_change", "master", "bench"}},
		// No process start: what `pghook vip watch` does when it takes.
		{"in-process Hold, as the running watcher does (TCP, TSIG)", nil},
	}
	self, err := dnsvip.New(dnsvip.Settings{Name: dnslab.Name, Zone: dnslab.Zone, Server: dnslab.ServerAddr, KeyFile: lab.KeyFile,
		Address: netip.MustParseAddr(newPrimary)}, zerolog.Nop())
	if err != nil {
		return err
	}
	reset, err := dnsvip.New(dnsvip.Settings{Name: dnslab.Name, Zone: dnslab.Zone, Server: dnslab.ServerAddr, KeyFile: lab.KeyFile,
		Address: netip.MustParseAddr(oldPrimary)}, zerolog.Nop())
	if err != nil {
		return err
	}
	var results []result
	for _, tool := range tools {
		r := result{Tool: tool.name, Command: strings.Join(tool.argv, " ")}
		if tool.argv == nil {
			r.Command = "(dnsvip.Backend.Hold in this process)"
		}
		for i := 0; i < trials+3; i++ { // 3 warm-up trials
			if err := reset.Hold(context.Background()); err != nil {
				return fmt.Errorf("resetting the record: %w", err)
			}
			if !waitFor(lab.Server, oldPrimary, time.Second).ok {
				return fmt.Errorf("reset not served")
			}
			flip, exit, ok, err := trial(lab.Server, tool.argv, env, self)
			if err != nil {
				return fmt.Errorf("%s: %w", tool.name, err)
			}
			if i < 3 {
				continue
			}
			if !ok {
				r.Missed++
				continue
			}
			r.FlipMS = append(r.FlipMS, ms(flip))
			r.ExitMS = append(r.ExitMS, ms(exit))
		}
		results = append(results, r)
		fmt.Printf("%s: flip p50 %.1f ms p95 %.1f ms; exit p50 %.1f ms (n=%d, missed %d)\n", r.Tool,
			pct(r.FlipMS, 50), pct(r.FlipMS, 95), pct(r.ExitMS, 50), len(r.FlipMS), r.Missed)
	}
	return write(out, results)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type seen struct {
	ok bool
	at time.Time
}

// waitFor queries the server over UDP about every 0.5 ms until it answers
// with want.
func waitFor(server, want string, within time.Duration) seen {
	conn, err := net.Dial("udp", server)
	if err != nil {
		return seen{}
	}
	defer conn.Close()
	c := &dns.Conn{Conn: conn}
	q := new(dns.Msg).SetQuestion(dnslab.Name, dns.TypeA)
	q.RecursionDesired = false
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		_ = conn.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if err := c.WriteMsg(q); err == nil {
			if r, err := c.ReadMsg(); err == nil && len(r.Answer) == 1 {
				if a, ok := r.Answer[0].(*dns.A); ok && a.A.String() == want {
					return seen{true, time.Now()}
				}
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	return seen{}
}

// trial starts argv and measures when the server first answers the new
// primary's address, and when the callback exits.
func trial(server string, argv []string, env []string, self *dnsvip.Backend) (flip, exit time.Duration, ok bool, err error) {
	watch := make(chan seen, 1)
	start := time.Now()
	go func() { watch <- waitFor(server, newPrimary, 5*time.Second) }()
	if argv == nil {
		err = self.Hold(context.Background())
		exit = time.Since(start)
		if err != nil {
			return 0, 0, false, err
		}
	} else {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		outb, err := cmd.CombinedOutput()
		exit = time.Since(start)
		if err != nil {
			return 0, 0, false, fmt.Errorf("%v: %s", err, outb)
		}
	}
	s := <-watch
	return s.at.Sub(start), exit, s.ok, nil
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func write(out string, results []result) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	j, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(out+".json", j, 0o644); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| callback | record flip p50 | p95 | max | callback exit p50 | p95 | n |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %d (missed %d) |\n", r.Tool,
			pct(r.FlipMS, 50), pct(r.FlipMS, 95), pct(r.FlipMS, 100), pct(r.ExitMS, 50), pct(r.ExitMS, 95), len(r.FlipMS), r.Missed)
	}
	return os.WriteFile(out+".md", []byte(b.String()), 0o644)
}
