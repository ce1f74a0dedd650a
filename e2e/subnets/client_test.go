//go:build e2e

package subnetse2e

import (
	"testing"
	"time"

	"github.com/pghook/pghook/e2e/labkit"
)

// clientSample is one attempt of the lab's client (labkit.StartClient).
type clientSample struct {
	at, end time.Time
	target  string   // "name", or the node address it connected to directly
	answer  []string // the A records the server gave (target "name")
	srv     string   // the server address that took the write
	ok      bool
	err     string
}

// startClient starts the client in subnet C with targets ("name" and node
// addresses); every attempt goes to emit.
func startClient(t *testing.T, targets []string, emit func(clientSample)) *labkit.Client {
	t.Helper()
	o := labkit.ClientOptions{Every: clientEvery, Targets: targets, Table: "subnets_client", App: "subnets-client"}
	return lab.StartClient(t, o, func(s labkit.Sample) {
		emit(clientSample{at: s.At, end: s.End, target: s.Target, answer: s.Answer, srv: s.Srv, ok: s.OK, err: s.Err})
	})
}
