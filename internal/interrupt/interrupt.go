// Package interrupt turns the signals that stop a long command into the
// cancellation of its context.
package interrupt

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Context is cancelled by SIGTERM (how Patroni cancels a create_replica
// method) or SIGINT, with the signal as its cause, so that the error says
// so. stop releases the signals and cancels it.
func Context() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case s := <-ch:
			cancel(fmt.Errorf("interrupted by %s; what was written is removed", name(s)))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

// name is a signal's name as kill -l spells it (SIGTERM).
func name(s os.Signal) string {
	if sig, ok := s.(syscall.Signal); ok {
		return unix.SignalName(sig)
	}
	return s.String()
}
