package dnsvip

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

func TestParseKey(t *testing.T) {
	good := `key "pglab-hook" {
	algorithm hmac-sha256;
	secret "` + secretB + `";
};
`
	tests := []struct {
		name, in, wantErr string
		alg               string
	}{
		{"tsig-keygen output", good, "", dns.HmacSHA256},
		{"sha512 and comments", "# made by hand\nkey pglab-hook { // name\n algorithm HMAC-SHA512; /* the\n secret */ secret \"" + secretB + "\"; };", "", dns.HmacSHA512},
		{"md5 refused", strings.Replace(good, "hmac-sha256", "hmac-md5", 1), "algorithm", ""},
		{"short secret", strings.Replace(good, secretB, "c2hvcnQ=", 1), "16 bytes", ""},
		{"not base64", strings.Replace(good, secretB, "!!!notbase64!!!", 1), "base64", ""},
		{"no secret", "key k { algorithm hmac-sha256; };", "needs both", ""},
		{"two keys", good + good, "exactly one", ""},
		{"unknown statement", strings.Replace(good, "algorithm", "algo", 1), "unknown statement", ""},
		{"unterminated", `key "k" { secret "abc`, "unterminated", ""},
		{"empty", "", "want one key statement", ""},
		{"named.conf", "options { directory \"/x\"; };", "want one key statement", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secretB) {
					t.Fatalf("error quotes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Name != "pglab-hook." || k.Algorithm != tt.alg || k.secret != secretB {
				t.Fatalf("key %+v", k)
			}
			if strings.Contains(k.String(), secretB) {
				t.Fatal("String prints the secret")
			}
		})
	}
}

func TestCheckKeyStat(t *testing.T) {
	const pg = 1234
	reg := func(uid, gid uint32, mode uint32) unix.Stat_t {
		return unix.Stat_t{Uid: uid, Gid: gid, Mode: unix.S_IFREG | mode}
	}
	other := uint32(4321)
	if os.Getegid() == int(other) {
		other++
	}
	tests := []struct {
		name string
		st   unix.Stat_t
		ok   bool
	}{
		{"root:root 0600", reg(0, 0, 0o600), true},
		{"root:postgres 0640", reg(0, pg, 0o640), true},
		{"root:root 0640", reg(0, 0, 0o640), true},
		{"root:own group 0640", reg(0, uint32(os.Getegid()), 0o640), true},
		{"root:root 0400", reg(0, 0, 0o400), true},
		{"postgres-owned", reg(999, pg, 0o600), false},
		{"world readable", reg(0, 0, 0o644), false},
		{"group writable", reg(0, pg, 0o660), false},
		{"other group readable", reg(0, other, 0o640), false},
		{"a directory", unix.Stat_t{Mode: unix.S_IFDIR | 0o700}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkKeyStat(tt.st, pg); (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k.key")
	if err := os.WriteFile(p, []byte(`key "k" { algorithm hmac-sha256; secret "`+secretB+`"; };`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadKeyFile(p)
	if os.Geteuid() == 0 {
		if err != nil {
			t.Fatalf("root-owned 0600 key: %v", err)
		}
		if err := os.Chmod(p, 0o604); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKeyFile(p); !errors.Is(err, ErrKeyFileUnsafe) {
			t.Fatalf("world-readable key: err %v", err)
		}
	} else if !errors.Is(err, ErrKeyFileUnsafe) || !strings.Contains(err.Error(), "not root") {
		t.Fatalf("a key file not owned by root: err %v", err)
	}
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlink: err %v", err)
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(`key "pglab-hook" { algorithm hmac-sha256; secret "` + secretB + `"; };`)
	f.Add("key k { algorithm hmac-sha512; /* c */ secret \"" + secretB + "\"; }; # x")
	f.Add(`key "k" { secret "abc`)
	f.Fuzz(func(t *testing.T, in string) {
		k, err := ParseKey(in)
		if err != nil {
			return
		}
		if !validName(k.Name) || (k.Algorithm != algSHA256 && k.Algorithm != algSHA512) {
			t.Fatalf("accepted key %+v", k)
		}
		m := new(dns.Msg).SetQuestion("x.", dns.TypeA).SetTsig(k.Name, k.Algorithm, fudge, 0)
		if _, _, err := dns.TsigGenerate(m, k.secret, "", false); err != nil {
			t.Fatalf("accepted key cannot sign: %v", err)
		}
		if strings.Contains(k.String(), k.secret) {
			t.Fatal("String prints the secret")
		}
	})
}
