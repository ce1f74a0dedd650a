package replica

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"path"
	"strconv"
	"strings"
	"sync"
)

// castagnoli is the CRC32C table PostgreSQL uses for manifest checksums.
// It is built on first use: package init runs on every pghook start.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// Manifest is a parsed backup_manifest.
type Manifest struct {
	Version int
	// SystemID is the manifest's System-Identifier (version 2, PG17+), or 0.
	SystemID uint64
	Files    map[string]ManifestFile // by slash-separated path, without "./"
	WAL      []WALRange
}

// ManifestFile is one entry of the manifest's Files.
type ManifestFile struct {
	Path      string
	Size      int64
	Algorithm string // CRC32C, SHA224…SHA512, or NONE
	Checksum  []byte // the checksum bytes as PostgreSQL stores them
}

// WALRange is one entry of WAL-Ranges.
type WALRange struct {
	Timeline uint32
	Start    LSN
	End      LSN
}

// ErrManifest is wrapped by every manifest parse or checksum error.
var ErrManifest = errors.New("replica: invalid backup manifest")

type rawManifest struct {
	Version  int     `json:"PostgreSQL-Backup-Manifest-Version"`
	SystemID *uint64 `json:"System-Identifier"`
	Files    []struct {
		Path        *string `json:"Path"`
		EncodedPath *string `json:"Encoded-Path"`
		Size        *int64  `json:"Size"`
		Algorithm   string  `json:"Checksum-Algorithm"`
		Checksum    string  `json:"Checksum"`
	} `json:"Files"`
	WALRanges []struct {
		Timeline uint32 `json:"Timeline"`
		Start    string `json:"Start-LSN"`
		End      string `json:"End-LSN"`
	} `json:"WAL-Ranges"`
	Checksum string `json:"Manifest-Checksum"`
}

// ParseManifest parses a backup_manifest and checks its Manifest-Checksum:
// the SHA-256 of every byte before the "Manifest-Checksum" key.
func ParseManifest(b []byte) (*Manifest, error) {
	const key = `"Manifest-Checksum"`
	i := bytes.LastIndex(b, []byte(key))
	if i < 0 {
		return nil, fmt.Errorf("%w: no Manifest-Checksum", ErrManifest)
	}
	var raw rawManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrManifest)
	}
	sum := sha256.Sum256(b[:i])
	if want, err := hex.DecodeString(raw.Checksum); err != nil || !bytes.Equal(want, sum[:]) {
		return nil, fmt.Errorf("%w: Manifest-Checksum does not match its content (sha256 %x)", ErrManifest, sum)
	}
	if raw.Version != 1 && raw.Version != 2 {
		return nil, fmt.Errorf("%w: version %d not supported", ErrManifest, raw.Version)
	}
	m := &Manifest{Version: raw.Version, Files: make(map[string]ManifestFile, len(raw.Files))}
	if raw.SystemID != nil {
		m.SystemID = *raw.SystemID
	}
	for n, f := range raw.Files {
		var p string
		switch {
		case f.Path != nil:
			p = *f.Path
		case f.EncodedPath != nil:
			d, err := hex.DecodeString(*f.EncodedPath)
			if err != nil {
				return nil, fmt.Errorf("%w: file %d: bad Encoded-Path", ErrManifest, n)
			}
			p = string(d)
		default:
			return nil, fmt.Errorf("%w: file %d has no path", ErrManifest, n)
		}
		p = cleanName(p)
		if !localName(p) {
			return nil, fmt.Errorf("%w: file path %q is not local", ErrManifest, p)
		}
		if f.Size == nil || *f.Size < 0 {
			return nil, fmt.Errorf("%w: file %q has no size", ErrManifest, p)
		}
		if _, dup := m.Files[p]; dup {
			return nil, fmt.Errorf("%w: file %q listed twice", ErrManifest, p)
		}
		mf := ManifestFile{Path: p, Size: *f.Size, Algorithm: strings.ToUpper(f.Algorithm)}
		if mf.Algorithm == "" {
			mf.Algorithm = "NONE"
		}
		if mf.Algorithm != "NONE" {
			c, err := hex.DecodeString(f.Checksum)
			if err != nil {
				return nil, fmt.Errorf("%w: file %q: bad checksum", ErrManifest, p)
			}
			mf.Checksum = c
		}
		m.Files[p] = mf
	}
	for _, w := range raw.WALRanges {
		s, err := ParseLSN(w.Start)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrManifest, err)
		}
		e, err := ParseLSN(w.End)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrManifest, err)
		}
		m.WAL = append(m.WAL, WALRange{Timeline: w.Timeline, Start: s, End: e})
	}
	if len(m.WAL) == 0 {
		return nil, fmt.Errorf("%w: no WAL-Ranges", ErrManifest)
	}
	return m, nil
}

// Start is the backup's start LSN and timeline (first WAL range).
func (m *Manifest) Start() (uint32, LSN) { return m.WAL[0].Timeline, m.WAL[0].Start }

// End is the backup's end LSN and timeline (last WAL range).
func (m *Manifest) End() (uint32, LSN) {
	w := m.WAL[len(m.WAL)-1]
	return w.Timeline, w.End
}

// DataSize is the sum of the sizes of all listed files.
func (m *Manifest) DataSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// crc32cBytes is a CRC32C as PostgreSQL writes it in a manifest: its
// native (little-endian) uint32 bytes.
func crc32cBytes(c uint32) []byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], c)
	return b[:]
}

// cleanName strips the "./" prefixes and trailing slashes pg_basebackup
// may put on tar names.
func cleanName(n string) string {
	for strings.HasPrefix(n, "./") {
		n = n[2:]
	}
	n = strings.TrimRight(n, "/")
	if n == "." {
		return ""
	}
	return n
}

// localName reports whether a cleaned slash-separated name stays inside
// its root: not empty, not absolute, no "..", no backslash or NUL, and in
// canonical form (so "a//b" and "a/./b" are refused, not normalised).
func localName(n string) bool {
	if n == "" || strings.ContainsAny(n, "\\\x00") {
		return false
	}
	if path.Clean(n) != n {
		return false
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." || part == "." || part == "" {
			return false
		}
	}
	return !path.IsAbs(n)
}

// LSN is a PostgreSQL WAL location.
type LSN uint64

// ParseLSN parses "X/Y" hex notation.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("LSN %q: want X/Y", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("LSN %q: not hexadecimal", s)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l)) }

// SegmentName is the WAL file name holding l on timeline tli.
func SegmentName(tli uint32, l LSN, segSize uint64) string {
	seg := uint64(l) / segSize
	perID := uint64(0x100000000) / segSize
	return fmt.Sprintf("%08X%08X%08X", tli, seg/perID, seg%perID)
}
