package netvip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArpAnnounceWarning(t *testing.T) {
	tests := []struct {
		all, iface string
		warn       bool
	}{
		{"0", "0", true},
		{"2", "0", false}, // the kernel takes the maximum
		{"0", "2", false},
		{"1", "1", true},
	}
	for _, tt := range tests {
		root := t.TempDir()
		for conf, v := range map[string]string{"all": tt.all, "eth0": tt.iface} {
			os.MkdirAll(filepath.Join(root, conf), 0o755)
			os.WriteFile(filepath.Join(root, conf, "arp_announce"), []byte(v+"\n"), 0o644)
		}
		got := arpAnnounceWarning(root, "eth0")
		if (got != "") != tt.warn || (tt.warn && !strings.Contains(got, "arp_announce")) {
			t.Errorf("all=%s eth0=%s: %q", tt.all, tt.iface, got)
		}
	}
	if arpAnnounceWarning(t.TempDir(), "nope") != "" {
		t.Error("warned for an unreadable setting")
	}
}
