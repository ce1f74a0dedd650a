package applet

import (
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestPackageSymlinks: every symlink the .deb ships to the binary is an
// applet name, and every seed script name (*.sh) is shipped, so a
// patroni.yml pointing at /usr/lib/pghook/<script> runs the right command.
func TestPackageSymlinks(t *testing.T) {
	b, err := os.ReadFile("../../nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Contents []struct {
			Src  string `yaml:"src"`
			Dst  string `yaml:"dst"`
			Type string `yaml:"type"`
		} `yaml:"contents"`
	}
	if err := yaml.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	var shipped []string
	for _, c := range pkg.Contents {
		if c.Type != "symlink" || path.Base(c.Src) != "pghook" {
			continue
		}
		if got := path.Clean(path.Join(path.Dir(c.Dst), c.Src)); got != "/usr/bin/pghook" {
			t.Errorf("%s points at %s, not /usr/bin/pghook", c.Dst, got)
		}
		name := path.Base(c.Dst)
		if _, ok := Command(name); !ok {
			t.Errorf("nfpm.yaml ships %s, which is no applet name", c.Dst)
		}
		shipped = append(shipped, name)
	}
	for name := range names {
		if strings.HasSuffix(name, ".sh") && !slices.Contains(shipped, name) {
			t.Errorf("applet %s is not shipped as a symlink in nfpm.yaml", name)
		}
	}
	if len(shipped) == 0 {
		t.Error("nfpm.yaml ships no symlink to the binary")
	}
}
