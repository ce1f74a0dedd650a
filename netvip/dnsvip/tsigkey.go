package dnsvip

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Key is a TSIG key: its name (canonical, with the final dot), its
// algorithm ("hmac-sha256." or "hmac-sha512.") and its base64 secret.
// String never prints the secret.
type Key struct {
	Name      string
	Algorithm string
	secret    string
}

func (k Key) String() string { return fmt.Sprintf("TSIG key %s (%s)", k.Name, k.Algorithm) }

// maxKeyFile bounds a key file: tsig-keygen writes about 100 bytes.
const maxKeyFile = 4096

// ErrKeyFileUnsafe is wrapped when a key file's owner or mode is refused.
var ErrKeyFileUnsafe = errors.New("unsafe TSIG key file")

// ReadKeyFile reads a BIND key file (what `tsig-keygen -a hmac-sha256 NAME`
// writes, the same file named's include and nsupdate -k read). It is read
// only when it is a regular file (not a symbolic link) owned by root that
// nobody but root can write and that others cannot read; group read is
// allowed for group root, group postgres, and this process's own group
// (the user the callbacks run as): chown root:postgres, chmod 0640. The
// checks are made on the open descriptor.
func ReadKeyFile(path string) (Key, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return Key{}, fmt.Errorf("TSIG key file %s: %w (it must be a regular file, not a symbolic link)", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Key{}, fmt.Errorf("TSIG key file %s: %w", path, err)
	}
	if err := checkKeyStat(st, postgresGID()); err != nil {
		return Key{}, fmt.Errorf("TSIG key file %s: %w: %w (chown root:postgres, chmod 0640)", path, ErrKeyFileUnsafe, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return Key{}, fmt.Errorf("reading TSIG key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return Key{}, fmt.Errorf("TSIG key file %s: more than %d bytes: not a key file", path, maxKeyFile)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("TSIG key file %s: %w", path, err)
	}
	return k, nil
}

// checkKeyStat is the owner and mode rule of ReadKeyFile; pgGID is group
// postgres's id (-1: no such group).
func checkKeyStat(st unix.Stat_t, pgGID int) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return errors.New("not a regular file")
	case st.Uid != 0:
		return fmt.Errorf("owned by uid %d, not root", st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("mode %04o: writable by group or others", st.Mode&0o7777)
	case st.Mode&0o007 != 0:
		return fmt.Errorf("mode %04o: others may read it", st.Mode&0o7777)
	case st.Mode&0o040 != 0 && st.Gid != 0 && int(st.Gid) != pgGID && int(st.Gid) != os.Getegid():
		return fmt.Errorf("mode %04o: readable by group %d, which is neither root nor postgres", st.Mode&0o7777, st.Gid)
	}
	return nil
}

func postgresGID() int {
	g, err := user.LookupGroup("postgres")
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1
	}
	return n
}

// ParseKey reads one `key "NAME" { algorithm ALG; secret "BASE64"; };`
// statement. Comments (#, //, /* */) are allowed. Errors never quote the
// secret.
func ParseKey(text string) (Key, error) {
	toks, err := tokenize(text)
	if err != nil {
		return Key{}, err
	}
	want := func(i int, s string) bool { return i < len(toks) && toks[i] == s }
	if !want(0, "key") || len(toks) < 3 || !want(2, "{") {
		return Key{}, errors.New(`want one key statement: key "NAME" { algorithm hmac-sha256; secret "..."; }; (what tsig-keygen writes)`)
	}
	name := strings.Trim(toks[1], `"`)
	var k Key
	i := 3
	for ; i < len(toks) && toks[i] != "}"; i += 3 {
		if i+2 >= len(toks) || toks[i+2] != ";" {
			return Key{}, fmt.Errorf("key %s: statement %q is not `WORD VALUE;`", name, toks[i])
		}
		val := strings.Trim(toks[i+1], `"`)
		switch toks[i] {
		case "algorithm":
			switch strings.ToLower(val) {
			case "hmac-sha256":
				k.Algorithm = algSHA256
			case "hmac-sha512":
				k.Algorithm = algSHA512
			default:
				return Key{}, fmt.Errorf("key %s: algorithm %q: want hmac-sha256 or hmac-sha512", name, val)
			}
		case "secret":
			raw, err := base64.StdEncoding.DecodeString(val)
			if err != nil || len(raw) < 16 {
				return Key{}, fmt.Errorf("key %s: the secret is not base64 of at least 16 bytes", name)
			}
			k.secret = val
		default:
			return Key{}, fmt.Errorf("key %s: unknown statement %q: want algorithm and secret", name, toks[i])
		}
	}
	if !want(i, "}") || !want(i+1, ";") || len(toks) != i+2 {
		return Key{}, fmt.Errorf("key %s: want exactly one key statement ending in };", name)
	}
	if name == "" || !validName(canonicalName(name)) {
		return Key{}, fmt.Errorf("key name %q is not a domain name", name)
	}
	if k.Algorithm == "" || k.secret == "" {
		return Key{}, fmt.Errorf("key %s: needs both algorithm and secret", name)
	}
	k.Name = canonicalName(name)
	return k, nil
}

// tokenize splits a named.conf fragment into words, quoted strings and
// the punctuation { } ;, dropping comments.
func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || strings.HasPrefix(s[i:], "//"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "/*"):
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			i += j + 4
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, string(c))
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"#", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}
