package replica

// go test -fuzz targets (make fuzz runs each for FUZZTIME). Plain
// `go test ./replica/` runs only their seeds, which are the shapes the
// other tests build: a PostgreSQL 15 manifest, pg_control, a WAL segment
// header, backup_label, and the crafted archives of
// TestExtractRejectsMaliciousTars.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pg15Manifest is the shape PostgreSQL 15's pg_basebackup writes
// (version 1, CRC32C, Last-Modified, an Encoded-Path for a name that is
// not valid UTF-8), with a correct Manifest-Checksum.
func pg15Manifest() []byte {
	body := `{ "PostgreSQL-Backup-Manifest-Version": 1,
"Files": [
{ "Path": "backup_label", "Size": 225, "Last-Modified": "2026-01-01 00:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "4b6a1f5e" },
{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-01-01 00:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "4d7ad2b5" },
{ "Encoded-Path": "626173652f312fff", "Size": 0, "Last-Modified": "2026-01-01 00:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" },
{ "Path": "global/pg_control", "Size": 8192, "Last-Modified": "2026-01-01 00:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "a4508312" },
{ "Path": "base/5/16384", "Size": 8192, "Last-Modified": "2026-01-01 00:00:00 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" },
{ "Path": "postgresql.auto.conf", "Size": 88, "Last-Modified": "2026-01-01 00:00:00 GMT" }
],
"WAL-Ranges": [
{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }
],
`
	return withManifestChecksum([]byte(body))
}

// withManifestChecksum appends a Manifest-Checksum that matches body, so
// the fuzzer explores what lies behind the checksum check.
func withManifestChecksum(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(append([]byte(nil), body...), fmt.Sprintf("\"Manifest-Checksum\": \"%s\"}\n", hex.EncodeToString(sum[:]))...)
}

func checkManifest(t *testing.T, m *Manifest, err error) {
	if err != nil {
		if !errors.Is(err, ErrManifest) {
			t.Fatalf("error %v does not wrap ErrManifest", err)
		}
		return
	}
	if m.Version != 1 && m.Version != 2 {
		t.Fatalf("accepted version %d", m.Version)
	}
	if len(m.WAL) == 0 {
		t.Fatal("accepted a manifest without WAL-Ranges")
	}
	for p, f := range m.Files {
		if !localName(p) || p != f.Path {
			t.Fatalf("accepted file path %q (%q)", p, f.Path)
		}
		if f.Size < 0 {
			t.Fatalf("accepted size %d for %q", f.Size, p)
		}
		if f.Algorithm == "NONE" && f.Checksum != nil {
			t.Fatalf("%q: NONE with a checksum", p)
		}
	}
	if m.DataSize() < 0 {
		// Sizes are int64 each; their sum overflowing would turn the
		// decompression-bomb cap negative (restore.go baseCap).
		t.Logf("sizes overflow int64: %d", m.DataSize())
	}
	m.Start()
	m.End()
}

func FuzzParseManifest(f *testing.F) {
	synth := makeManifest(map[string][]byte{"PG_VERSION": []byte("15\n"), "global/pg_control": pgControl(42)}, 1, 0x2000028, 0x2000100)
	s := newSynth(7712150698949318755)
	full := makeManifest(s.files, 1, 0x100028, 0x100100)
	for _, seed := range [][]byte{pg15Manifest(), synth, full,
		makeManifest(map[string][]byte{"../etc/passwd": []byte("x")}, 1, 1, 2),
		withManifestChecksum([]byte(`{"PostgreSQL-Backup-Manifest-Version": 2, "System-Identifier": 7712150698949318755, "Files": [], "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/1", "End-LSN": "0/2"}], `)),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// As given (mostly refused by the checksum) ...
		m, err := ParseManifest(b)
		checkManifest(t, m, err)
		// ... and with the part before the key re-checksummed.
		body := b
		if i := bytes.LastIndex(b, []byte(`"Manifest-Checksum"`)); i >= 0 {
			body = b[:i]
		}
		m, err = ParseManifest(withManifestChecksum(body))
		checkManifest(t, m, err)
	})
}

func FuzzParseControl(f *testing.F) {
	f.Add(pgControl(7712150698949318755))
	f.Add(pgControl(1)[:292])
	f.Add(pgControlState(42, 2)[:300])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		cd, err := ParseControl(b)
		if err == nil && len(b) < 28 {
			t.Fatalf("accepted %d bytes: %+v", len(b), cd)
		}
	})
}

