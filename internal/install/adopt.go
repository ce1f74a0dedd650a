package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pghook/pghook/internal/dcs"
	"github.com/pghook/pghook/replica"
)

// adoptFacts are what install learns about the existing cluster it is
// asked to adopt; checkAdoption decides on them alone.
type adoptFacts struct {
	DataDir     string
	HasCluster  bool   // PG_VERSION and global/pg_control exist
	DataVersion string // PG_VERSION
	BinVersion  string // the scope's PostgreSQL (bin_dir)
	SysID       uint64
	// The DCS: reachable, and its initialize key ("" when absent).
	DCSReachable bool
	DCSErr       string
	DCSKey       string
	DCSSysID     string
	// Running: a live postmaster on DataDir; Managed: this scope's
	// Patroni runs (it started that postmaster).
	Running   bool
	PID       int
	Managed   bool
	StopHint  string
	StartHint string
}

// checkAdoption refuses what cannot be adopted; every refusal names what
// is wrong and what to do.
func checkAdoption(f adoptFacts) error {
	dd := f.DataDir
	switch {
	case !f.HasCluster:
		return usage("data-dir", "%s holds no PostgreSQL cluster (no PG_VERSION and global/pg_control): nothing to adopt; name the cluster's data directory, or drop --adopt/--debian-cluster to let Patroni create one", dd)
	case f.DataVersion != f.BinVersion:
		return usage("pg-version", "%s holds a PostgreSQL %s cluster, but the scope would run PostgreSQL %s: adopt it with its own version (--pg-version %s, its binaries installed) or upgrade it first (pg_upgradecluster)", dd, f.DataVersion, f.BinVersion, f.DataVersion)
	case !f.DCSReachable:
		return fmt.Errorf("adopting %s needs the DCS, to compare the cluster's system identifier %d with the scope's (%s): start etcd or correct --etcd-endpoints, then run install again; nothing written", dd, f.SysID, f.DCSErr)
	case f.DCSSysID != "" && f.DCSSysID != strconv.FormatUint(f.SysID, 10):
		return usage("data-dir", "%s holds the cluster with system identifier %d, but the DCS key %s says the scope's cluster is %s: this is another cluster; adopt it under another --scope, or remove the stale scope from the DCS (patronictl remove) if that cluster is gone", dd, f.SysID, f.DCSKey, f.DCSSysID)
	case f.Running && !f.Managed && f.DCSSysID != "":
		return fmt.Errorf("a PostgreSQL server that Patroni did not start runs on %s (pid %d), but the DCS (%s) says Patroni manages this cluster already: two servers of one cluster are two primaries; stop it first (%s), then start Patroni; nothing written", dd, f.PID, f.DCSKey, f.StopHint)
	case !f.Running && f.DCSSysID == "":
		return fmt.Errorf("the cluster in %s is stopped: install checks (and with --create-roles creates) Patroni's roles over its local socket, so start it (%s) and run install again; nothing written", dd, f.StartHint)
	}
	return nil
}

// postmasterPID reads postmaster.pid of dataDir: the pid when that process
// is alive and a postgres, and its first socket directory and port.
func postmasterPID(dataDir string) (pid, port int, socketDir string, ok bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, "", false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 5 {
		return 0, 0, "", false
	}
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, 0, "", false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, 0, "", false
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || !strings.HasPrefix(string(comm), "postgres") {
		return 0, 0, "", false
	}
	port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	return pid, port, strings.TrimSpace(lines[4]), true
}

// adoptState is the adoption part of one install run.
type adoptState struct {
	facts     adoptFacts
	port      int
	socketDir string
	fixes     []roleFix
}

// gatherAdoption reads the facts of the cluster to adopt. The DCS is read
// with the rendered patroni.yml's settings.
func (in *installer) gatherAdoption() (*adoptState, error) {
	l := layoutFor(&in.o, &in.f)
	dd := in.p(l.DataDir)
	a := &adoptState{}
	f := &a.facts
	f.DataDir, f.BinVersion = l.DataDir, in.f.PGVersion
	f.StopHint = debianStopHint(&in.o, l.DataDir)
	f.StartHint = "pg_ctl -D " + l.DataDir + " start, as postgres"
	if m := debianClusterRE().FindStringSubmatch(in.o.DebianCluster); m != nil {
		f.StartHint = "pg_ctlcluster " + m[1] + " " + m[2] + " start"
	}
	v, err1 := os.ReadFile(filepath.Join(dd, "PG_VERSION"))
	ctl, err2 := os.ReadFile(filepath.Join(dd, "global", "pg_control"))
	if err1 != nil || err2 != nil {
		return a, nil
	}
	f.HasCluster, f.DataVersion = true, strings.TrimSpace(string(v))
	if c, err := replica.ParseControl(ctl); err == nil {
		f.SysID = c.SystemID
	} else if f.DataVersion == f.BinVersion {
		return nil, usage("data-dir", "%s/global/pg_control: %v: is it a PostgreSQL %s data directory?", l.DataDir, err, f.BinVersion)
	}
	f.PID, a.port, a.socketDir, f.Running = postmasterPID(dd)
	f.Managed = f.Running && patroniRunning(in.o.PatroniConfig)
	val, found, key, err := in.readInitialize()
	f.DCSKey = key
	switch {
	case err != nil:
		f.DCSErr = err.Error()
	default:
		f.DCSReachable = true
		if found {
			f.DCSSysID = strings.TrimSpace(val)
		}
	}
	return a, nil
}

