package shellenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Root's PATH starts with a roster's bin_dir only when root alone could
// have chosen it.
func TestRootMayRunFrom(t *testing.T) {
	tmp := t.TempDir()
	roster := filepath.Join(tmp, ".pgtab") // postgres-writable in real life; here below /tmp
	if err := os.WriteFile(roster, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(tmp, "bin")
	if err := os.Mkdir(evil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, roster, binDir, want string
	}{
		{name: "root-owned bin dir from an untrusted roster", roster: roster, binDir: "/usr/bin"},
		{name: "a bin dir the roster's writer controls", roster: roster, binDir: evil, want: "is not vouched for"},
		{name: "a root-owned roster is trusted", roster: "/etc/passwd", binDir: evil},
		{name: "a missing bin dir", roster: roster, binDir: "/nonexistent/bin", want: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rootMayRunFrom(tt.roster, tt.binDir)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("rootMayRunFrom: %v, want %q", err, tt.want)
			}
		})
	}
}
