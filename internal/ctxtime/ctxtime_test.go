package ctxtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
		max  time.Duration
	}{
		{"waits out d", context.Background(), 20 * time.Millisecond, nil, time.Second},
		{"a done context ends it at once", cancelled, time.Hour, context.Canceled, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := Sleep(tt.ctx, tt.d)
			took := time.Since(start)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Sleep = %v, want %v", err, tt.want)
			}
			if tt.want == nil && took < tt.d {
				t.Errorf("returned after %v, before %v", took, tt.d)
			}
			if took > tt.max {
				t.Errorf("took %v, want under %v", took, tt.max)
			}
		})
	}
}