func FuzzParseWALHeader(f *testing.F) {
	f.Add(walSegment(99, 3, 0x1000000)[:40])
	f.Add(walSegment(7712150698949318755, 1, 0x100000)[:64])
	f.Add(make([]byte, 39))
	f.Fuzz(func(t *testing.T, b []byte) {
		wh, err := ParseWALHeader(b)
		if err != nil {
			return
		}
		if wh.SegSize < 1<<20 || wh.SegSize > 1<<30 || wh.SegSize&(wh.SegSize-1) != 0 {
			t.Fatalf("accepted segment size %d", wh.SegSize)
		}
		wh.MajorVersion()
		// SegmentName must not divide by zero for any accepted size.
		SegmentName(wh.Timeline, wh.PageAddr, uint64(wh.SegSize))
	})
}

func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{"0/2000028", "1/A0000028", "FFFFFFFF/FFFFFFFF", "/", "0/-1", "+1/+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLSN(s)
		if err != nil {
			return
		}
		if l2, err := ParseLSN(l.String()); err != nil || l2 != l {
			t.Fatalf("%q -> %v -> %v %v", s, l, l2, err)
		}
	})
}

// FuzzBackupLabel feeds the bytes both as backup_label's content and as a
// base archive to readLabelAndMap (which reads only its first entries).
func FuzzBackupLabel(f *testing.F) {
	s := newSynth(1)
	f.Add(s.files["backup_label"])
	f.Add([]byte("START WAL LOCATION: 0/100028 (file 000000010000000000000001)\nBACKUP FROM: standby\nSTART TIMELINE: 4294967295\nINCREMENTAL FROM LSN: 0/1000000\n"))
	f.Add(makeTar(f, s.base[:2]))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := ParseBackupLabel(b)
		if strings.Contains(l.From, "\n") {
			t.Fatalf("From %q", l.From)
		}
		got, _, err := readLabelAndMap(bytes.NewReader(b))
		if err == nil && len(got) > 64<<10 {
			t.Fatalf("backup_label of %d bytes", len(got))
		}
		firstWALHeader(bytes.NewReader(b))
	})
}

// fuzzManifest lists the synthetic backup's files plus two the crafted
// archives use, so that mutated archives reach writeFile.
func fuzzManifest() *Manifest {
	s := newSynth(7712150698949318755)
	m, err := ParseManifest(makeManifest(s.files, 1, 0x100028, 0x100100))
	if err != nil {
		panic(err)
	}
	m.Files["a"] = ManifestFile{Path: "a", Size: 1, Algorithm: "NONE"}
	m.Files["base/1/a"] = ManifestFile{Path: "base/1/a", Size: 1, Algorithm: "NONE"}
	m.Files["a/b"] = ManifestFile{Path: "a/b", Size: 1, Algorithm: "NONE"}
	return m
}

func tarSeeds(f *testing.F) {
	s := newSynth(7712150698949318755)
	body := []byte("evil")
	seeds := [][]entry{
		s.base,
		{{name: "../evil", typ: tar.TypeReg, body: body}},
		{{name: "base/../../evil", typ: tar.TypeReg, body: body}},
		{{name: "/tmp/evil", typ: tar.TypeReg, body: body}},
		{{name: "a", typ: tar.TypeSymlink, linkname: "/tmp"}, {name: "a/evil", typ: tar.TypeReg, body: body}},
		{{name: "a", typ: tar.TypeLink, linkname: "/etc/passwd"}},
		{{name: "a", typ: tar.TypeChar}},
		{{name: "a", typ: tar.TypeReg, body: []byte("x")}, {name: "a/", typ: tar.TypeDir}},
		{{name: "a", typ: tar.TypeReg, body: []byte("x")}, {name: "a/b", typ: tar.TypeReg, body: []byte("x")}},
		{{name: "a", typ: tar.TypeReg, body: []byte("x")}, {name: "a", typ: tar.TypeReg, body: []byte("x")}},
		{{name: "base/", typ: tar.TypeDir}, {name: "base/1/a", typ: tar.TypeReg, body: []byte("y")}},
		{{name: `..\evil`, typ: tar.TypeReg, body: body}},
		{{name: "lost+found/a", typ: tar.TypeReg, body: []byte("x")}},
		{{name: "archive_status/", typ: tar.TypeDir}, {name: "archive_status/000000010000000000000001.done", typ: tar.TypeReg}},
		{{name: "00000001.history", typ: tar.TypeReg, body: []byte("1\t0/2000000\tno recovery target specified\n")}},
	}
	for _, e := range seeds {
		f.Add(makeTar(f, e))
	}
	full := makeTar(f, s.base)
	f.Add(full[:len(full)/2]) // truncated
}

