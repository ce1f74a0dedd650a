package replica

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// makeManifest writes a backup_manifest for files the way PostgreSQL 15
// does (version 1, CRC32C, checksum of everything before the key).
func makeManifest(files map[string][]byte, tli uint32, start, end LSN) []byte {
	var b bytes.Buffer
	b.WriteString("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		sep := ","
		if i == len(names)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "{ \"Path\": %q, \"Size\": %d, \"Last-Modified\": \"2026-01-01 00:00:00 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"%x\" }%s\n",
			n, len(files[n]), crc32cBytes(crc32.Checksum(files[n], castagnoli())), sep)
	}
	fmt.Fprintf(&b, "],\n\"WAL-Ranges\": [\n{ \"Timeline\": %d, \"Start-LSN\": \"%s\", \"End-LSN\": \"%s\" }\n],\n", tli, start, end)
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "\"Manifest-Checksum\": \"%s\"}\n", hex.EncodeToString(sum[:]))
	return b.Bytes()
}

// pgControl builds an 8 kB pg_control with sysid and a valid CRC at 288.
func pgControl(sysid uint64) []byte { return pgControlState(sysid, 6) }

// pgControlState is pgControl with a DBState (2: shut down in recovery, 6: in production).
func pgControlState(sysid uint64, state uint32) []byte {
	b := make([]byte, 8192)
	binary.LittleEndian.PutUint64(b, sysid)
	binary.LittleEndian.PutUint32(b[8:], 1300)
	binary.LittleEndian.PutUint32(b[12:], 202209061)
	binary.LittleEndian.PutUint32(b[16:], state)
	binary.LittleEndian.PutUint32(b[288:], crc32.Checksum(b[:288], castagnoli()))
	return b
}

const testSegSize = 1 << 20

// walSegment builds a WAL segment whose first page has a long header,
// followed by three valid records from at+40 to at+0x100 (the synthetic
// backups' WAL range).
func walSegment(sysid uint64, tli uint32, at LSN) []byte {
	g := newWALGen(sysid, tli, testSegSize, 8192, at+walLongHeader)
	for i := 0; i < 3; i++ {
		g.add(walRec{rmid: 10, data: bytes.Repeat([]byte{byte(i)}, 48)})
	}
	return g.segs[uint64(at)/testSegSize]
}

type entry struct {
	name     string
	typ      byte
	body     []byte
	linkname string
}

func makeTar(t testing.TB, entries []entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o600, Size: int64(len(e.body)), Linkname: e.linkname, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if e.typ == tar.TypeDir || e.typ == tar.TypeSymlink || e.typ == tar.TypeLink || e.typ == tar.TypeChar || e.typ == tar.TypeFifo {
			h.Size = 0
		}
		if e.typ == tar.TypeDir {
			h.Mode = 0o700
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(e.body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// synthBackup is a small but complete pghook backup of system sysid.
type synthBackup struct {
	sysid uint64
	files map[string][]byte
	base  []entry
	// wal, if set, changes the WAL segment before it is archived.
	wal func(seg []byte)
	// created is pghook.json's created_at (zero: 2026-01-01).
	created time.Time
}

func newSynth(sysid uint64) *synthBackup {
	label := []byte("START WAL LOCATION: 0/100028 (file 000000010000000000000001)\nCHECKPOINT LOCATION: 0/100060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIMELINE: 1\n")
	files := map[string][]byte{
		"backup_label":      label,
		"PG_VERSION":        []byte("15\n"),
		"base/1/1259":       bytes.Repeat([]byte("x"), 8192),
		"postgresql.conf":   []byte("# empty\n"),
		"global/pg_control": pgControl(sysid),
	}
	s := &synthBackup{sysid: sysid, files: files}
	s.base = []entry{
		{name: "backup_label", typ: tar.TypeReg, body: label},
		{name: "PG_VERSION", typ: tar.TypeReg, body: files["PG_VERSION"]},
		{name: "base/", typ: tar.TypeDir},
		{name: "base/1/", typ: tar.TypeDir},
		{name: "base/1/1259", typ: tar.TypeReg, body: files["base/1/1259"]},
		{name: "./pg_wal/", typ: tar.TypeDir},
		{name: "./pg_wal/archive_status/", typ: tar.TypeDir},
		{name: "postgresql.conf", typ: tar.TypeReg, body: files["postgresql.conf"]},
		{name: "global/", typ: tar.TypeDir},
		{name: "global/pg_control", typ: tar.TypeReg, body: files["global/pg_control"]},
	}
	return s
}

// write publishes the backup as <dir>/<scope>/<id>/.
func (s *synthBackup) write(t testing.TB, dir, scope, id string) string {
	bdir := filepath.Join(dir, scope, id)
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(bdir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w("backup_manifest", makeManifest(s.files, 1, 0x100028, 0x100100))
	w("base.tar", makeTar(t, s.base))
	seg := walSegment(s.sysid, 1, 0x100000)
	if s.wal != nil {
		s.wal(seg)
	}
	w("pg_wal.tar", makeTar(t, []entry{{name: "000000010000000000000001", typ: tar.TypeReg, body: seg}}))
	created := s.created
	if created.IsZero() {
		created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	w(MetaFile, []byte(fmt.Sprintf(`{"id":%q,"scope":%q,"system_identifier":"%d","created_at":%q}`, id, scope, s.sysid, created.Format(time.RFC3339))))
	return bdir
}

// fakeLeader answers IDENTIFY_SYSTEM and the WAL probe.
type fakeLeader struct {
	sysid   uint64
	walGone bool
	probed  []LSN
	xlogpos LSN // IDENTIFY_SYSTEM's position (0: 0x300000)
}

func (f *fakeLeader) IdentifySystem(context.Context) (SystemInfo, error) {
	pos := f.xlogpos
	if pos == 0 {
		pos = 0x300000
	}
	return SystemInfo{SystemID: f.sysid, Timeline: 1, XLogPos: pos}, nil
}

func (f *fakeLeader) ProbeWAL(_ context.Context, tli uint32, at LSN) error {
	f.probed = append(f.probed, at)
	if f.walGone {
		return fmt.Errorf("%w: requested WAL segment has already been removed", ErrWALGone)
	}
	return nil
}

func (f *fakeLeader) Close() {}

// listTree describes every path under root with its mode.
func treeOf(t testing.TB, root string) string {
	var b strings.Builder
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		fmt.Fprintf(&b, "%s %v %d\n", strings.TrimPrefix(p, root), fi.Mode(), fi.Size())
		return nil
	})
	return b.String()
}

var errNoSpace = syscallENOSPC()
