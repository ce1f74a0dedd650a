package install

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/pghook/pghook/internal/config"
	"github.com/pghook/pghook/internal/dcs"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pghook/pghook/internal/fsutil"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/replica"
)

// Result summarises a run.
type Result struct {
	// Changes counts what was (or, with DryRun, would be) changed.
	Changes  int
	Warnings []string
}

type owner struct{ uid, gid int }

type fileItem struct {
	path   string // final path (without Root)
	data   []byte
	mode   os.FileMode
	own    owner
	secret bool // content is a secret: never diffed or printed
	// merged files are rebuilt from their current content; edits are
	// detected on the managed keys only (stateKey/managedSum).
	stateKey   string
	managedSum string
	curManaged string

	// decided by plan
	cur      []byte
	exists   bool
	action   string // create, update, unchanged, meta
	backup   bool
	conflict string
}

type dirItem struct {
	path    string
	mode    os.FileMode
	own     owner
	enforce bool // fix owner/mode of an existing directory
}

type linkItem struct{ path, target string }

// installer holds one run.
type installer struct {
	o          Options
	f          Facts
	out        io.Writer
	root       string
	asRoot     bool
	pg         owner
	rootPG     owner // root:postgres
	rootOwn    owner
	secrets    Secrets
	newSecrets map[string]bool
	files      []*fileItem
	dirs       []dirItem
	links      []linkItem
	st         *state
	res        Result
	// adopt is set when adopting an existing cluster (--adopt).
	adopt *adoptState
}

