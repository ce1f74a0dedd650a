package replica

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rs/zerolog"
)

// ConfigSubdir is the directory of a backup holding the copy of
// PostgreSQL's config_dir, when it lives outside the data directory.
const ConfigSubdir = "config_dir"

// Limits of a config_dir copy: configuration, not data.
const (
	maxConfigFiles = 256
	maxConfigBytes = 16 << 20
)

// ConfigFile is one file of a saved config_dir, as listed in pghook.json.
type ConfigFile struct {
	Name   string      `json:"name"` // slash-separated, relative to config_dir
	Mode   fs.FileMode `json:"mode"` // permission bits
	Size   int64       `json:"size"`
	SHA256 string      `json:"sha256"`
}

// saveConfigDir copies the regular files under src (recursively; links,
// sockets and the like are skipped and logged) into dst, which it creates,
// and returns their list. Modes are kept (permission bits only).
func saveConfigDir(src, dst string, log zerolog.Logger) ([]ConfigFile, error) {
	sroot, err := os.OpenRoot(src)
	if err != nil {
		return nil, fmt.Errorf("config_dir %s: %w", src, err)
	}
	defer sroot.Close()
	if err := os.Mkdir(dst, 0o750); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dst, err)
	}
	droot, err := os.OpenRoot(dst)
	if err != nil {
		return nil, err
	}
	defer droot.Close()
	var out []ConfigFile
	var total int64
	err = fs.WalkDir(sroot.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		switch {
		case d.IsDir():
			return droot.Mkdir(name, 0o750)
		case !d.Type().IsRegular():
			log.Warn().Str("config_dir", src).Str("file", name).Str("type", d.Type().String()).Msg("config_dir: not a regular file, not saved")
			return nil
		}
		if len(out) >= maxConfigFiles {
			return fmt.Errorf("config_dir %s has more than %d files: is it really PostgreSQL's configuration directory?", src, maxConfigFiles)
		}
		b, err := sroot.ReadFile(name)
		if err != nil {
			return err
		}
		if total += int64(len(b)); total > maxConfigBytes {
			return fmt.Errorf("config_dir %s holds more than %d MB: is it really PostgreSQL's configuration directory?", src, maxConfigBytes>>20)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		f, err := droot.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, werr := f.Write(b)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out = append(out, ConfigFile{Name: name, Mode: mode, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("saving config_dir %s: %w", src, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// stagedConfig is a config_dir copy checked and written next to its
// final names, ready to be renamed into place.
type stagedConfig struct {
	root  *os.Root
	dir   string
	files []ConfigFile
	tmp   []string
}

const stageSuffix = ".pghook-new"

// stageConfigDir checks a backup's config_dir copy against the list in
// pghook.json (names local, sizes, SHA-256) and writes every file into
// configDir as NAME.pghook-new with its mode, synced. Nothing is replaced
// yet: commit renames, abort removes. Directories it needs are created
// (0750) and stay.
func stageConfigDir(bdir string, files []ConfigFile, configDir string) (*stagedConfig, error) {
	src, err := os.OpenRoot(filepath.Join(bdir, ConfigSubdir))
	if err != nil {
		return nil, fail(ExitVerify, fmt.Errorf("backup %s lists config_dir files but: %w", bdir, err))
	}
	defer src.Close()
	if err := os.MkdirAll(configDir, 0o750); err != nil {
		return nil, fail(ExitIO, fmt.Errorf("config_dir %s: %w", configDir, err))
	}
	root, err := os.OpenRoot(configDir)
	if err != nil {
		return nil, fail(ExitIO, fmt.Errorf("config_dir %s: %w", configDir, err))
	}
	s := &stagedConfig{root: root, dir: configDir, files: files}
	for _, cf := range files {
		if err := s.stage(src, cf); err != nil {
			s.abort()
			return nil, err
		}
	}
	return s, nil
}

func (s *stagedConfig) stage(src *os.Root, cf ConfigFile) error {
	if !localName(cf.Name) || strings.HasSuffix(cf.Name, stageSuffix) {
		return failf(ExitVerify, "config_dir file name %q in pghook.json is not a plain relative name", cf.Name)
	}
	if cf.Size < 0 || cf.Size > maxConfigBytes {
		return failf(ExitVerify, "config_dir file %s: size %d out of range", cf.Name, cf.Size)
	}
	f, err := src.Open(cf.Name)
	if err != nil {
		return fail(ExitVerify, fmt.Errorf("config_dir file %s listed in pghook.json: %w", cf.Name, err))
	}
	b, err := io.ReadAll(io.LimitReader(f, cf.Size+1))
	f.Close()
	if err != nil {
		return fail(ExitIO, fmt.Errorf("reading config_dir file %s: %w", cf.Name, err))
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != cf.Size || hex.EncodeToString(sum[:]) != cf.SHA256 {
		return failf(ExitVerify, "config_dir file %s of the backup does not match pghook.json (size %d, want %d, or SHA-256 differs)", cf.Name, len(b), cf.Size)
	}
	if d := path.Dir(cf.Name); d != "." {
		if err := s.root.MkdirAll(d, 0o750); err != nil {
			return fail(ExitIO, fmt.Errorf("config_dir %s: creating %s: %w", s.dir, d, err))
		}
	}
	tmp := cf.Name + stageSuffix
	s.root.Remove(tmp) // a leftover of a killed run
	out, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(ExitIO, fmt.Errorf("config_dir %s: %w", s.dir, err))
	}
	s.tmp = append(s.tmp, tmp)
	_, werr := io.Copy(out, bytes.NewReader(b))
	merr := out.Chmod(cf.Mode.Perm())
	serr := out.Sync()
	cerr := out.Close()
	if err := errors.Join(werr, merr, serr, cerr); err != nil {
		return fail(ExitIO, fmt.Errorf("config_dir %s: writing %s: %w", s.dir, cf.Name, err))
	}
	return nil
}

// commit renames every staged file over its final name.
func (s *stagedConfig) commit() error {
	defer s.root.Close()
	for i, cf := range s.files {
		if err := s.root.Rename(s.tmp[i], cf.Name); err != nil {
			s.abort()
			return fail(ExitIO, fmt.Errorf("config_dir %s: replacing %s: %w", s.dir, cf.Name, err))
		}
		s.tmp[i] = ""
	}
	dirs := map[string]bool{}
	for _, cf := range s.files {
		dirs[path.Dir(cf.Name)] = true
	}
	for d := range dirs {
		if f, err := s.root.Open(d); err == nil {
			f.Sync()
			f.Close()
		}
	}
	return nil
}

// abort removes the staged files.
func (s *stagedConfig) abort() {
	for _, t := range s.tmp {
		if t != "" {
			s.root.Remove(t)
		}
	}
	s.tmp = nil
	s.root.Close()
}

// checkConfigCopy verifies a backup's config_dir copy against pghook.json
// without writing anything: the pre-flight check.
func checkConfigCopy(bdir string, files []ConfigFile) error {
	if len(files) > maxConfigFiles {
		return failf(ExitVerify, "backup %s lists %d config_dir files", bdir, len(files))
	}
	src, err := os.OpenRoot(filepath.Join(bdir, ConfigSubdir))
	if err != nil {
		return fail(ExitVerify, fmt.Errorf("backup %s lists config_dir files but: %w", bdir, err))
	}
	defer src.Close()
	for _, cf := range files {
		if !localName(cf.Name) || strings.HasSuffix(cf.Name, stageSuffix) {
			return failf(ExitVerify, "config_dir file name %q in pghook.json is not a plain relative name", cf.Name)
		}
		f, err := src.Open(cf.Name)
		if err != nil {
			return fail(ExitVerify, fmt.Errorf("config_dir file %s listed in pghook.json: %w", cf.Name, err))
		}
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(f, maxConfigBytes+1))
		f.Close()
		if err != nil {
			return fail(ExitIO, fmt.Errorf("reading config_dir file %s: %w", cf.Name, err))
		}
		if n != cf.Size || hex.EncodeToString(h.Sum(nil)) != cf.SHA256 {
			return failf(ExitVerify, "config_dir file %s of backup %s does not match pghook.json (size %d, want %d, or SHA-256 differs)", cf.Name, bdir, n, cf.Size)
		}
	}
	return nil
}