// readInitialize reads the scope's DCS key initialize with the rendered
// patroni.yml's settings.
func (in *installer) readInitialize() (value string, found bool, key string, err error) {
	cfg, err := in.renderedPatroni()
	if err != nil {
		return "", false, "", err
	}
	key = cfg.Key("initialize")
	timeout := in.o.EtcdTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	value, found, err = dcs.ReadKey(ctx, cfg, timeout, "initialize")
	return value, found, key, err
}

// needs are the scope's three roles with the passwords of its secrets.
func (in *installer) roleNeeds() []roleNeed {
	return []roleNeed{
		{Kind: "superuser", Name: SuperuserName, Password: in.secrets.Superuser},
		{Kind: "replication", Name: ReplicationName, Password: in.secrets.Replication},
		{Kind: "rewind", Name: RewindName, Password: in.secrets.Rewind},
	}
}

// checkAdopt runs the adoption checks and, on a running server, the role
// check; with --create-roles the fixes are kept for apply, without it a
// missing or wrong role is a refusal.
func (in *installer) checkAdopt() error {
	a, err := in.gatherAdoption()
	if err != nil {
		return err
	}
	if err := checkAdoption(a.facts); err != nil {
		return err
	}
	in.adopt = a
	if !a.facts.Running {
		in.warn("%s is stopped and the DCS knows its cluster: its roles were not checked", a.facts.DataDir)
		return nil
	}
	out, err := in.psql(a, rolesQuery(in.roleNeeds()))
	if err != nil {
		return fmt.Errorf("reading the roles of the cluster in %s: %w", a.facts.DataDir, err)
	}
	rows, err := parseRoles(out)
	if err != nil {
		return err
	}
	secretsDir := filepath.Join(in.o.SecretsDir, in.o.Scope)
	problems, fixes, err := evalRoles(rows, in.roleNeeds(), secretsDir, scramVerifier)
	if err != nil {
		return err
	}
	if len(problems) > 0 && !in.o.CreateRoles {
		return usage("create-roles", "the cluster in %s lacks what Patroni needs, nothing written:\n  %s\nre-run with --create-roles to create or fix these roles with the passwords of %s/ (or put a role's existing password in its file there, mode 0600)",
			a.facts.DataDir, strings.Join(problems, "\n  "), secretsDir)
	}
	a.fixes = fixes
	return nil
}

// applyRoles runs the role fixes in one transaction.
func (in *installer) applyRoles() error {
	a := in.adopt
	if a == nil || len(a.fixes) == 0 {
		return nil
	}
	var sql strings.Builder
	sql.WriteString("BEGIN;\n")
	for _, f := range a.fixes {
		sql.WriteString(f.SQL + "\n")
	}
	sql.WriteString("COMMIT;\n")
	if _, err := in.psql(a, sql.String()); err != nil {
		return fmt.Errorf("fixing the roles of the cluster in %s (nothing changed there): %w", a.facts.DataDir, err)
	}
	for _, f := range a.fixes {
		in.say("role       %s", f.What)
		in.res.Changes++
	}
	return nil
}

// psql runs sql (on stdin, never on a command line) on the adopted server
// over its local socket, as the OS user postgres (peer authentication),
// and returns psql's unaligned output.
func (in *installer) psql(a *adoptState, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bin := filepath.Join(in.f.BinDir, "psql")
	cmd := exec.CommandContext(ctx, bin, "-X", "-q", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1",
		"-h", a.socketDir, "-p", strconv.Itoa(a.port), "-U", SuperuserName, "-d", "postgres", "-f", "-")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PGAPPNAME=pghook-install", "PGCONNECT_TIMEOUT=10"}
	if in.asRoot && in.pg.uid > 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(in.pg.uid), Gid: uint32(in.pg.gid)}}
	}
	cmd.Stdin = strings.NewReader(sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		// psql's messages name the role or statement, never a password
		// (install sends verifiers); mask them anyway.
		return "", fmt.Errorf("%s on %s port %d as postgres: %v: %s", bin, a.socketDir, a.port, err, strings.TrimSpace(mask(errb.Bytes(), in.secrets.values())))
	}
	return out.String(), nil
}

// adoptNextStep tells the operator what is left: stop the server, start
// Patroni.
func (in *installer) adoptNextStep() {
	a := in.adopt
	if a == nil || a.facts.Managed {
		return
	}
	in.say("next: the cluster in %s is adopted; the one step left is yours:", a.facts.DataDir)
	if a.facts.Running {
		in.say("      stop it: %s", a.facts.StopHint)
	}
	in.say("      then: systemctl start %s", unitName(in.o.Scope))
	if len(in.o.VIP) > 0 {
		in.say("            systemctl start %s", vipWatchName(in.o.Scope))
	}
}