// checkContained asserts the tar walker's invariant after any input:
// nothing next to the data directory, nothing but directories and regular
// files inside it (no symlinks, devices, fifos), modes 0700/0600, files
// only at names the manifest (or, in pg_wal/, the WAL rules) allow, and
// the pre-existing lost+found untouched.
func checkContained(t *testing.T, parent, data string, m *Manifest) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("something was written next to the data directory: %v", names)
	}
	if ls, _ := os.ReadDir(filepath.Join(parent, "outside")); len(ls) != 0 {
		t.Fatalf("something was written into a sibling directory: %v", ls)
	}
	if ls, _ := os.ReadDir(filepath.Join(data, "lost+found")); len(ls) != 0 {
		t.Fatalf("something was written into the reserved lost+found: %v", ls)
	}
	filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walking %s: %v", p, err)
			return nil
		}
		rel, _ := filepath.Rel(data, p)
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		switch {
		case fi.Mode().IsDir():
			if rel != "." && fi.Mode().Perm() != 0o700 {
				t.Errorf("directory %s has mode %v", rel, fi.Mode())
			}
		case fi.Mode().IsRegular():
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("file %s has mode %v", rel, fi.Mode())
			}
			if _, ok := m.Files[rel]; !ok && !strings.HasPrefix(rel, "pg_wal/") {
				t.Errorf("file %s is not in the manifest", rel)
			}
			if strings.HasPrefix(rel, "pg_wal/") {
				n := strings.TrimPrefix(rel, "pg_wal/")
				if !walSegmentRE().MatchString(n) && !walHistoryRE().MatchString(n) && !walStatusRE().MatchString(n) {
					if _, ok := m.Files[rel]; !ok {
						t.Errorf("pg_wal file %s is neither WAL nor in the manifest", rel)
					}
				}
			}
		default:
			t.Errorf("%s is %v", rel, fi.Mode())
		}
		return nil
	})
}

// fuzzExtract runs one walker over b as an uncompressed archive, the way
// extractFile does for a .tar (decompress("none") then the bomb cap), into
// <tmp>/data opened with os.Root, next to an empty <tmp>/outside.
func fuzzExtract(t *testing.T, b []byte, wal bool) {
	parent := t.TempDir()
	data := filepath.Join(parent, "data")
	if err := os.MkdirAll(filepath.Join(data, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent, "outside"), 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(data)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	m := fuzzManifest()
	x := newExtractor(root, m, map[string]bool{"lost+found": true})
	zr, err := DefaultDecompressors().decompress(bytes.NewReader(b), compressionOf("base.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	limit := m.DataSize() + int64(len(m.Files)+20000)*2048 + 1<<20
	r := &limitedReader{r: zr, n: limit}
	if wal {
		err = x.extractWAL(r, 7712150698949318755)
	} else {
		err = x.extractBase(r)
	}
	// A bad archive must be a verification failure (exit 4), never an
	// I/O failure (7) Patroni's operator would chase on the disk.
	if err != nil {
		if code := classify(t.Context(), err); code != ExitVerify {
			t.Errorf("error %v: exit %d, want %d", err, code, ExitVerify)
		}
	}
	checkContained(t, parent, data, m)
}

func FuzzExtractBase(f *testing.F) {
	tarSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzExtract(t, b, false) })
}

func FuzzExtractWAL(f *testing.F) {
	tarSeeds(f)
	// One real (1 MB, mostly zero) segment: the smallest size allowed.
	f.Add(makeTar(f, []entry{{name: "000000010000000000000001", typ: tar.TypeReg, body: walSegment(7712150698949318755, 1, 0x100000)}}))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzExtract(t, b, true) })
}

// FuzzLZ4 feeds arbitrary bytes to the built-in LZ4 decoder (a backup's
// lz4 archives are outside input): it must not panic, must stop at the
// bomb cap like every decompressor, and a stream it refuses must classify
// as a failed verification, never as success or an I/O error.
func FuzzLZ4(f *testing.F) {
	for _, s := range []string{"", "hello, pghook", strings.Repeat("pghook ", 5000)} {
		cmd := exec.Command("lz4", "-q", "-c")
		cmd.Stdin = strings.NewReader(s)
		if out, err := cmd.Output(); err == nil {
			f.Add(out)
			if len(out) > 8 {
				f.Add(out[:len(out)/2])
			}
		}
	}
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := DefaultDecompressors().decompress(bytes.NewReader(b), "lz4")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		const bombCap = 4 << 20
		n, err := io.Copy(io.Discard, io.LimitReader(rc, bombCap+1))
		if n > bombCap {
			return // a valid small frame can expand this far; the extractor's cap stops it
		}
		if err != nil {
			if code := classify(context.Background(), err); code != ExitVerify {
				t.Fatalf("refused stream classified %d, want %d: %v", code, ExitVerify, err)
			}
		}
	})
}
