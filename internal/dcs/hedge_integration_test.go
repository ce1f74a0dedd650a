//go:build integration

package dcs

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// forwarder relays TCP connections to target until stalled: then it keeps
// every connection open but passes nothing on, as a member cut off behind
// a connection that still looks alive (no reset, no FIN).
type forwarder struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
}

func newForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, target: target}
	t.Cleanup(f.close)
	go f.serve()
	return f
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, u)
		f.mu.Unlock()
		go f.pipe(u, c)
		go f.pipe(c, u)
	}
}

// pipe copies src to dst while not stalled; stalled, it reads and drops.
func (f *forwarder) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !f.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF or closed
			return
		}
	}
}

func (f *forwarder) close() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

// A read that lands on a member cut off behind a live-looking connection
// is sent again to the next member after hedgeAfter, so it is answered
// within a few hundred milliseconds, not at its deadline. Without the
// second read, about every other call here (the client picks the two
// endpoints in turn) would wait the whole 3 s.
func TestGetHedgesAStalledMember(t *testing.T) {
	e, _ := etcdMember(t, etcd3DCS)
	e.Ctl(t, "put", "/service/pg/leader", "n2")
	target := strings.TrimPrefix(e.Endpoint, "http://")
	cut, ok := newForwarder(t, target), newForwarder(t, target)
	c := memberConfig(t, fmt.Sprintf("namespace: /service/\netcd3: {hosts: [%s, %s]}", cut.addr(), ok.addr()))
	cli, err := Open(c, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 4; i++ { // connections to both members up
		if l, err := cli.Leader(ctx); err != nil || l != "n2" {
			t.Fatalf("leader %q err %v, want n2", l, err)
		}
	}
	cut.stalled.Store(true)
	var slowest time.Duration
	for i := 0; i < 8; i++ {
		start := time.Now()
		l, err := cli.Leader(ctx)
		took := time.Since(start)
		if err != nil || l != "n2" {
			t.Fatalf("read %d with a member stalled: leader %q err %v after %s", i, l, err, took)
		}
		slowest = max(slowest, took)
	}
	t.Logf("8 reads with one of two members stalled: slowest %s (hedge after %s)", slowest, hedgeAfter)
	if slowest > hedgeAfter+time.Second {
		t.Errorf("slowest read took %s: a stalled member held it", slowest)
	}
	// Both stalled: the read fails at its deadline, with the reason.
	ok.stalled.Store(true)
	start := time.Now()
	if _, err := cli.Leader(ctx); err == nil || time.Since(start) > 4*time.Second {
		t.Errorf("read with every member stalled: err %v after %s, want an error at the 3 s deadline", err, time.Since(start))
	}
}
