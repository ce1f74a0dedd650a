package replica

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Tablespace is one line of a backup's tablespace_map: the tablespace's
// OID (its pg_tblspc/<oid> link and its <oid>.tar archive) and the
// directory it lived in on the server that was backed up.
type Tablespace struct {
	OID  string `json:"oid"`
	Path string `json:"path"`
}

// ParseTablespaceMap parses tablespace_map as PostgreSQL writes it: one
// "<oid> <path>\n" line per tablespace, a backslash escaping the next
// character (PostgreSQL escapes \n, \r and \ in paths).
func ParseTablespaceMap(b []byte) ([]Tablespace, error) {
	var out []Tablespace
	seen := map[string]bool{}
	var line strings.Builder
	escaped := false
	flush := func() error {
		s := line.String()
		line.Reset()
		if s == "" {
			return nil
		}
		oid, p, ok := strings.Cut(s, " ")
		if !ok || !isOID(oid) || p == "" {
			return fmt.Errorf("%w: tablespace_map line %q: want \"<oid> <path>\"", ErrUnsafeArchive, s)
		}
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%w: tablespace %s has a relative path %q", ErrUnsafeArchive, oid, p)
		}
		if seen[oid] {
			return fmt.Errorf("%w: tablespace %s appears twice in tablespace_map", ErrUnsafeArchive, oid)
		}
		seen[oid] = true
		out = append(out, Tablespace{OID: oid, Path: p})
		return nil
	}
	for _, c := range string(b) {
		switch {
		case escaped:
			line.WriteRune(c)
			escaped = false
		case c == '\\':
			escaped = true
		case c == '\n' || c == '\r':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			line.WriteRune(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// FormatTablespaceMap writes ts the way PostgreSQL writes tablespace_map.
func FormatTablespaceMap(ts []Tablespace) []byte {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(t.OID)
		b.WriteByte(' ')
		for _, c := range t.Path {
			if c == '\n' || c == '\r' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(c)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func isOID(s string) bool {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseTablespaceMapping parses a tablespace_mapping value: OLD=NEW pairs
// separated by commas, like pg_basebackup's --tablespace-mapping; a
// backslash escapes "=", "," or "\" inside a path. Both paths must be
// absolute; they are cleaned. An empty value is an empty mapping.
func ParseTablespaceMapping(s string) (map[string]string, error) {
	out := map[string]string{}
	var parts [2]strings.Builder
	side := 0
	escaped := false
	flush := func() error {
		oldp, newp := parts[0].String(), parts[1].String()
		parts[0].Reset()
		parts[1].Reset()
		defer func() { side = 0 }()
		if strings.TrimSpace(oldp) == "" && side == 0 {
			return nil // empty item, e.g. a trailing comma
		}
		oldp, newp = strings.TrimSpace(oldp), strings.TrimSpace(newp)
		if side == 0 || oldp == "" || newp == "" {
			return fmt.Errorf("tablespace mapping %q: want OLD=NEW", oldp)
		}
		if !filepath.IsAbs(oldp) || !filepath.IsAbs(newp) {
			return fmt.Errorf("tablespace mapping %s=%s: both directories must be absolute paths", oldp, newp)
		}
		oldp, newp = filepath.Clean(oldp), filepath.Clean(newp)
		if prev, dup := out[oldp]; dup && prev != newp {
			return fmt.Errorf("tablespace mapping: %s is mapped twice (to %s and %s)", oldp, prev, newp)
		}
		out[oldp] = newp
		return nil
	}
	for _, c := range s {
		switch {
		case escaped:
			parts[side].WriteRune(c)
			escaped = false
		case c == '\\':
			escaped = true
		case c == '=' && side == 0:
			side = 1
		case c == '=':
			return nil, fmt.Errorf("tablespace mapping %q: more than one unescaped \"=\" (write \\= inside a path)", s)
		case c == ',':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			parts[side].WriteRune(c)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// tsTarget is a tablespace of the backup and where this restore puts it.
type tsTarget struct {
	Tablespace
	Target  string // directory on this host
	archive string // <oid>.tar[.…] in the backup
	state   dirState
}

// planTablespaces decides each tablespace's directory (mapping, else the
// backed-up path) and checks them before anything is written: absolute,
// distinct, outside the data directory, and empty or absent.
func planTablespaces(p *plan, mapping map[string]string, dataDir string) ([]*tsTarget, error) {
	var out []*tsTarget
	used := map[string]string{}
	for _, ts := range p.tablespaces {
		t := &tsTarget{Tablespace: ts, archive: p.tsArchives[ts.OID], Target: filepath.Clean(ts.Path)}
		if m, ok := mapping[filepath.Clean(ts.Path)]; ok {
			t.Target = m
		}
		if !filepath.IsAbs(t.Target) {
			return nil, failf(ExitUsage, "tablespace_mapping maps %s to %q: the directory must be an absolute path", ts.Path, t.Target)
		}
		if other, dup := used[t.Target]; dup {
			return nil, failf(ExitUsage, "tablespaces %s and %s would both go to %s: give each its own directory with tablespace_mapping", other, ts.OID, t.Target)
		}
		used[t.Target] = ts.OID
		if within(t.Target, dataDir) || within(dataDir, t.Target) {
			return nil, failf(ExitUsage, "tablespace %s would go to %s, which overlaps the data directory %s: map it elsewhere with tablespace_mapping", ts.OID, t.Target, dataDir)
		}
		st, err := inspectDataDir(t.Target)
		if err != nil {
			var re *Error
			if errors.As(err, &re) {
				return nil, failf(re.Code, "tablespace %s: %v", ts.OID, err)
			}
			return nil, fail(ExitIO, fmt.Errorf("tablespace %s: %w", ts.OID, err))
		}
		if len(st.significant) > 0 {
			hint := "empty it, or map the tablespace elsewhere with tablespace_mapping"
			if t.Target == filepath.Clean(ts.Path) {
				hint = "it is the path of the backed-up server: set tablespace_mapping (" + ts.Path + "=NEW) if it shares this file system"
			}
			return nil, failf(ExitNotEmpty, "tablespace %s directory %s is not empty (%s…): %s", ts.OID, t.Target, st.significant[0], hint)
		}
		t.state = st
		out = append(out, t)
	}
	return out, nil
}

// within reports whether p is dir or below it (both clean and absolute).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// prepareTablespaces creates (or chmods) every tablespace directory and
// returns the function that puts them all back as they were.
func prepareTablespaces(ts []*tsTarget) (func() error, error) {
	var undos []func() error
	undoAll := func() error {
		var errs []error
		for i := len(undos) - 1; i >= 0; i-- {
			errs = append(errs, undos[i]())
		}
		return errors.Join(errs...)
	}
	for _, t := range ts {
		u, err := prepareDataDir(t.Target, t.state)
		if err != nil {
			undoAll()
			return nil, fmt.Errorf("tablespace %s: %w", t.OID, err)
		}
		undos = append(undos, u)
	}
	return undoAll, nil
}

// linkTablespaces creates pg_tblspc/<oid> -> directory for every
// tablespace. They are made before extraction so that, if pghook is
// killed, Patroni's removal of the data directory (which follows these
// links) also removes the tablespace directories.
func linkTablespaces(root *os.Root, ts []*tsTarget) error {
	if len(ts) == 0 {
		return nil
	}
	if err := root.MkdirAll("pg_tblspc", 0o700); err != nil {
		return ioErr{fmt.Errorf("creating pg_tblspc: %w", err)}
	}
	for _, t := range ts {
		if err := root.Symlink(t.Target, "pg_tblspc/"+t.OID); err != nil {
			return ioErr{fmt.Errorf("linking pg_tblspc/%s to %s: %w", t.OID, t.Target, err)}
		}
	}
	return nil
}

// rewriteTablespaceMap replaces the restored tablespace_map with the
// directories of this host when a mapping moved any tablespace: at its
// first start PostgreSQL recreates pg_tblspc's links from that file.
func rewriteTablespaceMap(root *os.Root, ts []*tsTarget) error {
	moved := false
	list := make([]Tablespace, 0, len(ts))
	for _, t := range ts {
		moved = moved || t.Target != t.Path
		list = append(list, Tablespace{OID: t.OID, Path: t.Target})
	}
	if !moved {
		return nil
	}
	const tmp = "tablespace_map.pghook-new"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ioErr{fmt.Errorf("writing tablespace_map: %w", err)}
	}
	_, werr := f.Write(FormatTablespaceMap(list))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		root.Remove(tmp)
		return ioErr{fmt.Errorf("writing tablespace_map: %w", err)}
	}
	if err := root.Rename(tmp, "tablespace_map"); err != nil {
		root.Remove(tmp)
		return ioErr{fmt.Errorf("replacing tablespace_map: %w", err)}
	}
	return nil
}

// extractTablespace extracts one <oid>.tar into its directory (x's root):
// directories, and the files the manifest lists as pg_tblspc/<oid>/<name>
// with the same size and checksum.
func (x *extractor) extractTablespace(r io.Reader, oid string) error {
	w := newAsyncWriter()
	return drain(w, x.walk(w, r, "tablespace "+oid, "the tablespace directory", "pg_tblspc/"+oid+"/"))
}

// tablespaceArchiveOID returns the OID of a tablespace archive's name
// (<oid>.tar[.gz|.lz4|.zst]).
func tablespaceArchiveOID(name string) (string, bool) {
	oid, _, ok := strings.Cut(name, ".tar")
	return oid, ok && isOID(oid)
}

// checkTablespaces matches a backup's tablespace_map, its <oid>.tar
// archives and the manifest's pg_tblspc/<oid>/ files: each must agree.
func checkTablespaces(p *plan) error {
	inMap := map[string]bool{}
	for _, t := range p.tablespaces {
		inMap[t.OID] = true
		if _, ok := p.tsArchives[t.OID]; !ok {
			return fmt.Errorf("tablespace %s (%s) is in tablespace_map but the backup has no %s%s", t.OID, t.Path, t.OID, strings.TrimPrefix(filepath.Base(p.base), "base"))
		}
	}
	var extra []string
	for oid := range p.tsArchives {
		if !inMap[oid] {
			extra = append(extra, oid)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		return fmt.Errorf("the backup has %s.tar but tablespace_map does not name tablespace %s", extra[0], extra[0])
	}
	for path := range p.manifest.Files {
		rest, ok := strings.CutPrefix(path, "pg_tblspc/")
		if !ok {
			continue
		}
		oid, _, _ := strings.Cut(rest, "/")
		if !inMap[oid] {
			return fmt.Errorf("the manifest lists %s but tablespace_map has no tablespace %s", path, oid)
		}
	}
	return nil
}
