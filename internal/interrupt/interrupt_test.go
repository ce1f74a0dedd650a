package interrupt

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestContext(t *testing.T) {
	tests := []struct {
		name      string
		signal    syscall.Signal
		wantCause string
	}{
		{"SIGTERM", syscall.SIGTERM, "interrupted by SIGTERM"},
		{"SIGINT", syscall.SIGINT, "interrupted by SIGINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, stop := Context()
			defer stop()
			if err := syscall.Kill(syscall.Getpid(), tt.signal); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("context not cancelled by the signal")
			}
			if c := context.Cause(ctx); c == nil || !strings.Contains(c.Error(), tt.wantCause) {
				t.Errorf("cause %v, want %q", c, tt.wantCause)
			}
		})
	}
}

func TestStopCancelsWithoutCause(t *testing.T) {
	ctx, stop := Context()
	stop()
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Errorf("cause after stop = %v, want context.Canceled", context.Cause(ctx))
	}
}
