package replica

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want Args
		code ExitCode
	}{
		{
			name: "Patroni with keep_data and an unknown key",
			argv: []string{"--keep_data=True", "--foo=bar", "--scope=15-main", "--role=replica", "--datadir=/var/lib/postgresql/15/main",
				"--connstring=dbname=postgres user=replicator host=10.0.0.2 port=5432"},
			want: Args{Scope: "15-main", Role: "replica", DataDir: "/var/lib/postgresql/15/main", KeepData: true,
				ConnString: "dbname=postgres user=replicator host=10.0.0.2 port=5432", Extra: map[string]string{"foo": "bar"}},
		},
		{
			name: "no_leader and empty connstring",
			argv: []string{"--no_leader=1", "--scope=s", "--role=replica", "--datadir=/d", "--connstring="},
			want: Args{Scope: "s", Role: "replica", DataDir: "/d", Extra: map[string]string{"no_leader": "1"}},
		},
		{
			name: "keep_data False and backup_dir from the method section",
			argv: []string{"--keep_data=False", "--backup_dir=/mnt/b", "--patroni-config=/etc/p.yml", "--scope=s", "--datadir=/d"},
			want: Args{Scope: "s", DataDir: "/d", BackupDir: "/mnt/b", PatroniConfig: "/etc/p.yml", Extra: map[string]string{}},
		},
		{
			name: "human form with separate values",
			argv: []string{"--scope", "s", "--datadir", "/d", "--keep-data"},
			want: Args{Scope: "s", DataDir: "/d", KeepData: true, Extra: map[string]string{}},
		},
		{
			name: "connstring with escaped spaces stays one value",
			argv: []string{"--scope=s", "--datadir=/d", `--connstring=host=h user=a\ b sslmode=require`},
			want: Args{Scope: "s", DataDir: "/d", ConnString: `host=h user=a\ b sslmode=require`, Extra: map[string]string{}},
		},
		{name: "missing datadir", argv: []string{"--scope=s"}, code: ExitUsage},
		{name: "nothing", argv: nil, code: ExitUsage},
		{name: "bare word", argv: []string{"--scope=s", "--datadir=/d", "clone"}, code: ExitUsage},
		{name: "bad keep_data", argv: []string{"--scope=s", "--datadir=/d", "--keep_data=maybe"}, code: ExitUsage},
		{name: "scope with a slash", argv: []string{"--scope=../x", "--datadir=/d"}, code: ExitUsage},
		{name: "scope twice", argv: []string{"--scope=a", "--scope=b", "--datadir=/d"}, code: ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs(tc.argv)
			if c := CodeOf(err); c != tc.code {
				t.Fatalf("exit %d (%v), want %d", c, err, tc.code)
			}
			if tc.code == 0 && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	files := map[string][]byte{"PG_VERSION": []byte("15\n"), "global/pg_control": pgControl(42)}
	good := makeManifest(files, 1, 0x2000028, 0x2000100)
	m, err := ParseManifest(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files["PG_VERSION"].Size != 3 || m.WAL[0].End != 0x2000100 {
		t.Fatalf("parsed %+v", m)
	}
	tests := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"size changed", func(b []byte) []byte { return bytes.Replace(b, []byte(`"Size": 3`), []byte(`"Size": 4`), 1) }},
		{"checksum changed", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"Manifest-Checksum": "`), []byte(`"Manifest-Checksum": "0`), 1)
		}},
		{"no checksum", func(b []byte) []byte { return bytes.Replace(b, []byte(`"Manifest-Checksum"`), []byte(`"X"`), 1) }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"trailing garbage", func(b []byte) []byte { return append(b, "{}"...) }},
		{"path escapes", func(b []byte) []byte {
			fs := map[string][]byte{"../etc/passwd": []byte("x")}
			return makeManifest(fs, 1, 1, 2)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest(tc.edit(append([]byte(nil), good...)))
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("err %v, want ErrManifest", err)
			}
		})
	}
}

// PostgreSQL memcpys its native uint32: CRC 0x128350a4 appears as "a4508312".
func TestCRC32CByteOrder(t *testing.T) {
	if got := fmt.Sprintf("%x", crc32cBytes(0x128350a4)); got != "a4508312" {
		t.Fatalf("got %s", got)
	}
}

func TestControlAndWALHeader(t *testing.T) {
	cd, err := ParseControl(pgControl(7712150698949318755))
	if err != nil || cd.SystemID != 7712150698949318755 || cd.ControlVersion != 1300 {
		t.Fatalf("%+v %v", cd, err)
	}
	bad := pgControl(1)
	bad[0] ^= 1
	if _, err := ParseControl(bad); err == nil {
		t.Fatal("corrupt pg_control accepted")
	}
	wh, err := ParseWALHeader(walSegment(99, 3, 0x1000000))
	if err != nil || wh.SystemID != 99 || wh.Timeline != 3 || wh.SegSize != testSegSize || wh.MajorVersion() != 15 {
		t.Fatalf("%+v %v", wh, err)
	}
	if got := SegmentName(1, 0x2000100, 16<<20); got != "000000010000000000000002" {
		t.Fatalf("segment name %s", got)
	}
	if got := SegmentName(2, 0x1_0300_0000, 16<<20); got != "000000020000000100000003" {
		t.Fatalf("segment name %s", got)
	}
	if l, err := ParseLSN("1/A0000028"); err != nil || l.String() != "1/A0000028" {
		t.Fatalf("LSN %v %v", l, err)
	}
}

func TestExitCodes(t *testing.T) {
	seen := map[ExitCode]bool{}
	for _, c := range ExitCodes() {
		if seen[c] || c.String() == "" {
			t.Fatalf("code %d duplicated or unnamed", c)
		}
		seen[c] = true
		if c != ExitOK && !strings.Contains(ExitCodeHelp(), fmt.Sprintf("%d  %s", int(c), c)) {
			t.Fatalf("code %d missing from help", c)
		}
	}
	ctx := context.Background()
	tests := []struct {
		err  error
		want ExitCode
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitFailure},
		{failf(ExitWALGone, "x"), ExitWALGone},
		{fmt.Errorf("wrapped: %w", failf(ExitOtherCluster, "x")), ExitOtherCluster},
		{fail(ExitIO, failf(ExitVerify, "inner wins")), ExitVerify},
	}
	for _, tc := range tests {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	classes := []struct {
		err  error
		want ExitCode
	}{
		{fmt.Errorf("x: %w", ErrChecksum), ExitVerify},
		{fmt.Errorf("x: %w", ErrUnsafeArchive), ExitVerify},
		{ioErr{errors.New("disk")}, ExitIO},
		{fmt.Errorf("writing: %w", os.NewSyscallError("write", errNoSpace)), ExitIO},
		{errors.New("zstd: corrupt block"), ExitVerify},
	}
	for _, tc := range classes {
		if got := classify(ctx, tc.err); got != tc.want {
			t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	// Before anything is written: the storage failing is 7, the backup 4.
	backupErrs := []struct {
		err  error
		want ExitCode
	}{
		{&os.PathError{Op: "open", Path: "backup_manifest", Err: syscall.EIO}, ExitIO},
		{&os.PathError{Op: "open", Path: "backup_manifest", Err: syscall.EACCES}, ExitIO},
		{ioErr{errors.New("a gzip backup needs the igzip or pigz or gzip program")}, ExitIO},
		{&os.PathError{Op: "open", Path: "backup_manifest", Err: syscall.ENOENT}, ExitVerify},
		{fmt.Errorf("pg_wal.tar: %w", ErrUnsafeArchive), ExitVerify},
		{errors.New("zstd: exit status 1: Data corruption detected"), ExitVerify},
	}
	for _, tc := range backupErrs {
		if got := CodeOf(backupErr("/b/s/1", tc.err)); got != tc.want {
			t.Errorf("backupErr(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := classify(cctx, errors.New("x")); got != ExitFailure {
		t.Errorf("cancelled: %d", got)
	}
}

func TestExtractRejectsMaliciousTars(t *testing.T) {
	man := &Manifest{Files: map[string]ManifestFile{
		"PG_VERSION": {Path: "PG_VERSION", Size: 3, Algorithm: "CRC32C", Checksum: crc32cBytes(0x3)},
		"a":          {Path: "a", Size: 1, Algorithm: "NONE"},
	}}
	body := []byte("evil")
	tests := []struct {
		name    string
		entries []entry
		wal     bool
	}{
		{"dotdot", []entry{{name: "../evil", typ: tar.TypeReg, body: body}}, false},
		{"nested dotdot", []entry{{name: "base/../../evil", typ: tar.TypeReg, body: body}}, false},
		{"absolute", []entry{{name: "/tmp/evil", typ: tar.TypeReg, body: body}}, false},
		{"symlink escape then write through it", []entry{{name: "a", typ: tar.TypeSymlink, linkname: "/tmp"}, {name: "a/evil", typ: tar.TypeReg, body: body}}, false},
		{"hardlink", []entry{{name: "a", typ: tar.TypeLink, linkname: "/etc/passwd"}}, false},
		{"char device", []entry{{name: "a", typ: tar.TypeChar}}, false},
		{"fifo", []entry{{name: "a", typ: tar.TypeFifo}}, false},
		{"not in the manifest", []entry{{name: "evil", typ: tar.TypeReg, body: body}}, false},
		{"size differs from the manifest", []entry{{name: "a", typ: tar.TypeReg, body: body}}, false},
		{"file then directory", []entry{{name: "a", typ: tar.TypeReg, body: []byte("x")}, {name: "a/", typ: tar.TypeDir}}, false},
		{"file twice", []entry{{name: "a", typ: tar.TypeReg, body: []byte("x")}, {name: "a", typ: tar.TypeReg, body: []byte("x")}}, false},
		{"checksum mismatch", []entry{{name: "PG_VERSION", typ: tar.TypeReg, body: []byte("16\n")}}, false},
		{"backslash name", []entry{{name: `..\evil`, typ: tar.TypeReg, body: body}}, false},
		{"into a pre-existing lost+found", []entry{{name: "lost+found/a", typ: tar.TypeReg, body: []byte("x")}}, false},
		{"WAL: not a segment name", []entry{{name: "evil", typ: tar.TypeReg, body: body}}, true},
		{"WAL: dotdot", []entry{{name: "../000000010000000000000001", typ: tar.TypeReg, body: walSegment(1, 1, 0)}}, true},
		{"WAL: symlink", []entry{{name: "000000010000000000000001", typ: tar.TypeSymlink, linkname: "/etc"}}, true},
		{"WAL: wrong system", []entry{{name: "000000010000000000000001", typ: tar.TypeReg, body: walSegment(2, 1, 0)}}, true},
		{"WAL: small segment", []entry{{name: "000000010000000000000001", typ: tar.TypeReg, body: body}}, true},
		// makeTar's output cut inside PG_VERSION's body (below): not a short archive.
		{"truncated inside an entry", []entry{{name: "PG_VERSION", typ: tar.TypeReg, body: []byte("15\n")}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			data := filepath.Join(parent, "data")
			os.MkdirAll(filepath.Join(data, "lost+found"), 0o700)
			root, err := os.OpenRoot(data)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			x := newExtractor(root, man, map[string]bool{"lost+found": true})
			raw := makeTar(t, tc.entries)
			if strings.HasPrefix(tc.name, "truncated") {
				raw = raw[:512+1] // the header and one byte of the body
			}
			r := bytes.NewReader(raw)
			if tc.wal {
				err = x.extractWAL(r, 1)
			} else {
				err = x.extractBase(r)
			}
			t.Log(err)
			if !errors.Is(err, ErrUnsafeArchive) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("err %v, want a refusal", err)
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 || ents[0].Name() != "data" {
				t.Fatalf("something was written next to the data directory: %v", ents)
			}
			if _, err := os.Lstat("/tmp/evil"); err == nil {
				t.Fatal("/tmp/evil exists")
			}
			filepath.Walk(data, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode()&(os.ModeSymlink|os.ModeDevice|os.ModeNamedPipe) != 0 {
					t.Errorf("%s is %v", p, fi.Mode())
				}
				return nil
			})
		})
	}
}

// TestDecompressionBombThroughExtractFile: an archive that expands past
// what its manifest allows is refused while it is being read.
func TestDecompressionBombThroughExtractFile(t *testing.T) {
	zeros := make([]byte, 4<<20)
	raw := makeTar(t, []entry{{name: "a", typ: tar.TypeReg, body: zeros}})
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	if z.Len() > 64<<10 {
		t.Fatalf("fixture: %d bytes compressed", z.Len())
	}
	f := filepath.Join(t.TempDir(), "base.tar.gz")
	if err := os.WriteFile(f, z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	read := 0
	err := extractFile(context.Background(), DefaultDecompressors(), nil, f, 1<<20, func(r io.Reader) error {
		n, err := io.Copy(io.Discard, r)
		read = int(n)
		return err
	})
	if !errors.Is(err, ErrUnsafeArchive) || read > 1<<20 {
		t.Fatalf("read %d bytes of a 4 MB expansion capped at 1 MB: %v", read, err)
	}
}

func TestDecompressionBombCapped(t *testing.T) {
	r := &limitedReader{r: bytes.NewReader(make([]byte, 100)), n: 10}
	buf := make([]byte, 100)
	n, _ := r.Read(buf)
	if _, err := r.Read(buf); n != 10 || !errors.Is(err, ErrUnsafeArchive) {
		t.Fatalf("read %d then %v", n, err)
	}
}

func TestRestoreSynthetic(t *testing.T) {
	const sysid = 7712150698949318755
	tests := []struct {
		name    string
		leader  *fakeLeader
		dcs     uint64           // 0: no DCS
		backup  func(dir string) // nil: none
		prepare func(t *testing.T, data string)
		keep    bool
		want    ExitCode
		adopted bool
		check   func(t *testing.T, data string) // after a restore
	}{
		{name: "restores", leader: &fakeLeader{sysid: sysid}, backup: good(sysid)},
		{name: "restores with DCS agreeing", leader: &fakeLeader{sysid: sysid}, dcs: sysid, backup: good(sysid)},
		{name: "restores into an empty mount point", leader: &fakeLeader{sysid: sysid}, backup: good(sysid), prepare: mountPoint},
		{name: "no backup", leader: &fakeLeader{sysid: sysid}, want: ExitNoBackup},
		{name: "backup of another cluster", leader: &fakeLeader{sysid: sysid}, backup: good(1234), want: ExitOtherCluster, prepare: mountPoint},
		{name: "DCS and leader disagree", leader: &fakeLeader{sysid: sysid}, dcs: 99, backup: good(sysid), want: ExitOtherCluster},
		{name: "WAL gone", leader: &fakeLeader{sysid: sysid, walGone: true}, backup: good(sysid), want: ExitWALGone, prepare: mountPoint},
		{name: "checksum", leader: &fakeLeader{sysid: sysid}, backup: func(dir string) {
			s := newSynth(sysid)
			s.base[4].body = bytes.Repeat([]byte("y"), 8192)
			s.write(t, dir, "s", "b1")
		}, want: ExitVerify, prepare: mountPoint},
		{name: "a flipped byte in a WAL record", leader: &fakeLeader{sysid: sysid}, backup: func(dir string) {
			s := newSynth(sysid)
			s.wal = func(seg []byte) { seg[0x28+24+10] ^= 0x20 } // in the first record's data
			s.write(t, dir, "s", "b1")
		}, want: ExitVerify, prepare: mountPoint},
		{name: "missing file", leader: &fakeLeader{sysid: sysid}, backup: func(dir string) {
			s := newSynth(sysid)
			s.base = append(s.base[:7], s.base[8:]...) // drop postgresql.conf
			s.write(t, dir, "s", "b1")
		}, want: ExitVerify},
		{name: "not empty", leader: &fakeLeader{sysid: sysid}, backup: good(sysid), prepare: func(t *testing.T, d string) {
			os.MkdirAll(d, 0o700)
			os.WriteFile(filepath.Join(d, "somefile"), nil, 0o600)
		}, want: ExitNotEmpty},
		{name: "keep_data adopts this cluster", leader: &fakeLeader{sysid: sysid}, keep: true, prepare: existing(sysid, false), adopted: true},
		// keep_data and not adoptable: replaced by the backup, once the pre-flight passed.
		{name: "keep_data replaces a former primary (may have diverged)", leader: &fakeLeader{sysid: sysid}, keep: true, backup: good(sysid), prepare: withStale(existingState(sysid, false, 1))},
		{name: "keep_data replaces another cluster", leader: &fakeLeader{sysid: sysid}, keep: true, backup: good(sysid), prepare: withStale(existing(5, false))},
		{name: "keep_data does not replace what is no data directory", leader: &fakeLeader{sysid: sysid}, keep: true, backup: good(sysid), prepare: withStale(func(*testing.T, string) {}), want: ExitNotEmpty},
		{name: "keep_data does not replace a parent of data directories", leader: &fakeLeader{sysid: sysid}, keep: true, backup: good(sysid),
			prepare: func(t *testing.T, d string) {
				existing(5, false)(t, d)
				existing(6, false)(t, filepath.Join(d, "main"))
			}, want: ExitNotEmpty},
		{name: "keep_data replaces nothing when there is no backup", leader: &fakeLeader{sysid: sysid}, keep: true, prepare: existing(5, false), want: ExitNoBackup},
		{name: "keep_data replaces nothing when the WAL is gone", leader: &fakeLeader{sysid: sysid, walGone: true}, keep: true, backup: good(sysid), prepare: existing(5, false), want: ExitWALGone},
		{name: "keep_data refuses a live postmaster", leader: &fakeLeader{sysid: sysid}, keep: true, backup: good(sysid), prepare: existing(sysid, true), want: ExitNotEmpty},
		// A restore killed after pg_control was written: adoptable to the eye, but incomplete.
		{name: "keep_data restores an interrupted restore again, never adopts it", leader: &fakeLeader{sysid: sysid}, keep: true, backup: good(sysid),
			prepare: interrupted(sysid, false, markerHeader)},
		{name: "an interrupted restore is restored again without keep_data", leader: &fakeLeader{sysid: sysid}, backup: good(sysid),
			prepare: interrupted(sysid, false, markerHeader)},
		{name: "an interrupted restore with a live postmaster is refused", leader: &fakeLeader{sysid: sysid}, keep: true, backup: good(sysid),
			prepare: interrupted(sysid, true, markerHeader), want: ExitNotEmpty},
		{name: "an interrupted restore's dotfiles go, what was there before it stays", leader: &fakeLeader{sysid: sysid}, backup: good(sysid),
			prepare: func(t *testing.T, d string) {
				interrupted(sysid, false, markerHeader+"kept\t.snapshot\n")(t, d)
				os.WriteFile(filepath.Join(d, ".snapshot"), []byte("x"), 0o644)
				os.WriteFile(filepath.Join(d, ".from-the-restore"), []byte("x"), 0o600)
			},
			check: func(t *testing.T, d string) {
				if _, err := os.Stat(filepath.Join(d, ".snapshot")); err != nil {
					t.Errorf("a dotfile from before the interrupted restore was removed: %v", err)
				}
				if _, err := os.Stat(filepath.Join(d, ".from-the-restore")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the interrupted restore's dotfile survived: %v", err)
				}
			}},
		{name: "a restore marker pghook did not write is refused", leader: &fakeLeader{sysid: sysid}, keep: true, backup: good(sysid),
			prepare: interrupted(sysid, false, "something else\n"), want: ExitNotEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			parent := t.TempDir()
			data := filepath.Join(parent, "pg", "data")
			if tc.backup != nil {
				tc.backup(dir)
			}
			if tc.prepare != nil {
				tc.prepare(t, data)
			}
			before := treeOf(t, parent)
			opts := RestoreOptions{Args: Args{Scope: "s", DataDir: data, ConnString: "host=x", KeepData: tc.keep}, BackupDir: dir,
				Dial: func(context.Context, string) (Leader, error) { return tc.leader, nil }, Log: zerolog.Nop()}
			if tc.dcs != 0 {
				opts.ClusterSystemID = func(context.Context) (uint64, bool, error) { return tc.dcs, true, nil }
			}
			res, err := Restore(context.Background(), opts)
			t.Logf("exit %d: %v", CodeOf(err), err)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.want)
			}
			if res.Adopted != tc.adopted {
				t.Fatalf("adopted %v", res.Adopted)
			}
			if tc.want != 0 || tc.adopted {
				if after := treeOf(t, parent); after != before {
					t.Fatalf("data directory changed:\nbefore\n%s\nafter\n%s", before, after)
				}
				return
			}
			for n, want := range newSynth(sysid).files {
				got, err := os.ReadFile(filepath.Join(data, n))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: %v", n, err)
				}
				fi, _ := os.Stat(filepath.Join(data, n))
				if fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s mode %v", n, fi.Mode())
				}
			}
			if fi, err := os.Stat(filepath.Join(data, "pg_wal", "000000010000000000000001")); err != nil || fi.Size() != testSegSize {
				t.Fatalf("WAL segment: %v", err)
			}
			if fi, _ := os.Stat(data); fi.Mode().Perm() != 0o700 {
				t.Fatalf("data dir mode %v", fi.Mode())
			}
			if _, err := os.Lstat(filepath.Join(data, restoringMarker)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s left after a complete restore: %v", restoringMarker, err)
			}
			if _, err := os.Lstat(filepath.Join(data, staleFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a file of the directory's previous contents survived: %v", err)
			}
			if tc.check != nil {
				tc.check(t, data)
			}
			// primary backup: the standby next needs the segment after the end LSN's.
			if len(tc.leader.probed) != 1 || tc.leader.probed[0] != 0x200000 {
				t.Fatalf("probed %v", tc.leader.probed)
			}
		})
	}
}

func good(sysid uint64) func(string) {
	return func(dir string) { newSynth(sysid).write(nil, dir, "s", "b1") }
}

// mountPoint makes the data directory exist, empty but for lost+found
// and a dotfile, with mode 0755 (restored on failure).
func mountPoint(t *testing.T, d string) {
	os.MkdirAll(filepath.Join(d, "lost+found"), 0o700)
	os.WriteFile(filepath.Join(d, ".snapshot"), []byte("x"), 0o644)
	os.Chmod(d, 0o755)
}

// existing makes a data directory holding system sysid.
func existing(sysid uint64, live bool) func(*testing.T, string) { return existingState(sysid, live, 2) }

// staleFile is a file no backup has: a restore that replaced a directory
// must not leave it.
const staleFile = "stale-from-before"

// withStale adds staleFile to what prepare lays.
func withStale(prepare func(*testing.T, string)) func(*testing.T, string) {
	return func(t *testing.T, d string) {
		prepare(t, d)
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, staleFile), []byte("x"), 0o600)
	}
}

// interrupted lays what a restore killed after base.tar's pg_control left:
// an adoptable-looking copy of sysid (backup_label, pg_control), a stray
// file, and the restore marker starting with header.
func interrupted(sysid uint64, live bool, header string) func(*testing.T, string) {
	return func(t *testing.T, d string) {
		existing(sysid, live)(t, d)
		os.WriteFile(filepath.Join(d, "backup_label"), []byte("START WAL LOCATION: 0/2000028\n"), 0o600)
		os.WriteFile(filepath.Join(d, staleFile), []byte("x"), 0o600)
		os.WriteFile(filepath.Join(d, restoringMarker), []byte(header), 0o600)
	}
}

// existingState lays a data directory whose pg_control has the given state.
func existingState(sysid uint64, live bool, state uint32) func(*testing.T, string) {
	return func(t *testing.T, d string) {
		os.MkdirAll(filepath.Join(d, "global"), 0o700)
		os.WriteFile(filepath.Join(d, "global", "pg_control"), pgControlState(sysid, state), 0o600)
		os.WriteFile(filepath.Join(d, "PG_VERSION"), []byte("15\n"), 0o600)
		if live {
			os.WriteFile(filepath.Join(d, "postmaster.pid"), []byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), d)), 0o600)
		}
	}
}

// TestDecompressors runs the real zstd, lz4 and gzip programs: a good
// stream decompresses; a corrupt or truncated one is an error, not a clean
// EOF (which the tar walker could take for a short archive).
func TestDecompressors(t *testing.T) {
	payload := bytes.Repeat([]byte("pghook replica "), 50000)
	for comp, argv := range map[string][]string{"zstd": {"zstd", "-q", "-c"}, "lz4": {"lz4", "-q", "-c"}, "gzip": {"gzip", "-c"}} {
		t.Run(comp, func(t *testing.T) {
			if _, err := exec.LookPath(argv[0]); err != nil {
				t.Skipf("%s not installed", argv[0])
			}
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdin = bytes.NewReader(payload)
			packed, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			rc, err := DefaultDecompressors().decompress(bytes.NewReader(packed), comp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("round trip: %d bytes, err %v", len(got), err)
			}
			bad := append([]byte(nil), packed...)
			for i := len(bad) / 2; i < len(bad)/2+16 && i < len(bad); i++ {
				bad[i] ^= 0xff
			}
			for name, in := range map[string][]byte{"corrupt": bad, "truncated": packed[:len(packed)/2]} {
				rc, err := DefaultDecompressors().decompress(bytes.NewReader(in), comp)
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.ReadAll(rc)
				rc.Close()
				if err == nil {
					t.Fatalf("%s stream read without error", name)
				}
				if code := classify(context.Background(), err); code != ExitVerify {
					t.Fatalf("%s stream: exit %d, want %d (verification failed): %v", name, code, ExitVerify, err)
				}
			}
		})
	}
}

// TestDecompressorPrograms runs every program of each compression (pigz
// and gzip for gzip), fed from an *os.File and from a plain reader, and
// checks that a failed read of the backup is the error, as an I/O error.
func TestDecompressorPrograms(t *testing.T) {
	payload := bytes.Repeat([]byte("pghook replica "), 200000)
	for comp, progs := range DefaultDecompressors() {
		for _, argv := range progs {
			t.Run(comp+"/"+argv[0], func(t *testing.T) {
				if _, err := exec.LookPath(argv[0]); err != nil && argv[0] != builtinLZ4 {
					t.Skipf("%s not installed", argv[0])
				}
				only := Decompressors{comp: {argv}}
				cmp := map[string]string{"zstd": "zstd -q -c", "lz4": "lz4 -q -c", "gzip": "gzip -c"}[comp]
				cmd := exec.Command("sh", "-c", cmp)
				cmd.Stdin = bytes.NewReader(payload)
				packed, err := cmd.Output()
				if err != nil {
					t.Fatal(err)
				}
				f := filepath.Join(t.TempDir(), "x")
				os.WriteFile(f, packed, 0o600)
				file, _ := os.Open(f)
				defer file.Close()
				for name, in := range map[string]io.Reader{"file": file, "reader": bytes.NewReader(packed)} {
					rc, err := only.decompress(in, comp)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, payload) {
						t.Fatalf("%s: %d bytes, err %v", name, len(got), err)
					}
				}
				broken := io.MultiReader(bytes.NewReader(packed[:len(packed)/3]), errReader{ioErr{errors.New("backup volume gone")}})
				rc, err := only.decompress(broken, comp)
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.ReadAll(rc)
				rc.Close()
				if code := classify(context.Background(), err); code != ExitIO || !strings.Contains(fmt.Sprint(err), "backup volume gone") {
					t.Fatalf("read error: exit %d, want %d (I/O): %v", code, ExitIO, err)
				}
			})
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestAsyncWriterError: a write that fails in the writer goroutine is
// returned (as an I/O error) by the next call or by finish.
func TestAsyncWriterError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ro")
	os.WriteFile(p, nil, 0o600)
	f, err := os.Open(p) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	w := newAsyncWriter()
	buf := w.buffer()
	w.write(f, "ro", 10, buf, 10)
	w.close(f, "ro")
	err = w.finish()
	if code := classify(context.Background(), err); code != ExitIO {
		t.Fatalf("exit %d, want %d: %v", code, ExitIO, err)
	}
}

// TestProbeSkippedOnCurrentSegment: when the segment after the backup is
// the one the leader is writing, it exists: no probe (which would only
// wait for WAL on an idle leader). One segment later, the probe runs.
func TestProbeSkippedOnCurrentSegment(t *testing.T) {
	const sysid = 7712150698949318755
	tests := []struct {
		pos    LSN
		probed bool
	}{
		{pos: 0x200000, probed: false}, // start of the segment after the backup (0x200000)
		{pos: 0x2fffff, probed: false},
		{pos: 0x300000, probed: true},
		{pos: 0x1fffff, probed: true}, // behind the backup: not the same segment
	}
	for _, tc := range tests {
		t.Run(tc.pos.String(), func(t *testing.T) {
			dir, data := t.TempDir(), filepath.Join(t.TempDir(), "data")
			newSynth(sysid).write(t, dir, "s", "b1")
			leader := &fakeLeader{sysid: sysid, xlogpos: tc.pos, walGone: true}
			_, err := Restore(context.Background(), RestoreOptions{Args: Args{Scope: "s", DataDir: data, ConnString: "host=x"}, BackupDir: dir,
				Dial: func(context.Context, string) (Leader, error) { return leader, nil }, Log: zerolog.Nop()})
			if probed := len(leader.probed) > 0; probed != tc.probed {
				t.Fatalf("probed %v, want %v", leader.probed, tc.probed)
			}
			// walGone: a probe fails the restore; no probe restores.
			if want := map[bool]ExitCode{true: ExitWALGone, false: ExitOK}[tc.probed]; CodeOf(err) != want {
				t.Fatalf("exit %d (%v), want %d", CodeOf(err), err, want)
			}
		})
	}
}

// TestDecompressorChoice: for gzip the first of igzip, pigz, gzip found on
// PATH is used; with none, the error names all three and is an I/O error.
func TestDecompressorChoice(t *testing.T) {
	tests := []struct {
		installed []string
		comp      string
		want      string // "": none found
	}{
		{installed: []string{"igzip", "pigz", "gzip"}, comp: "gzip", want: "igzip"},
		{installed: []string{"pigz", "gzip"}, comp: "gzip", want: "pigz"},
		{installed: []string{"igzip", "gzip"}, comp: "gzip", want: "igzip"},
		{installed: []string{"gzip"}, comp: "gzip", want: "gzip"},
		{installed: []string{"zstd"}, comp: "gzip", want: ""},
		{installed: []string{"zstd", "igzip"}, comp: "zstd", want: "zstd"},
		// lz4 is decoded in the process, with or without the program.
		{installed: []string{"lz4"}, comp: "lz4", want: builtinLZ4},
		{installed: nil, comp: "lz4", want: builtinLZ4},
	}
	for _, tc := range tests {
		t.Run(tc.comp+"/"+strings.Join(tc.installed, ","), func(t *testing.T) {
			bin := t.TempDir()
			for _, p := range tc.installed {
				if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", bin)
			path, argv, err := DefaultDecompressors().look(tc.comp)
			if tc.want == "" {
				if err == nil || !errors.As(err, new(ioErr)) || !strings.Contains(err.Error(), "igzip or pigz or gzip") {
					t.Fatalf("got %s %v, err %v; want an I/O error naming igzip, pigz and gzip", path, argv, err)
				}
				return
			}
			wantPath := filepath.Join(bin, tc.want)
			if tc.want == builtinLZ4 {
				wantPath = ""
			}
			if err != nil || path != wantPath || argv[0] != tc.want {
				t.Fatalf("got %s %v, err %v; want %s", path, argv, err, tc.want)
			}
		})
	}
}

// TestGzipTrailerVerified restores a gzip backup whose gzip trailer (the
// CRC-32 or the length of the uncompressed data) was altered, with each
// gzip program installed: the tar inside is intact and ends before the
// trailer, so only the decompressor can tell, and the restore must still
// fail verification (exit ExitVerify) and leave nothing behind.
func TestGzipTrailerVerified(t *testing.T) {
	const sysid = 7712150698949318755
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("gzip not installed")
	}
	flip := func(fromEnd int) func([]byte) { return func(b []byte) { b[len(b)-fromEnd] ^= 0x01 } }
	cases := []struct {
		name  string
		alter func([]byte) // nil: intact
		want  ExitCode
	}{
		{name: "intact", want: ExitOK},
		{name: "CRC-32", alter: flip(8), want: ExitVerify},
		{name: "length", alter: flip(1), want: ExitVerify},
	}
	for _, argv := range DefaultDecompressors()["gzip"] {
		for _, tc := range cases {
			t.Run(argv[0]+"/"+tc.name, func(t *testing.T) {
				if _, err := exec.LookPath(argv[0]); err != nil {
					t.Skipf("%s not installed", argv[0])
				}
				dir, parent := t.TempDir(), t.TempDir()
				data := filepath.Join(parent, "data")
				bdir := newSynth(sysid).write(t, dir, "s", "b1")
				plain, err := os.ReadFile(filepath.Join(bdir, "base.tar"))
				if err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command("gzip", "-c")
				cmd.Stdin = bytes.NewReader(plain)
				packed, err := cmd.Output()
				if err != nil {
					t.Fatal(err)
				}
				if tc.alter != nil {
					tc.alter(packed)
				}
				os.Remove(filepath.Join(bdir, "base.tar"))
				if err := os.WriteFile(filepath.Join(bdir, "base.tar.gz"), packed, 0o600); err != nil {
					t.Fatal(err)
				}
				before := treeOf(t, parent)
				leader := &fakeLeader{sysid: sysid}
				_, err = Restore(context.Background(), RestoreOptions{Args: Args{Scope: "s", DataDir: data, ConnString: "host=x"}, BackupDir: dir,
					Dial:          func(context.Context, string) (Leader, error) { return leader, nil },
					Decompressors: Decompressors{"gzip": {argv}}, Log: zerolog.Nop()})
				t.Logf("exit %d: %v", CodeOf(err), err)
				if CodeOf(err) != tc.want {
					t.Fatalf("exit %d (%v), want %d", CodeOf(err), err, tc.want)
				}
				if tc.want != ExitOK {
					if after := treeOf(t, parent); after != before {
						t.Fatalf("data directory left behind:\n%s", after)
					}
				}
			})
		}
	}
}

// TestWriteFileSizes writes files of sizes around the O_DIRECT threshold
// and alignment (direct blocks, then a buffered tail) through writeFile
// and reads them back byte for byte, with the checksum writeFile computed.
func TestWriteFileSizes(t *testing.T) {
	sizes := []int64{0, 1, directAlign - 1, directMin - 1, directMin, directMin + 1, directMin + directAlign,
		3*writeBufSize + 100, 5 * writeBufSize, 5*writeBufSize - directAlign + 1}
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			x := newExtractor(root, &Manifest{}, nil)
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i*7 + i>>12)
			}
			w := newAsyncWriter()
			h, _ := newHash("CRC32C")
			// iotest-style small reads: the blocks are filled by ReadFull
			head, err := x.writeFile(w, "d/f", &chunkReader{b: want, n: 100_000}, size, h)
			if err := drain(w, err); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "d", "f"))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes (err %v), want %d identical", len(got), err, size)
			}
			if !bytes.Equal(head, want[:min(int64(len(want)), 64)]) && size > 0 {
				t.Fatalf("head %x", head)
			}
			wantSum := crc32cOf(want)
			if gotSum := sumOf("CRC32C", h); !bytes.Equal(gotSum, wantSum) {
				t.Fatalf("CRC32C %x, want %x", gotSum, wantSum)
			}
			fi, _ := os.Stat(filepath.Join(dir, "d", "f"))
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v", fi.Mode())
			}
		})
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

func crc32cOf(b []byte) []byte {
	h, _ := newHash("CRC32C")
	h.Write(b)
	return sumOf("CRC32C", h)
}
