package replica

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestParseTablespaceMap(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Tablespace
		bad  bool
	}{
		{name: "PostgreSQL 15's output", in: "16384 /tmp/tsx/ts1\n", want: []Tablespace{{"16384", "/tmp/tsx/ts1"}}},
		{name: "two, no final newline", in: "16384 /a\n16385 /b c", want: []Tablespace{{"16384", "/a"}, {"16385", "/b c"}}},
		{name: "escaped newline and backslash", in: "16384 /a\\\nb\\\\c\n", want: []Tablespace{{"16384", "/a\nb\\c"}}},
		{name: "empty", in: "", want: nil},
		{name: "relative path", in: "16384 ts1\n", bad: true},
		{name: "oid not a number", in: "../x /a\n", bad: true},
		{name: "no path", in: "16384\n", bad: true},
		{name: "oid twice", in: "16384 /a\n16384 /b\n", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTablespaceMap([]byte(tc.in))
			if (err != nil) != tc.bad {
				t.Fatalf("err %v, want error %v", err, tc.bad)
			}
			if !tc.bad && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q want %q", got, tc.want)
			}
			if !tc.bad {
				back, err := ParseTablespaceMap(FormatTablespaceMap(got))
				if err != nil || !reflect.DeepEqual(back, got) {
					t.Fatalf("round trip: %q %v", back, err)
				}
			}
		})
	}
}

func TestParseTablespaceMapping(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		bad  bool
	}{
		{in: "/srv/ts1=/srv/replica/ts1", want: map[string]string{"/srv/ts1": "/srv/replica/ts1"}},
		{in: " /a/ = /b , /c=/d/../e,", want: map[string]string{"/a": "/b", "/c": "/e"}},
		{in: `/with\=eq\,comma=/x`, want: map[string]string{"/with=eq,comma": "/x"}},
		{in: "", want: map[string]string{}},
		{in: "/a", bad: true},
		{in: "/a=", bad: true},
		{in: "a=/b", bad: true},
		{in: "/a=b", bad: true},
		{in: "/a=/b=/c", bad: true},
		{in: "/a=/b,/a=/c", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTablespaceMapping(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("err %v, want error %v", err, tc.bad)
			}
			if !tc.bad && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v want %v", got, tc.want)
			}
		})
	}
}

func TestParseArgsTablespaceMapping(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want map[string]string
		code ExitCode
	}{
		{name: "Patroni method key", argv: []string{"--tablespace_mapping=/a=/b,/c=/d", "--scope=s", "--datadir=/x"},
			want: map[string]string{"/a": "/b", "/c": "/d"}},
		{name: "repeated, dashes", argv: []string{"--tablespace-mapping", "/a=/b", "--tablespace_mapping=/c=/d", "--scope=s", "--datadir=/x"},
			want: map[string]string{"/a": "/b", "/c": "/d"}},
		{name: "conflicting repeat", argv: []string{"--tablespace_mapping=/a=/b", "--tablespace_mapping=/a=/c", "--scope=s", "--datadir=/x"}, code: ExitUsage},
		{name: "relative", argv: []string{"--tablespace_mapping=/a=b", "--scope=s", "--datadir=/x"}, code: ExitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs(tc.argv)
			if c := CodeOf(err); c != tc.code {
				t.Fatalf("exit %d (%v), want %d", c, err, tc.code)
			}
			if tc.code == 0 && !reflect.DeepEqual(got.TablespaceMapping, tc.want) {
				t.Fatalf("got %v want %v", got.TablespaceMapping, tc.want)
			}
		})
	}
}

const tsFile = "PG_15_202209061/5/16385"

// withTablespace adds tablespace 16384, backed up from tsPath, to a
// synthetic backup and returns the entries of its 16384.tar.
func withTablespace(s *synthBackup, tsPath string) []entry {
	tsmap := FormatTablespaceMap([]Tablespace{{OID: "16384", Path: tsPath}})
	s.files["tablespace_map"] = tsmap
	body := bytes.Repeat([]byte("t"), 8192)
	s.files["pg_tblspc/16384/"+tsFile] = body
	base := append([]entry{s.base[0], {name: "tablespace_map", typ: tar.TypeReg, body: tsmap}}, s.base[1:]...)
	s.base = append(base, entry{name: "pg_tblspc/", typ: tar.TypeDir})
	return []entry{
		{name: "PG_15_202209061/", typ: tar.TypeDir},
		{name: "PG_15_202209061/5/", typ: tar.TypeDir},
		{name: tsFile, typ: tar.TypeReg, body: body},
	}
}