// Run performs `pghook install`. Messages for the operator go to out; a
// *UsageError names a bad setting.
func Run(o Options, out io.Writer) (*Result, error) {
	if err := applyDebianCluster(&o); err != nil {
		return nil, err
	}
	if err := o.normalize(); err != nil {
		return nil, err
	}
	in := &installer{o: o, out: out, root: o.Root, asRoot: os.Geteuid() == 0, newSecrets: map[string]bool{}}
	if o.Root == "" && !o.DryRun && !in.asRoot {
		return nil, errors.New("pghook install writes /etc and hands files to postgres: run it as root (or --dry-run, or --root DIR to write under DIR)")
	}
	var err error
	if in.f, err = GatherFacts(&in.o); err != nil {
		return nil, err
	}
	if err := in.owners(); err != nil {
		return nil, err
	}
	if err := in.checkDataDir(); err != nil {
		return nil, err
	}
	if err := in.loadSecrets(); err != nil {
		return nil, err
	}
	if in.st, err = loadState(in.p(o.StateFile)); err != nil {
		return nil, fmt.Errorf("reading %s: %w", in.p(o.StateFile), err)
	}
	if err := in.build(); err != nil {
		return nil, err
	}
	if err := in.plan(); err != nil {
		return nil, err
	}
	reachable := in.checkEtcd()
	if err := in.checkClusterIdentity(reachable); err != nil {
		return nil, err
	}
	if o.Adopt {
		if err := in.checkAdopt(); err != nil {
			return nil, err
		}
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	if err := in.provisionEtcd(reachable); err != nil {
		return nil, err
	}
	if o.DryRun {
		in.dryRun()
		return &in.res, nil
	}
	if err := in.apply(); err != nil {
		return &in.res, err
	}
	return &in.res, nil
}

// p maps a final path under Root.
func (in *installer) p(path string) string {
	if in.root == "" {
		return path
	}
	return filepath.Join(in.root, path)
}

func (in *installer) say(format string, a ...any) { fmt.Fprintf(in.out, format+"\n", a...) }

func (in *installer) warn(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	in.res.Warnings = append(in.res.Warnings, msg)
	fmt.Fprintln(in.out, "warning: "+msg)
}

func (in *installer) owners() error {
	none := owner{-1, -1}
	in.pg, in.rootPG, in.rootOwn = none, none, none
	if !in.asRoot {
		return nil
	}
	in.rootOwn = owner{0, 0}
	u, err := user.Lookup("postgres")
	if err != nil {
		if in.root == "" {
			return errors.New("no postgres user: install PostgreSQL first (postgresql-common creates the user)")
		}
		in.warn("no postgres user: files under %s keep root as owner", in.root)
		in.pg, in.rootPG = in.rootOwn, in.rootOwn
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if g, err := user.LookupGroup("postgres"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	in.pg = owner{uid, gid}
	in.rootPG = owner{0, gid}
	return nil
}

// checkDataDir refuses a data directory that holds another major version.
func (in *installer) checkDataDir() error {
	if in.o.Adopt {
		return nil // checkAdoption says it the adoption's way
	}
	dd := layoutFor(&in.o, &in.f).DataDir
	b, err := os.ReadFile(in.p(filepath.Join(dd, "PG_VERSION")))
	if err != nil {
		return nil
	}
	if v := strings.TrimSpace(string(b)); v != in.f.PGVersion {
		return usage("data-dir", "%s already holds a PostgreSQL %s cluster, not %s: choose another --data-dir or --pg-version", dd, v, in.f.PGVersion)
	}
	return nil
}

// checkClusterIdentity refuses a data directory that holds another
// cluster than the one this scope's DCS knows: the system identifier in its
// pg_control against the DCS key initialize. Patroni would otherwise start
// that data as a member of this cluster. Nothing to compare (no cluster in
// the directory, no key yet, the DCS unreachable or not readable with the
// rendered settings) is not an error; the last two are warnings.
func (in *installer) checkClusterIdentity(reachable bool) error {
	if in.o.Adopt {
		return nil // checkAdoption compares, and refuses an unreachable DCS
	}
	dd := layoutFor(&in.o, &in.f).DataDir
	b, err := os.ReadFile(in.p(filepath.Join(dd, "global", "pg_control")))
	if err != nil {
		return nil
	}
	ctl, err := replica.ParseControl(b)
	if err != nil {
		return usage("data-dir", "%s/global/pg_control: %v: choose another --data-dir", dd, err)
	}
	if !reachable {
		in.warn("%s holds a cluster (system identifier %d) that could not be compared with the DCS", dd, ctl.SystemID)
		return nil
	}
	cfg, err := in.renderedPatroni()
	if err != nil {
		return nil
	}
	timeout := in.o.EtcdTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	v, found, err := dcs.ReadKey(ctx, cfg, timeout, "initialize")
	switch {
	case err != nil:
		in.warn("%s holds a cluster (system identifier %d) that could not be compared with the DCS: %v", dd, ctl.SystemID, err)
	case found && strings.TrimSpace(v) != strconv.FormatUint(ctl.SystemID, 10):
		return usage("data-dir", "%s holds the cluster with system identifier %d, but the DCS key %s says this cluster is %s: Patroni would start another cluster's data as a member; choose another --data-dir (or move that directory away)", dd, ctl.SystemID, cfg.Key("initialize"), strings.TrimSpace(v))
	}
	return nil
}

// renderedPatroni parses the patroni.yml this run renders.
func (in *installer) renderedPatroni() (*patroni.Config, error) {
	for _, it := range in.files {
		if it.path == in.o.PatroniConfig {
			return patroni.Parse(it.data)
		}
	}
	return nil, errors.New("no patroni.yml rendered")
}

// loadSecrets reuses the stored passwords, adopts those of an existing
// patroni.yml, or generates new ones (stored by apply).
func (in *installer) loadSecrets() error {
	var existing *patroni.Config
	if b, err := os.ReadFile(in.p(in.o.PatroniConfig)); err == nil {
		existing, _ = patroni.Parse(b)
	}
	dir := filepath.Join(in.o.SecretsDir, in.o.Scope)
	for _, kind := range in.secretKinds() {
		dst := in.secrets.ptr(kind)
		b, err := os.ReadFile(in.p(filepath.Join(dir, kind)))
		switch {
		case err == nil && len(bytes.TrimSpace(b)) > 0:
			*dst = strings.TrimRight(string(b), "\r\n")
			continue
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			if in.o.DryRun && errors.Is(err, fs.ErrPermission) {
				*dst = "(unreadable-secret-" + kind + ")"
				continue
			}
			return fmt.Errorf("reading secret: %w", err)
		}
		if existing != nil {
			if kind == "etcd" {
				if e := existing.Etcd3; e != nil && e.Username == in.o.EtcdUser && e.Password != "" {
					*dst = e.Password
				}
			} else if kind == "restapi" && existing.RestAPI.Auth != nil && existing.RestAPI.Auth.Password != "" {
				*dst = existing.RestAPI.Auth.Password
			} else if a := existing.Postgresql.Authentication[kind]; a != nil && a.Password != "" {
				*dst = a.Password
			}
		}
		if *dst == "" {
			*dst = newPassword()
		}
		in.newSecrets[kind] = true
	}
	if in.o.EtcdPasswordFile != "" {
		b, err := os.ReadFile(in.o.EtcdPasswordFile)
		if err != nil {
			return usage("etcd-password-file", "%v", err)
		}
		in.secrets.Etcd = strings.TrimRight(string(b), "\r\n")
		if in.secrets.Etcd == "" {
			return usage("etcd-password-file", "%s is empty", in.o.EtcdPasswordFile)
		}
	}
	return nil
}

// secretKinds are the passwords stored for the scope: PostgreSQL's and
// the REST API's, and the etcd user's when install creates that user
// (--etcd-user without --etcd-password-file).
func (in *installer) secretKinds() []string {
	if in.o.EtcdUser != "" && in.o.EtcdPasswordFile == "" {
		return append(append([]string(nil), secretKinds...), "etcd")
	}
	return secretKinds
}

func newPassword() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (in *installer) vipInterface() string {
	if in.o.VIPInterface != "" {
		return in.o.VIPInterface
	}
	return in.f.Interface
}

// build renders everything.
func (in *installer) build() error {
	o, f := &in.o, &in.f
	l := layoutFor(o, f)
	root := in.rootOwn
	in.dirs = []dirItem{
		{path: filepath.Dir(o.PatroniConfig), mode: 0o755, own: root},
		{path: filepath.Dir(o.PghookConfig), mode: 0o755, own: root},
		{path: o.SecretsDir, mode: 0o750, own: in.rootPG, enforce: true},
		{path: filepath.Join(o.SecretsDir, o.Scope), mode: 0o700, own: in.pg, enforce: true},
		{path: filepath.Dir(o.StateFile), mode: 0o755, own: root},
		{path: o.SystemdDir, mode: 0o755, own: root},
		{path: o.SystemdDir + "/multi-user.target.wants", mode: 0o755, own: root},
	}
	if strings.HasPrefix(l.DataDir, "/var/lib/postgresql/") {
		in.dirs = append(in.dirs, dirItem{path: "/var/lib/postgresql", mode: 0o755, own: in.pg})
	}
	in.dirs = append(in.dirs, []dirItem{
		{path: filepath.Dir(l.DataDir), mode: 0o755, own: in.pg},
		{path: l.DataDir, mode: 0o700, own: in.pg},
		{path: filepath.Dir(l.Pgpass), mode: 0o755, own: in.pg},
	}...)
	if o.SocketDir != DefaultSocketDir {
		in.dirs = append(in.dirs, dirItem{path: o.SocketDir, mode: fs.ModeSetgid | 0o775, own: in.pg})
	}
	if l.ConfigDir != "" {
		in.dirs = append(in.dirs, dirItem{path: filepath.Dir(l.ConfigDir), mode: 0o755, own: in.pg}, dirItem{path: l.ConfigDir, mode: 0o755, own: in.pg})
		if o.ConfigDir != "" && strings.HasPrefix(l.ConfigDir, debianConfRoot+"/") {
			// Debian's postgresql.conf has include_dir = 'conf.d', and a
			// backup's config_dir copy holds files only: without the
			// directory a restored replica does not start.
			in.dirs = append(in.dirs, dirItem{path: filepath.Join(l.ConfigDir, "conf.d"), mode: 0o755, own: in.pg})
		}
	}
	if o.BackupDir != "" {
		in.dirs = append(in.dirs, dirItem{path: o.BackupDir, mode: 0o750, own: in.pg})
	}
	if len(o.VIP) > 0 {
		in.dirs = append(in.dirs, dirItem{path: o.SysctlDir, mode: 0o755, own: root})
	}
	for _, kind := range in.secretKinds() {
		in.files = append(in.files, &fileItem{path: filepath.Join(o.SecretsDir, o.Scope, kind), data: []byte(*in.secrets.ptr(kind) + "\n"), mode: 0o600, own: in.pg, secret: true})
	}
	py, err := renderPatroni(o, f, &in.secrets)
	if err != nil {
		return err
	}
	in.files = append(in.files, &fileItem{path: o.PatroniConfig, data: py, mode: 0o600, own: in.pg})

	cur, err := os.ReadFile(in.p(o.PghookConfig))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ss := scopeSettings{PatroniConfig: o.PatroniConfig, VIPHelper: o.VIPHelper}
	switch {
	case len(o.VIP) > 0:
		ss.VIPBackend, ss.VIPAddresses, ss.VIPInterface, ss.VIPLabel = o.VIPBackend, o.VIP, in.vipInterface(), o.VIPLabel
		if o.DNSName != "" { // the record names the VIP
			ss.DNS = config.DNS{Name: o.DNSName, Zone: o.DNSZone, Server: o.DNSServer, TSIGKeyFile: o.TSIGKeyFile, ReplicaName: o.DNSReplicaName}
			in.checkTSIGKey()
		}
	case o.DNSName != "":
		ss.VIPBackend, ss.VIPInterface = "dns", in.vipInterface()
		ss.DNS = config.DNS{Name: o.DNSName, Zone: o.DNSZone, Server: o.DNSServer, TSIGKeyFile: o.TSIGKeyFile, ReplicaName: o.DNSReplicaName}
		in.checkTSIGKey()
	case len(o.ExecHold) > 0:
		ss.VIPBackend = "exec"
		if o.ExecAddress != "" {
			ss.VIPAddresses = []string{o.ExecAddress}
		}
		ss.Exec = config.Exec{Hold: o.ExecHold, Release: o.ExecRelease, Check: o.ExecCheck, Timeout: o.ExecTimeout}
	case o.VIPBackend == "none":
		ss.VIPBackend = "none"
	}
	pyml, err := mergePghookYAML(cur, o.Scope, ss)
	if err != nil {
		return fmt.Errorf("%s: %w", in.p(o.PghookConfig), err)
	}
	if o.PghookConfig != PghookYAML && o.VIPBackend == "netlink" {
		in.warn("the VIP helper reads its settings from %s only, never from %s: that file, as this host (or the network namespace the VIP lives in) sees it, must hold the same scopes.%s.vip", PghookYAML, o.PghookConfig, o.Scope)
	}
	in.files = append(in.files, &fileItem{path: o.PghookConfig, data: pyml, mode: 0o640, own: in.rootPG,
		stateKey: o.PghookConfig + "#scopes." + o.Scope, managedSum: managedSum(pyml, o.Scope), curManaged: managedSum(cur, o.Scope)})

	unit := filepath.Join(o.SystemdDir, unitName(o.Scope))
	in.files = append(in.files, &fileItem{path: unit, data: renderUnit(o, f), mode: 0o644, own: root})
	in.links = append(in.links, linkItem{path: filepath.Join(o.SystemdDir, "multi-user.target.wants", unitName(o.Scope)), target: unit})
	if o.BackupSchedule != "" {
		timer := filepath.Join(o.SystemdDir, backupTimerName(o.Scope))
		in.files = append(in.files, &fileItem{path: backupPgpass(o), data: renderBackupPgpass(in.secrets.Replication), mode: 0o600, own: in.pg, secret: true},
			&fileItem{path: filepath.Join(o.SystemdDir, backupServiceName(o.Scope)), data: renderBackupService(o), mode: 0o644, own: root},
			&fileItem{path: timer, data: renderBackupTimer(o), mode: 0o644, own: root})
		in.dirs = append(in.dirs, dirItem{path: o.SystemdDir + "/timers.target.wants", mode: 0o755, own: root})
		in.links = append(in.links, linkItem{path: filepath.Join(o.SystemdDir, "timers.target.wants", backupTimerName(o.Scope)), target: timer})
	}
	if len(o.VIP) > 0 {
		in.files = append(in.files, &fileItem{path: filepath.Join(o.SysctlDir, sysctlName(in.vipInterface())), data: renderSysctl(in.vipInterface()), mode: 0o644, own: root})
	}
	if len(o.VIP) > 0 || o.DNSName != "" || len(o.ExecHold) > 0 {
		in.links = append(in.links, linkItem{path: filepath.Join(o.SystemdDir, "multi-user.target.wants", vipWatchName(o.Scope)), target: VIPWatchUnit})
	}
	if o.DNSName != "" || len(o.ExecHold) > 0 {
		path, data := watchDropIn(o)
		in.dirs = append(in.dirs, dirItem{path: filepath.Dir(path), mode: 0o755, own: root})
		in.files = append(in.files, &fileItem{path: path, data: data, mode: 0o644, own: root})
	}
	return nil
}

// managedSum hashes the keys install manages for scope in pghook.yaml, or
// "" when the file has no section for scope.
func managedSum(b []byte, scope string) string {
	if len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	var f struct {
		Scopes map[string]struct {
			PatroniConfig string         `yaml:"patroni_config"`
			VIP           map[string]any `yaml:"vip"`
		} `yaml:"scopes"`
	}
	if err := yamlUnmarshal(b, &f); err != nil {
		return "invalid"
	}
	s, ok := f.Scopes[scope]
	managedVIP := false
	for _, k := range []string{"backend", "address", "interface", "label"} {
		managedVIP = managedVIP || s.VIP[k] != nil
	}
	if !ok || (s.PatroniConfig == "" && !managedVIP) {
		// No section, or only keys install does not manage (a post_init,
		// or vip keys such as metrics_listen, written before the first
		// install).
		return ""
	}
	return sum([]byte(fmt.Sprintf("%s|%v|%v|%v|%v", s.PatroniConfig, s.VIP["backend"], s.VIP["address"], s.VIP["interface"], s.VIP["label"])))
}

// plan decides each file's action and refuses, before writing anything,
// when a file was changed by hand since pghook wrote it.
func (in *installer) plan() error {
	var conflicts []string
	for _, it := range in.files {
		cur, err := os.ReadFile(in.p(it.path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			it.action = "create"
			continue
		case err != nil:
			if in.o.DryRun && errors.Is(err, fs.ErrPermission) {
				it.action = "unchanged"
				continue
			}
			return fmt.Errorf("reading %s: %w", in.p(it.path), err)
		}
		it.cur, it.exists = cur, true
		if bytes.Equal(cur, it.data) {
			it.action = "unchanged"
			if !in.metaOK(it.path, it.mode, it.own) {
				it.action = "meta"
			}
			continue
		}
		it.action = "update"
		if it.secret {
			continue
		}
		var edited bool
		if it.stateKey != "" {
			rec, ok := in.st.Files[it.stateKey]
			edited = it.curManaged != "" && it.curManaged != it.managedSum && (!ok || rec != it.curManaged)
		} else {
			rec, ok := in.st.Files[it.path]
			edited = !ok || rec != sum(cur)
		}
		if edited {
			if in.o.Force {
				it.backup = true
			} else {
				it.conflict = "changed since pghook wrote it"
				if _, ok := in.st.Files[it.path]; !ok && it.stateKey == "" {
					it.conflict = "not written by pghook"
				}
				conflicts = append(conflicts, fmt.Sprintf("%s (%s)", in.p(it.path), it.conflict))
			}
		}
	}
	for _, l := range in.links {
		t, err := os.Readlink(in.p(l.path))
		if err == nil && t != l.target {
			if !in.o.Force {
				conflicts = append(conflicts, fmt.Sprintf("%s (points to %s, not %s)", in.p(l.path), t, l.target))
			}
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Lstat(in.p(l.path)); serr == nil && !in.o.Force {
				conflicts = append(conflicts, fmt.Sprintf("%s (not a symlink)", in.p(l.path)))
			}
		}
	}
	if len(conflicts) > 0 {
		return &UsageError{Flag: "force", Msg: "refusing to overwrite, nothing written:\n  " + strings.Join(conflicts, "\n  ") +
			"\nre-run with --dry-run to see the differences, and with --force to overwrite (a backup copy is kept)"}
	}
	return nil
}

// metaOK reports whether path has mode and owner.
func (in *installer) metaOK(path string, mode os.FileMode, own owner) bool {
	fi, err := os.Lstat(in.p(path))
	if err != nil {
		return false
	}
	if fi.Mode().Perm() != mode.Perm() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return (own.uid < 0 || int(st.Uid) == own.uid) && (own.gid < 0 || int(st.Gid) == own.gid)
}

// checkEtcd warns when no etcd endpoint accepts a TCP connection; the
// files are still written (etcd may come up later).
func (in *installer) checkEtcd() bool {
	var errs []string
	for _, ep := range in.o.EtcdEndpoints {
		_, hp, _ := splitEndpoint(ep)
		c, err := net.DialTimeout("tcp", hp, 2*time.Second)
		if err == nil {
			c.Close()
			return true
		}
		errs = append(errs, err.Error())
	}
	in.warn("no etcd endpoint is reachable (%s): Patroni will not start until one is", strings.Join(errs, "; "))
	return false
}

// validate runs `patroni --validate-config` on the rendered patroni.yml
// (from a private temporary file, before anything is written). Patroni
// 3.0.2 also checks live conditions: an unreachable DCS is a warning (the
// files are written anyway), a port in use is a warning when this scope's
// Patroni is the one running (a re-run on a live node), an error otherwise.
// Under --root the files are for another system (or an image): what
// Patroni checks against this host (ports, the DCS, the directories and
// PostgreSQL's binaries) is a warning, anything else still an error.
func (in *installer) validate() error {
	if in.o.NoValidate {
		return nil
	}
	if in.f.Patroni == "" {
		in.warn("patroni is not installed (/usr/bin/patroni, /usr/local/bin/patroni): patroni.yml not validated")
		return nil
	}
	var data []byte
	for _, it := range in.files {
		if it.path == in.o.PatroniConfig {
			data = it.data
		}
	}
	tmp, err := os.CreateTemp("", "pghook-validate-*.yml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	tmp.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, in.f.Patroni, "--validate-config", tmp.Name()).CombinedOutput()
	if err == nil {
		in.say("validated  %s (patroni --validate-config)", in.o.PatroniConfig)
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("running %s --validate-config: %w", in.f.Patroni, err)
	}
	// The adopted server holds its port until the operator stops it.
	running := patroniRunning(in.o.PatroniConfig) || in.adopt != nil && in.adopt.facts.Running
	var fatal []string
	for _, line := range strings.Split(strings.TrimSpace(mask(out, in.secrets.values())), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.Contains(line, "is not reachable"):
			in.warn("patroni --validate-config: %s", line)
		case strings.Contains(line, "is already in use") && running:
			in.warn("patroni --validate-config: %s (this scope's Patroni is running)", line)
		case in.root != "" && hostDependent(line):
			in.warn("patroni --validate-config: %s (checked against this host, not the --root target)", line)
		default:
			fatal = append(fatal, line)
		}
	}
	if len(fatal) > 0 {
		return fmt.Errorf("patroni --validate-config rejects the rendered %s, nothing written:\n  %s", in.o.PatroniConfig, strings.Join(fatal, "\n  "))
	}
	return nil
}

// hostDependent reports whether a validator line is about a key whose check
// depends on the host it runs on (ports, the DCS, paths).
func hostDependent(line string) bool {
	for _, k := range []string{"restapi.listen", "postgresql.listen", "postgresql.data_dir", "postgresql.bin_dir",
		"postgresql.config_dir", "postgresql.pgpass", "postgresql.parameters.unix_socket_directories", "etcd3.", "etcd.",
		"postgresql.bin_name"} {
		if strings.HasPrefix(line, k) {
			return true
		}
	}
	return strings.Contains(line, "is not reachable") || strings.Contains(line, "is already in use")
}

// patroniRunning reports whether a process runs patroni with config.
func patroniRunning(config string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		hasPatroni, hasConfig := false, false
		for _, a := range args {
			if filepath.Base(a) == "patroni" {
				hasPatroni = true
			}
			if a == config {
				hasConfig = true
			}
		}
		if hasPatroni && hasConfig {
			return true
		}
	}
	return false
}

func (in *installer) dryRun() {
	secrets := in.secrets.values()
	if in.adopt != nil {
		for _, f := range in.adopt.fixes {
			in.say("would %s", f.What)
			in.res.Changes++
		}
	}
	for _, d := range in.dirs {
		if _, err := os.Stat(in.p(d.path)); errors.Is(err, fs.ErrNotExist) {
			in.say("would create directory %s (%04o)", in.p(d.path), d.mode)
			in.res.Changes++
		}
	}
	for _, it := range in.files {
		switch it.action {
		case "unchanged":
			continue
		case "meta":
			in.say("would fix owner/mode of %s (%04o)", in.p(it.path), it.mode)
		default:
			if it.secret {
				in.say("would write secret %s (0600, value not shown)", in.p(it.path))
			} else {
				fmt.Fprint(in.out, unifiedDiff(in.p(it.path), mask(it.cur, secrets), mask(it.data, secrets)))
				if it.backup {
					in.say("would keep a backup of %s (changed by hand)", in.p(it.path))
				}
			}
		}
		in.res.Changes++
	}
	for _, l := range in.links {
		if t, _ := os.Readlink(in.p(l.path)); t != l.target {
			in.say("would link %s -> %s", in.p(l.path), l.target)
			in.res.Changes++
		}
	}
	if in.res.Changes == 0 {
		in.say("pghook install: scope %s: unchanged (dry run)", in.o.Scope)
	} else {
		in.say("pghook install: scope %s: %d change(s) (dry run: nothing written)", in.o.Scope, in.res.Changes)
	}
}

func (in *installer) chown(path string, own owner) error {
	if !in.asRoot || (own.uid < 0 && own.gid < 0) {
		return nil
	}
	return os.Lchown(path, own.uid, own.gid)
}

func (in *installer) apply() error {
	// The roles first: a failure there leaves no file behind.
	if err := in.applyRoles(); err != nil {
		return err
	}
	for _, d := range in.dirs {
		p := in.p(d.path)
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(p, d.mode); err != nil {
				return err
			}
			if err := in.chown(p, d.own); err != nil {
				return err
			}
			in.say("created    %s/ (%s)", p, in.describe(d.mode, d.own))
			in.res.Changes++
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a directory", p)
		case d.enforce && !in.metaOK(d.path, d.mode|fs.ModeDir, d.own):
			if err := os.Chmod(p, d.mode); err != nil {
				return err
			}
			if err := in.chown(p, d.own); err != nil {
				return err
			}
			in.say("fixed      %s/ (%s)", p, in.describe(d.mode, d.own))
			in.res.Changes++
		}
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for _, it := range in.files {
		p := in.p(it.path)
		switch it.action {
		case "unchanged":
			in.say("unchanged  %s", p)
		case "meta":
			if err := os.Chmod(p, it.mode); err != nil {
				return err
			}
			if err := in.chown(p, it.own); err != nil {
				return err
			}
			in.say("fixed      %s (%s)", p, in.describe(it.mode, it.own))
			in.res.Changes++
		default:
			if it.backup {
				bak := p + ".pghook-backup-" + stamp
				if err := fsutil.WriteFile(bak, it.cur, 0o600, fsutil.Owner{UID: in.rootOwn.uid, GID: in.rootOwn.gid}); err != nil {
					return err
				}
				in.say("backup     %s -> %s (it was changed by hand; --force)", p, bak)
			}
			own := fsutil.Owner{UID: it.own.uid, GID: it.own.gid}
			if !in.asRoot {
				own = fsutil.Keep
			}
			if err := fsutil.WriteFile(p, it.data, it.mode, own); err != nil {
				return err
			}
			verb := "created   "
			if it.exists {
				verb = "updated   "
			}
			in.say("%s %s (%s)", verb, p, in.describe(it.mode, it.own))
			in.res.Changes++
		}
		if !it.secret {
			if it.stateKey != "" {
				in.st.Files[it.stateKey] = it.managedSum
			} else {
				in.st.Files[it.path] = sum(it.data)
			}
		}
	}
	for _, l := range in.links {
		p := in.p(l.path)
		if t, _ := os.Readlink(p); t == l.target {
			continue
		}
		os.Remove(p)
		if err := os.Symlink(l.target, p); err != nil {
			return err
		}
		in.say("enabled    %s -> %s", p, l.target)
		in.res.Changes++
	}
	if len(in.o.VIP) > 0 && in.root == "" {
		for _, k := range []string{"all", strings.ReplaceAll(in.vipInterface(), ".", "/")} {
			for _, kv := range [][2]string{{"arp_announce", "2"}, {"arp_ignore", "1"}} {
				pp := "/proc/sys/net/ipv4/conf/" + k + "/" + kv[0]
				if b, err := os.ReadFile(pp); err == nil && strings.TrimSpace(string(b)) == kv[1] {
					continue
				}
				if err := os.WriteFile(pp, []byte(kv[1]+"\n"), 0o644); err != nil {
					in.warn("setting %s: %v", pp, err)
				} else {
					in.say("applied    %s = %s", pp, kv[1])
					in.res.Changes++
				}
			}
		}
	}
	sb := in.st.encode()
	if cur, err := os.ReadFile(in.p(in.o.StateFile)); err != nil || !bytes.Equal(cur, sb) {
		if err := fsutil.WriteFile(in.p(in.o.StateFile), sb, 0o600, fsutil.Keep); err != nil {
			return err
		}
	}
	if in.res.Changes == 0 {
		in.say("pghook install: scope %s: unchanged", in.o.Scope)
		in.adoptNextStep()
		return nil
	}
	if in.root == "" && in.o.SystemdDir == SystemdEtc {
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			if out, err := exec.Command("systemctl", "daemon-reload").CombinedOutput(); err != nil {
				in.warn("systemctl daemon-reload: %v: %s", err, bytes.TrimSpace(out))
			}
		}
	}
	in.say("pghook install: scope %s: %d change(s)", in.o.Scope, in.res.Changes)
	if in.adopt != nil {
		in.adoptNextStep()
		return nil
	}
	in.say("next: systemctl start %s", unitName(in.o.Scope))
	if len(in.o.VIP) > 0 || in.o.DNSName != "" || len(in.o.ExecHold) > 0 {
		in.say("      systemctl start %s", vipWatchName(in.o.Scope))
	}
	return nil
}

func (in *installer) describe(mode os.FileMode, own owner) string {
	name := func(id int, group bool) string {
		switch {
		case id < 0:
			return "-"
		case id == 0:
			return "root"
		case id == in.pg.uid && !group, id == in.pg.gid && group:
			return "postgres"
		}
		return strconv.Itoa(id)
	}
	if !in.asRoot {
		return fmt.Sprintf("%04o", mode.Perm())
	}
	return fmt.Sprintf("%s:%s %04o", name(own.uid, false), name(own.gid, true), mode.Perm())
}
