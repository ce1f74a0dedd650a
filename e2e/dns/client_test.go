//go:build e2e

package dnse2e

import (
	"testing"
	"time"

	"github.com/pghook/pghook/e2e/labkit"
)

// clientSample is one attempt of the lab's client (labkit.StartClient): an
// application that resolves the name at BIND before every connection.
type clientSample struct {
	at, end time.Time
	answer  []string // the A records the server gave
	srv     string   // the server address that took the write
	ok      bool
	err     string
}

// startClient starts the client following the name; every attempt goes to
// emit.
func startClient(t *testing.T, emit func(clientSample)) *labkit.Client {
	t.Helper()
	o := labkit.ClientOptions{Every: clientEvery, Targets: []string{"name"}, Table: "dns_client", App: "dns-client"}
	return lab.StartClient(t, o, func(s labkit.Sample) {
		emit(clientSample{at: s.At, end: s.End, answer: s.Answer, srv: s.Srv, ok: s.OK, err: s.Err})
	})
}
