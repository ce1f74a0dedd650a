//go:build e2e

package labkit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Loops runs a recorder's sampling loops, each on its own ticker, until
// Stop.
type Loops struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// NewLoops returns loops with none running yet.
func NewLoops() *Loops { return &Loops{stop: make(chan struct{})} }

// Every calls f with the tick's time every d, one call at a time (a slow
// call delays the next tick), until Stop.
func (l *Loops) Every(d time.Duration, f func(now time.Time)) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-l.stop:
				return
			case now := <-tk.C:
				f(now)
			}
		}
	}()
}

// Stop ends every loop and waits for them; a second call does nothing.
func (l *Loops) Stop() {
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
	})
}

// Routing is what a test of one routing backend (the cloud API's
// assignment, a DNS name, per-subnet VIPs) waits for around an event.
type Routing struct {
	// What names it in messages ("the name on the leader").
	What string
	// Routed is nil once clients are routed to leader.
	Routed func(leader string) error
	// Settled is nil once everything is back in place after an event
	// (the replicas' name, say); nil means Routed.
	Settled func(leader string) error
}

// Settle waits until the lab is healthy (one leader, replicas streaming)
// and routing is settled on the leader; it returns the leader.
func (l *Lab) Settle(t *testing.T, timeout time.Duration, r Routing) string {
	t.Helper()
	settled := r.Settled
	if settled == nil {
		settled = r.Routed
	}
	var leader string
	l.Eventually(t, timeout, "healthy with "+r.What, func() (err error) {
		if _, err = l.Lib("lab_healthy"); err != nil {
			return err
		}
		if leader, err = l.Lib("lab_leader"); err != nil {
			return err
		}
		return settled(leader)
	})
	return leader
}

// Event is one fault's run: the primary before it and after it, and the
// window the test analyses.
type Event struct {
	Name, Old, New string
	Start, End     time.Time
}

// RunEvent settles the lab, calls mark (where a test notes its logs'
// offsets), causes f at Start, waits until a new leader (the one f asked
// for, if any) is routed, lets the samplers see it for 5 s, restores f's
// node, settles again and records 2 s more before End.
func (l *Lab) RunEvent(t *testing.T, f Fault, r Routing, mark func()) Event {
	t.Helper()
	ev := Event{Name: f.Name}
	ev.Old = l.Settle(t, 150*time.Second, r)
	if mark != nil {
		mark()
	}
	ev.Start = time.Now()
	want := f.Cause(ev.Old)
	l.Eventually(t, 90*time.Second, f.Name+": a new leader with "+r.What, func() (err error) {
		if ev.New, err = l.Lib("lab_leader"); err != nil {
			return err
		}
		if ev.New == ev.Old || (want != "" && ev.New != want) {
			return fmt.Errorf("leader %s (before %s, asked for %q)", ev.New, ev.Old, want)
		}
		return r.Routed(ev.New)
	})
	time.Sleep(5 * time.Second)
	if f.Restore != nil {
		f.Restore(ev.Old)
	}
	l.Settle(t, 150*time.Second, r)
	time.Sleep(2 * time.Second)
	ev.End = time.Now()
	return ev
}

// OtherThan is the first of nodes that is not n.
func OtherThan(nodes []string, n string) string {
	for _, c := range nodes {
		if c != n {
			return c
		}
	}
	return ""
}

// PghookLogs are the files pghook logs to on the nodes: the callbacks'
// output is in Patroni's log, the watcher's in vipwatch.log.
func (l *Lab) PghookLogs(nodes []string) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, filepath.Join(l.Env["LAB_DIR"], n, "patroni.log"), filepath.Join(l.Env["LAB_DIR"], n, "vipwatch.log"))
	}
	return out
}

// LogSize is f's current size, 0 when it does not exist yet.
func LogSize(f string) int64 {
	if fi, err := os.Stat(f); err == nil {
		return fi.Size()
	}
	return 0
}

// LogOffsets is each file's current size (LogSize).
func LogOffsets(files []string) map[string]int64 {
	m := map[string]int64{}
	for _, f := range files {
		m[f] = LogSize(f)
	}
	return m
}

// LogSince returns the lines f got after offset off.
func LogSince(f string, off int64) []string {
	fh, err := os.Open(f)
	if err != nil {
		return nil
	}
	defer fh.Close()
	if _, err := fh.Seek(off, 0); err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
