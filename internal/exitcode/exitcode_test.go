package exitcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantMsg  string
	}{
		{"usage", Usagef("vip %s: --scope is required", "up"), Usage, "vip up: --scope is required"},
		{"failure", Failuref("vip: %v", errors.New("no helper")), Failure, "vip: no helper"},
		{"silent", Silent(Failure), Failure, ""},
		{"other code", New(5, "two hosts answer"), 5, "two hosts answer"},
		{"wrapped", fmt.Errorf("outer: %w", Usagef("x")), Usage, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *Error
			if !errors.As(tt.err, &e) {
				t.Fatalf("%v is not an *Error", tt.err)
			}
			if e.ExitCode() != tt.wantCode || e.Error() != tt.wantMsg {
				t.Errorf("got (%d, %q), want (%d, %q)", e.ExitCode(), e.Error(), tt.wantCode, tt.wantMsg)
			}
		})
	}
}
