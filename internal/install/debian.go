package install

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// debianClusterRE is VERSION/NAME as pg_lsclusters shows them.
var debianClusterRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([0-9]{1,3})/([A-Za-z0-9][A-Za-z0-9_.-]{0,62})$`)
})

// debianConfRoot is where postgresql-common keeps the clusters'
// configuration; a var for tests.
var debianConfRoot = "/etc/postgresql"

// applyDebianCluster fills, from the configuration of the Debian cluster
// VERSION/NAME (/etc/postgresql/VERSION/NAME/postgresql.conf), what the
// operator did not give: --pg-version, --config-dir, --data-dir and
// --port. A given setting that contradicts the cluster is refused.
func applyDebianCluster(o *Options) error {
	if o.DebianCluster == "" {
		return nil
	}
	m := debianClusterRE().FindStringSubmatch(o.DebianCluster)
	if m == nil || strings.Contains(m[2], "..") {
		return usage("debian-cluster", "%q: want VERSION/NAME as pg_lsclusters shows them, e.g. 15/main", o.DebianCluster)
	}
	ver, name := m[1], m[2]
	dir := filepath.Join(debianConfRoot, ver, name)
	b, err := os.ReadFile(filepath.Join(o.Root, dir, "postgresql.conf"))
	if err != nil {
		return usage("debian-cluster", "%s: %v: is %s a cluster of this host (pg_lsclusters)?", o.DebianCluster, err, o.DebianCluster)
	}
	conf := parsePostgresqlConf(b)
	if o.PGVersion != "" && o.PGVersion != ver {
		return usage("pg-version", "%s contradicts --debian-cluster %s: drop --pg-version", o.PGVersion, o.DebianCluster)
	}
	o.PGVersion = ver
	if o.ConfigDir == "" {
		o.ConfigDir = dir
	} else if filepath.Clean(o.ConfigDir) != dir {
		return usage("config-dir", "%s is not the configuration directory of %s (%s): drop --config-dir", o.ConfigDir, o.DebianCluster, dir)
	}
	dd := conf["data_directory"]
	if dd == "" {
		dd = filepath.Join("/var/lib/postgresql", ver, name)
	}
	if o.DataDir == "" {
		o.DataDir = dd
	} else if filepath.Clean(o.DataDir) != filepath.Clean(dd) {
		return usage("data-dir", "%s is not the data directory of %s (%s, from %s/postgresql.conf): drop --data-dir", o.DataDir, o.DebianCluster, dd, dir)
	}
	if p := conf["port"]; p != "" && o.Port == 0 {
		n, err := strconv.Atoi(p)
		if err != nil {
			return usage("debian-cluster", "%s/postgresql.conf: port %q is not a number", dir, p)
		}
		o.Port = n
	}
	return nil
}

// parsePostgresqlConf reads the `name = value` settings of a
// postgresql.conf (the last one wins, quotes removed, comments dropped;
// include directives are not followed).
func parsePostgresqlConf(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			// "name value" is valid too.
			name, val, ok = strings.Cut(line, " ")
			if !ok {
				continue
			}
		}
		name = strings.ToLower(strings.TrimSpace(name))
		val = strings.TrimSpace(val)
		if strings.HasPrefix(val, "'") {
			if end := closingQuote(val); end > 0 {
				val = strings.ReplaceAll(val[1:end], "''", "'")
			}
		} else if i := strings.IndexByte(val, '#'); i >= 0 {
			val = strings.TrimSpace(val[:i])
		}
		out[name] = val
	}
	return out
}

// closingQuote is the index of the quote that ends the quoted string
// starting at s[0] (” is an escaped quote), or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			i++
			continue
		}
		return i
	}
	return -1
}

// debianStopHint is the command that stops an adopted cluster the way it
// was started.
func debianStopHint(o *Options, dataDir string) string {
	if m := debianClusterRE().FindStringSubmatch(o.DebianCluster); m != nil {
		return fmt.Sprintf("pg_ctlcluster %s %s stop, and set %s/start.conf to manual so it does not start at boot", m[1], m[2], o.ConfigDir)
	}
	return fmt.Sprintf("pg_ctl -D %s stop (as postgres), and disable whatever starts it at boot", dataDir)
}
