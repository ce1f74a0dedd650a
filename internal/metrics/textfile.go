package metrics

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pghook/pghook/internal/fsutil"
	"github.com/rs/zerolog"
)

// Record writes fams as node_exporter's textfile pghook_<name>.prom in
// dir (metrics_textfile_dir) when dir is set; a failure is logged, never
// the caller's: a command does not fail for its metrics.
func Record(dir string, log zerolog.Logger, name string, fams []Family) {
	if dir == "" {
		return
	}
	if err := WriteTextfile(dir, name, fams); err != nil {
		log.Warn().Err(err).Msg("metrics textfile not written")
	}
}

// WriteTextfile replaces dir/pghook_<name>.prom with fams, atomically
// (node_exporter's textfile collector never reads half a file). name is
// made of letters, digits, '-', '_' and '.'; it is the file's identity
// (e.g. "callback_main_on_start"), so each writer owns its own file.
func WriteTextfile(dir, name string, fams []Family) error {
	if dir == "" {
		return fmt.Errorf("metrics: no textfile directory")
	}
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" || strings.HasPrefix(name, ".") {
		return fmt.Errorf("metrics: textfile name %q: want letters, digits, '-', '_' and '.'", name)
	}
	var b bytes.Buffer
	if err := Write(&b, fams); err != nil {
		return err
	}
	p := filepath.Join(dir, "pghook_"+name+".prom")
	// Readable by node_exporter, which runs as its own user.
	if err := fsutil.WriteFile(p, b.Bytes(), 0o644, fsutil.Keep); err != nil {
		return fmt.Errorf("metrics: writing %s: %w (check metrics_textfile_dir)", p, err)
	}
	return nil
}

// FileName makes a textfile name part from free text (a scope name): every
// character outside letters, digits, '-' and '.' becomes '_'.
func FileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
}