// interruptedWithTablespace lays a restore killed while writing into the
// tablespace directory ts: the marker lists ts, which holds a partial PG_ directory.
func interruptedWithTablespace(t *testing.T, data, ts string) {
	os.MkdirAll(filepath.Join(data, "global"), 0o700)
	os.WriteFile(filepath.Join(data, "global", "pg_control"), []byte("partial"), 0o600)
	os.WriteFile(filepath.Join(data, restoringMarker), []byte(markerHeader+"tablespace\t"+ts+"\tPG_15_202209061\n"), 0o600)
	os.MkdirAll(filepath.Join(ts, "PG_15_202209061", "5"), 0o700)
	os.WriteFile(filepath.Join(ts, "PG_15_202209061", "5", "partial"), []byte("x"), 0o600)
}

func TestRestoreTablespacesSynthetic(t *testing.T) {
	const sysid = 7712150698949318755
	type paths struct{ data, tsOld, tsNew string }
	tests := []struct {
		name    string
		mapping func(p paths) map[string]string // pghook.yaml's
		args    func(p paths) map[string]string // the method section's
		mutate  func(t *testing.T, s *synthBackup, ts []entry, bdir string) []entry
		prepare func(t *testing.T, p paths)
		keep    bool // keep_data
		want    ExitCode
		at      func(p paths) string // where the tablespace must be (default tsNew)
	}{
		{name: "mapped by the method section", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} }},
		{name: "mapped by pghook.yaml, the method section wins", mapping: func(p paths) map[string]string { return map[string]string{p.tsOld: "/nonexistent/ts"} },
			args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} }},
		{name: "unmapped: the backed-up path", at: func(p paths) string { return p.tsOld }},
		{name: "into an empty mount point", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			prepare: func(t *testing.T, p paths) { mountPoint(t, p.tsNew) }},
		{name: "target not empty", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			prepare: func(t *testing.T, p paths) {
				os.MkdirAll(filepath.Join(p.tsNew, "PG_15_202209061"), 0o700)
			}, want: ExitNotEmpty},
		{name: "unmapped, the primary's directory is there", prepare: func(t *testing.T, p paths) {
			os.MkdirAll(filepath.Join(p.tsOld, "PG_15_202209061"), 0o700)
		}, want: ExitNotEmpty},
		{name: "relative target from pghook.yaml", mapping: func(p paths) map[string]string { return map[string]string{p.tsOld: "ts1"} }, want: ExitUsage},
		{name: "target inside the data directory", args: func(p paths) map[string]string { return map[string]string{p.tsOld: filepath.Join(p.data, "ts")} }, want: ExitUsage},
		{name: "corrupt tablespace file: both directories removed", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			mutate: func(t *testing.T, s *synthBackup, ts []entry, bdir string) []entry {
				ts[2].body = bytes.Repeat([]byte("u"), 8192)
				return ts
			}, want: ExitVerify},
		{name: "corrupt tablespace file: a mount point left as it was", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			prepare: func(t *testing.T, p paths) { mountPoint(t, p.tsNew) },
			mutate: func(t *testing.T, s *synthBackup, ts []entry, bdir string) []entry {
				ts[2].body = bytes.Repeat([]byte("u"), 8192)
				return ts
			}, want: ExitVerify},
		{name: "tablespace archive escapes", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			mutate: func(t *testing.T, s *synthBackup, ts []entry, bdir string) []entry {
				return append(ts, entry{name: "../evil", typ: tar.TypeReg, body: []byte("x")})
			}, want: ExitVerify},
		{name: "tablespace archive writes into the mount point's lost+found", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			prepare: func(t *testing.T, p paths) { mountPoint(t, p.tsNew) },
			mutate: func(t *testing.T, s *synthBackup, ts []entry, bdir string) []entry {
				return append(ts, entry{name: "lost+found/x", typ: tar.TypeDir})
			}, want: ExitVerify},
		{name: "tablespace file not in the manifest", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			mutate: func(t *testing.T, s *synthBackup, ts []entry, bdir string) []entry {
				return append(ts, entry{name: "PG_15_202209061/5/99999", typ: tar.TypeReg, body: []byte("x")})
			}, want: ExitVerify},
		{name: "tablespace files in base.tar", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			mutate: func(t *testing.T, s *synthBackup, ts []entry, bdir string) []entry {
				s.base = append(s.base, entry{name: "pg_tblspc/16384/" + tsFile, typ: tar.TypeReg, body: s.files["pg_tblspc/16384/"+tsFile]})
				return ts
			}, want: ExitVerify},
		{name: "tablespace archive missing", mutate: func(t *testing.T, s *synthBackup, ts []entry, bdir string) []entry { return nil }, want: ExitVerify},
		{name: "an interrupted restore's tablespace directory is cleared", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			prepare: func(t *testing.T, p paths) {
				interruptedWithTablespace(t, p.data, p.tsNew)
				mountPoint(t, p.tsNew) // the mount point's own entries stay
			}},
		{name: "keep_data leaves a former primary's tablespace directory alone: not empty", keep: true,
			args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			prepare: func(t *testing.T, p paths) {
				existingState(sysid, false, 1)(t, p.data)
				os.MkdirAll(filepath.Join(p.data, "pg_tblspc"), 0o700)
				os.Symlink(p.tsNew, filepath.Join(p.data, "pg_tblspc", "16384"))
				os.MkdirAll(filepath.Join(p.tsNew, "PG_15_202209061", "5"), 0o700)
				os.WriteFile(filepath.Join(p.tsNew, "PG_15_202209061", "5", "old"), []byte("x"), 0o600)
			}, want: ExitNotEmpty},
		{name: "keep_data refuses a tablespace directory the old cluster did not use", keep: true,
			args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			prepare: func(t *testing.T, p paths) {
				existingState(sysid, false, 1)(t, p.data)
				os.MkdirAll(filepath.Join(p.tsNew, "PG_15_202209061"), 0o700)
			}, want: ExitNotEmpty},
		{name: "a restore marker naming what a restore does not write is refused", args: func(p paths) map[string]string { return map[string]string{p.tsOld: p.tsNew} },
			prepare: func(t *testing.T, p paths) {
				interruptedWithTablespace(t, p.data, p.tsNew)
				os.WriteFile(filepath.Join(p.data, restoringMarker), []byte(markerHeader+"tablespace\t"+p.tsNew+"\tnotes\n"), 0o600)
			}, want: ExitNotEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, parent := t.TempDir(), t.TempDir()
			p := paths{data: filepath.Join(parent, "pg", "data"), tsOld: filepath.Join(parent, "primary", "ts1"), tsNew: filepath.Join(parent, "replica", "ts1")}
			s := newSynth(sysid)
			ts := withTablespace(s, p.tsOld)
			bdir := filepath.Join(dir, "s", "b1")
			if tc.mutate != nil {
				ts = tc.mutate(t, s, ts, bdir)
			}
			s.write(t, dir, "s", "b1")
			if ts != nil {
				if err := os.WriteFile(filepath.Join(bdir, "16384.tar"), makeTar(t, ts), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.prepare != nil {
				tc.prepare(t, p)
			}
			before := treeOf(t, parent)
			leader := &fakeLeader{sysid: sysid}
			opts := RestoreOptions{Args: Args{Scope: "s", DataDir: p.data, ConnString: "host=x", KeepData: tc.keep}, BackupDir: dir,
				Dial: func(context.Context, string) (Leader, error) { return leader, nil }, Log: zerolog.Nop()}
			if tc.mapping != nil {
				opts.TablespaceMapping = tc.mapping(p)
			}
			if tc.args != nil {
				opts.Args.TablespaceMapping = tc.args(p)
			}
			_, err := Restore(context.Background(), opts)
			t.Logf("exit %d: %v", CodeOf(err), err)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.want)
			}
			if tc.want != 0 {
				if after := treeOf(t, parent); after != before {
					t.Fatalf("directories changed:\nbefore\n%s\nafter\n%s", before, after)
				}
				return
			}
			at := p.tsNew
			if tc.at != nil {
				at = tc.at(p)
			}
			got, err := os.ReadFile(filepath.Join(at, tsFile))
			if err != nil || !bytes.Equal(got, s.files["pg_tblspc/16384/"+tsFile]) {
				t.Fatalf("tablespace file: %v", err)
			}
			if link, err := os.Readlink(filepath.Join(p.data, "pg_tblspc", "16384")); err != nil || link != at {
				t.Fatalf("pg_tblspc/16384 -> %q (%v), want %s", link, err, at)
			}
			m, err := os.ReadFile(filepath.Join(p.data, "tablespace_map"))
			if err != nil || string(m) != "16384 "+at+"\n" {
				t.Fatalf("tablespace_map %q (%v), want the directory %s", m, err, at)
			}
			if fi, err := os.Stat(filepath.Join(at, "PG_15_202209061")); err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("tablespace subdirectory: %v %v", fi, err)
			}
			if strings.Contains(treeOf(t, parent), "pghook-new") {
				t.Fatal("temporary tablespace_map left behind")
			}
		})
	}
}
