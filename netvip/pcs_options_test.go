package netvip

import "time"

// WithPcsRunner makes the backend run commands through r (tests).
func WithPcsRunner(r PcsRunner) PcsOption { return func(p *Pcs) { p.run = r } }

// WithPcsMoveTimeout bounds `pcs resource move` and the wait for the
// resource to arrive: default 30s, and never longer than the context.
func WithPcsMoveTimeout(d time.Duration) PcsOption {
	return func(p *Pcs) { p.moveTimeout = d }
}
