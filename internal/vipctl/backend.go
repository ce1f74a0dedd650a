package vipctl

import (
	"context"
	"errors"
	"time"

	"github.com/pghook/pghook/netvip"
	"github.com/rs/zerolog"
)

// Backend is the VIP backend of an unprivileged callback: it asks the
// scope's running watcher and, when no trusted watcher answers, does the
// operation through Fallback (the privileged helper).
type Backend struct {
	Endpoint Endpoint
	Fallback netvip.Backend
	// Wait bounds how long the watcher may take before Fallback is tried
	// instead (0: 15s); a hold may legitimately wait for the previous
	// holder (takeover_wait) first.
	Wait time.Duration
	Log  zerolog.Logger

	served string // which path did the last operation, for Name
}

// Name implements netvip.Backend: the path that served the last operation.
func (b *Backend) Name() string {
	if b.served != "" {
		return b.served
	}
	return b.Fallback.Name() + " (or its watcher)"
}

// Hold implements netvip.Backend.
func (b *Backend) Hold(ctx context.Context) error { return b.do(ctx, Hold, b.Fallback.Hold) }

// Release implements netvip.Backend.
func (b *Backend) Release(ctx context.Context) error { return b.do(ctx, Release, b.Fallback.Release) }

// Status implements netvip.Backend (always through Fallback: the watcher
// answers no questions).
func (b *Backend) Status(ctx context.Context) (netvip.Status, error) { return b.Fallback.Status(ctx) }

func (b *Backend) do(ctx context.Context, op Op, fallback func(context.Context) error) error {
	wait := b.Wait
	if wait <= 0 {
		wait = 15 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, wait)
	err := Request(rctx, b.Endpoint, op)
	cancel()
	if err == nil || !errors.Is(err, ErrNoWatcher) || ctx.Err() != nil {
		b.served = "watcher " + b.Endpoint.Path()
		return err
	}
	if !isAbsent(err) {
		// A watcher that is there but did not answer is worth a line.
		b.Log.Warn().Err(err).Str("fallback", b.Fallback.Name()).Msg("VIP watcher did not serve the request: doing it through the helper")
	}
	b.served = b.Fallback.Name()
	return fallback(ctx)
}
