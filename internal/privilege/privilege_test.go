package privilege

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseStatusElevated(t *testing.T) {
	tests := []struct {
		name     string
		status   string
		elevated bool
		wantErr  bool
	}{
		{name: "postgres, no capabilities", status: "Uid:\t112\t112\t112\t112\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapAmb:\t0000000000000000\n"},
		{name: "postgres with file capabilities", status: "Uid:\t112\t112\t112\t112\nCapPrm:\t0000000000003000\nCapEff:\t0000000000003000\nCapAmb:\t0000000000000000\n", elevated: true},
		{name: "postgres with ambient capabilities (inherited from a root parent)", status: "Uid:\t112\t112\t112\t112\nCapPrm:\t0000000000003000\nCapAmb:\t0000000000003000\n"},
		{name: "ambient plus one more", status: "Uid:\t112\t112\t112\t112\nCapPrm:\t0000000000003001\nCapAmb:\t0000000000003000\n", elevated: true},
		{name: "root", status: "Uid:\t0\t0\t0\t0\nCapPrm:\t000001ffffffffff\nCapAmb:\t0000000000000000\n"},
		{name: "root real uid, another effective: still counted by AT_SECURE, not here", status: "Uid:\t0\t112\t112\t112\nCapPrm:\t0000000000000000\n"},
		{name: "no CapPrm", status: "Uid:\t112\t112\t112\t112\n", wantErr: true},
		{name: "no Uid", status: "CapPrm:\t0000000000000000\n", wantErr: true},
		{name: "garbage mask", status: "Uid:\t1\t1\t1\t1\nCapPrm:\tzz\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseStatus(strings.NewReader(tt.status))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatus: %v, wantErr %t", err, tt.wantErr)
			}
			if err == nil && elevated(st) != tt.elevated {
				t.Errorf("elevated = %t, want %t (%+v)", elevated(st), tt.elevated, st)
			}
		})
	}
}

// The test binary itself gained nothing at exec.
func TestElevatedSelf(t *testing.T) {
	if Elevated() {
		t.Fatal("a plain test process reads as elevated")
	}
}

func TestReadTrusted(t *testing.T) {
	tmp := t.TempDir()
	if err := os.WriteFile(tmp+"/pghook.yaml", []byte("scopes: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		path      string
		max       int64
		untrusted bool   // wraps ErrUntrusted
		want      string // in the error; "" = success
	}{
		{name: "root's regular file", path: "/etc/passwd"},
		{name: "too large", path: "/etc/passwd", max: 8, untrusted: true, want: "more than 8"},
		{name: "relative", path: "etc/passwd", untrusted: true, want: "clean absolute"},
		{name: "unclean", path: "/etc/../etc/passwd", untrusted: true, want: "clean absolute"},
		{name: "a directory", path: "/etc", untrusted: true, want: "not a regular file"},
		{name: "procfs: root-owned for a capability process, content the caller's", path: "/proc/1/cmdline", untrusted: true, want: "procfs"},
		{name: "procfs through the self symlink", path: "/proc/self/cmdline", untrusted: true, want: "procfs"},
		{name: "a device anyone may write", path: "/dev/zero", untrusted: true, want: "writable by group or others"},
		{name: "below a world-writable directory", path: tmp + "/pghook.yaml", untrusted: true, want: "writable by group or others"},
		{name: "missing", path: "/etc/pghook-test-missing/pghook.yaml", want: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ReadTrusted(tt.path, tt.max)
			if tt.want == "" {
				if err != nil || len(b) == 0 {
					t.Fatalf("ReadTrusted(%s): %d bytes, %v", tt.path, len(b), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadTrusted(%s): %v, want an error containing %q", tt.path, err, tt.want)
			}
			if errors.Is(err, ErrUntrusted) != tt.untrusted {
				t.Errorf("errors.Is(ErrUntrusted) = %t, want %t", !tt.untrusted, tt.untrusted)
			}
		})
	}
}

func TestReadTrustedSysfs(t *testing.T) {
	const p = "/sys/kernel/uevent_seqnum"
	if _, err := os.Stat(p); err != nil {
		t.Skip("no sysfs here")
	}
	if _, err := ReadTrusted(p, 0); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "sysfs") {
		t.Fatalf("ReadTrusted(%s): %v, want refused as sysfs", p, err)
	}
}

func TestCheckDir(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		owners []int
		want   string
	}{
		{name: "root's directory", path: "/etc"},
		{name: "world-writable", path: os.TempDir(), want: "writable by group or others"},
		{name: "not a directory", path: "/etc/passwd", want: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDir(tt.path, tt.owners...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckDir(%s): %v, want %q", tt.path, err, tt.want)
			}
		})
	}
}
