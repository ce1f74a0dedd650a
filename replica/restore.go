package replica

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	Args
	// BackupDir holds <scope>/<id>/ backups (Args.BackupDir wins if set).
	BackupDir string
	// ClusterSystemID reads the cluster's system identifier from the DCS
	// (Patroni's initialize key); found is false when the key is absent.
	// Nil when there is no DCS to ask.
	ClusterSystemID func(ctx context.Context) (id uint64, found bool, err error)
	// Dial opens the replication connection to the leader; nil: DialLeader.
	Dial func(ctx context.Context, connstring string) (Leader, error)
	// TablespaceMapping moves tablespaces: the backed-up server's directory
	// → this host's (pghook.yaml's create_replica.tablespace_mapping);
	// Args.TablespaceMapping (the method section, --tablespace_mapping)
	// wins for the same directory. Unmapped tablespaces go where they were.
	TablespaceMapping map[string]string
	// ConfigDir is PostgreSQL's configuration directory when it is not the
	// data directory (patroni.yml's postgresql.config_dir; Args.ConfigDir
	// wins): the backup's saved copy of it is laid there.
	ConfigDir string
	// ProgressEvery is the period of progress lines (0: 5s).
	ProgressEvery time.Duration
	// Decompressors are the programs that undo each compression (nil:
	// DefaultDecompressors).
	Decompressors Decompressors
	// BeforeWrite, if set, runs once before the first change to the data
	// directory (BecomeDataOwner for a run as root); its error is returned.
	BeforeWrite func() error
	Log         zerolog.Logger
}

// Result describes a successful Restore.
type Result struct {
	Adopted  bool // keep_data: the data directory already held this cluster
	Backup   Meta
	SystemID uint64
	Bytes    int64 // bytes read from the backup files
	Took     time.Duration
}

// ioErr marks a failure to read the backup or write the data directory.
type ioErr struct{ error }

func (e ioErr) Unwrap() error { return e.error }

// classify maps a restore's error to its exit code: the pre-flight's
// (backupErr) and the extraction's.
func classify(ctx context.Context, err error) ExitCode {
	var re *Error
	switch {
	case errors.As(err, &re):
		return re.Code
	case ctx.Err() != nil:
		return ExitFailure
	case errors.Is(err, ErrUnsafeArchive), errors.Is(err, ErrChecksum), errors.Is(err, ErrManifest), errors.Is(err, ErrWALRecord):
		return ExitVerify
	case errors.As(err, new(ioErr)), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EIO), errors.Is(err, fs.ErrPermission):
		return ExitIO
	}
	return ExitVerify // a corrupt compressed stream
}

// Restore builds a replica in opts.DataDir from the newest published
// backup of opts.Scope (see the package doc for the checks). On failure it
// returns an *Error and the data directory is as it was found (absent, or
// with the same entries) — except what it cleared on purpose before
// restoring: an interrupted restore of its own, or, with keep_data, a data
// directory it was replacing (then empty, or partly emptied after an I/O
// error while removing).
//
// Its phases: identify (the backups, then the cluster's system identifier
// from the DCS and the leader), inspect (the data directory: empty,
// adoptable, or to be replaced), then for each backup, newest first,
// preflight (the backup's own checks, then the leader's WAL), extract and
// finish. A backup refused with 4 or 6 gives way to the next older one.
func Restore(ctx context.Context, opts RestoreOptions) (res Result, err error) {
	start := time.Now()
	j, err := opts.resolve()
	if err != nil {
		return res, err
	}
	defer func() { err = cancelled(ctx, err) }()

	leader := &leaderConn{dial: j.dial, connString: j.connString}
	defer leader.Close()
	id, err := j.identify(ctx, leader)
	if err != nil {
		return res, err
	}
	res.SystemID = id.sysid
	dir, err := j.inspect(id.sysid)
	if err != nil {
		return res, err
	}
	if dir.adopt {
		res.Adopted, res.Took = true, time.Since(start)
		return res, nil
	}
	if len(id.backups) == 0 {
		return res, noBackup(j.backupDir, j.scope, id.skipped)
	}
	t := &attempt{job: j, leader: leader, sysid: id.sysid, leaderInfo: id.leaderInfo, st: dir.st, wipe: dir.wipe}
	if err := verdict(j.log, t.newestFirst(ctx, id.backups)); err != nil {
		return res, err
	}
	res.Backup, res.Bytes, res.Took = t.backup, t.read, time.Since(start)
	return res, nil
}

// job is a restore with its settings resolved: which of the method
// section's values (Args) and the caller's win is decided once, in
// resolve, and the phases read only this.
type job struct {
	scope      string
	dataDir    string // absolute
	backupDir  string
	connString string
	keepData   bool
	// configDir is PostgreSQL's configuration directory as configured,
	// checked against the data directory by configTarget.
	configDir string
	// mapping moves tablespaces: backed-up directory → this host's, cleaned.
	mapping         map[string]string
	clusterSystemID func(ctx context.Context) (uint64, bool, error)
	dial            func(ctx context.Context, connstring string) (Leader, error)
	progressEvery   time.Duration
	decompressors   Decompressors
	before          func() error // RestoreOptions.BeforeWrite, until it has run
	log             zerolog.Logger
}

// resolve decides RestoreOptions' precedence: the method section's
// backup_dir, config_dir and tablespace_mapping (Args) win over the
// caller's; the backup directory defaults to DefaultBackupDir, the dialer
// to DialLeader; the data directory is made absolute.
func (o RestoreOptions) resolve() (*job, error) {
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fail(ExitUsage, err)
	}
	j := &job{
		scope:           o.Scope,
		dataDir:         dataDir,
		backupDir:       cmp.Or(o.Args.BackupDir, o.BackupDir, DefaultBackupDir),
		connString:      o.ConnString,
		keepData:        o.KeepData,
		configDir:       cmp.Or(o.Args.ConfigDir, o.ConfigDir),
		mapping:         map[string]string{},
		clusterSystemID: o.ClusterSystemID,
		dial:            o.Dial,
		progressEvery:   o.ProgressEvery,
		decompressors:   o.Decompressors,
		before:          o.BeforeWrite,
		log:             o.Log.With().Str("scope", o.Scope).Str("datadir", o.DataDir).Logger(),
	}
	if j.dial == nil {
		j.dial = DialLeader
	}
	for _, m := range []map[string]string{o.TablespaceMapping, o.Args.TablespaceMapping} {
		for k, v := range m {
			j.mapping[filepath.Clean(k)] = filepath.Clean(v)
		}
	}
	return j, nil
}

// beforeWrite runs RestoreOptions.BeforeWrite once, before the first
// change to the data directory.
func (j *job) beforeWrite() error {
	f := j.before
	if f == nil {
		return nil
	}
	j.before = nil
	return f()
}

// leaderConn is the replication connection to the leader. A WAL probe
// leaves a connection unusable, so after one it is dialled again.
type leaderConn struct {
	dial       func(ctx context.Context, connstring string) (Leader, error)
	connString string
	conn       Leader // nil: no connstring
	probed     bool
}

// connect dials the leader: a server that answered and refused
// (authentication, pg_hba) is exit 1, no answer is exit 6.
func (l *leaderConn) connect(ctx context.Context) error {
	c, err := l.dial(ctx, l.connString)
	if err != nil {
		if errors.As(err, new(*pgconn.PgError)) {
			return fail(ExitFailure, err)
		}
		return fail(ExitWALGone, fmt.Errorf("no leader: %w", err))
	}
	l.conn = c
	return nil
}

// forProbe returns a connection a WAL probe can use (nil without a
// connstring), dialling and identifying again after a probe.
func (l *leaderConn) forProbe(ctx context.Context) (Leader, error) {
	if l.conn == nil {
		return nil, nil
	}
	if l.probed {
		l.conn.Close()
		if err := l.connect(ctx); err != nil {
			return nil, err
		}
		if _, err := l.conn.IdentifySystem(ctx); err != nil {
			return nil, fail(ExitFailure, err)
		}
	}
	return l.conn, nil
}

// Close closes the connection, if any.
func (l *leaderConn) Close() {
	if l.conn != nil {
		l.conn.Close()
	}
}

// identity is what identify learned: the backups to try and which
// cluster this is.
type identity struct {
	backups    []Meta
	skipped    []Skipped
	sysid      uint64
	leaderInfo SystemInfo
}

// identify lists the scope's published backups — none, and nothing to
// adopt, is exit 3 before asking anyone — then learns the cluster's system
// identifier from the DCS and from the leader (connected when there is a
// connstring).
func (j *job) identify(ctx context.Context, leader *leaderConn) (identity, error) {
	var id identity
	var err error
	id.backups, id.skipped, err = Scan(j.backupDir, j.scope)
	if err != nil {
		return id, fail(ExitIO, err)
	}
	for _, sk := range id.skipped {
		j.log.Warn().Str("dir", sk.Dir).Str("reason", sk.Reason).Msg("not a published backup: skipped")
	}
	if len(id.backups) == 0 && !j.keepData {
		return id, noBackup(j.backupDir, j.scope, id.skipped)
	}
	if j.connString != "" {
		if err := leader.connect(ctx); err != nil {
			return id, err
		}
	}
	id.sysid, id.leaderInfo, err = clusterIdentity(ctx, j.log, j.clusterSystemID, leader.conn)
	return id, err
}

// dirPlan is what inspect decided about the data directory.
type dirPlan struct {
	st    dirState
	adopt bool // keep_data: it already holds this cluster; nothing to restore
	wipe  bool // keep_data: replace what it holds once a pre-flight has passed
}

// inspect decides what to do with the data directory: empty (or absent)
// is restored into; with keep_data, a copy of this cluster is adopted and
// anything else that may be replaced is replaced; otherwise a non-empty
// directory is exit 5. What an interrupted restore of pghook left is
// cleared first: it is never a copy to adopt (its pg_control may be
// complete while other files are not).
func (j *job) inspect(sysid uint64) (dirPlan, error) {
	st, err := inspectDataDir(j.dataDir)
	if err != nil {
		return dirPlan{}, fail(ExitIO, err)
	}
	if st.entries[restoringMarker] {
		if err := j.beforeWrite(); err != nil {
			return dirPlan{}, err
		}
		if st, err = clearInterrupted(j.log, j.dataDir); err != nil {
			return dirPlan{}, err
		}
	}
	d := dirPlan{st: st}
	if len(st.significant) == 0 {
		return d, nil
	}
	if !j.keepData {
		return d, failf(ExitNotEmpty, "data directory %s is not empty (%s…) and keep_data is not set", j.dataDir, st.significant[0])
	}
	why := adoptable(j.dataDir, sysid)
	if why == "" {
		j.log.Info().Uint64("system_identifier", sysid).Msg("keep_data: the data directory already holds this cluster; adopted without copying")
		d.adopt = true
		return d, nil
	}
	if err := checkReplaceable(j.dataDir); err != nil {
		return d, err
	}
	j.log.Warn().Str("reason", why).Strs("entries", st.significant).
		Msg("keep_data: the data directory cannot be adopted; it will be replaced by the backup once the pre-flight has passed")
	d.wipe = true
	return d, nil
}

// noBackup is the exit-3 error, naming the directories that are not
// published backups and what to do about them.
func noBackup(dir, scope string, skipped []Skipped) error {
	if len(skipped) == 0 {
		return failf(ExitNoBackup, "no published backup of scope %s in %s (take one with: pghook backup --scope %s)", scope, filepath.Join(dir, scope), scope)
	}
	var why []string
	for _, s := range skipped {
		why = append(why, filepath.Base(s.Dir)+": "+s.Reason)
	}
	what := fmt.Sprintf("%d directories there are not", len(skipped))
	if len(skipped) == 1 {
		what = "the directory there is not"
	}
	return failf(ExitNoBackup, "no published backup of scope %s in %s; %s: %s", scope, filepath.Join(dir, scope), what, strings.Join(why, "; "))
}

// Stages of an attempt: how far a backup got before it was refused.
const (
	stageBackup  = 1 // the backup's own checks
	stageWAL     = 2 // the leader's WAL after it
	stageExtract = 3 // the extraction
)

// tryResult is the outcome of restoring one backup: stage is how far it
// got.
type tryResult struct {
	id    string
	stage int
	err   error
}

func describeTries(tried []tryResult) []string {
	var out []string
	for _, r := range tried {
		if r.err == nil {
			out = append(out, r.id+": restored")
			continue
		}
		out = append(out, fmt.Sprintf("%s: exit %d (%v)", r.id, CodeOf(r.err), r.err))
	}
	return out
}

// verdict logs the backups tried when there were several and returns nil
// when the last was restored; otherwise the error of the one that got
// furthest (the newest among equals), which says every try when there
// were several.
func verdict(log zerolog.Logger, tried []tryResult) error {
	last := tried[len(tried)-1]
	if len(tried) > 1 {
		ev := log.Info()
		if last.err != nil {
			ev = log.Warn()
		}
		ev.Strs("tried", describeTries(tried)).Msg("backups tried, newest first")
	}
	if last.err == nil {
		return nil
	}
	best := tried[0]
	for _, r := range tried[1:] {
		if r.stage > best.stage {
			best = r
		}
	}
	if len(tried) == 1 {
		return best.err
	}
	return &Error{Code: CodeOf(best.err), Err: fmt.Errorf("tried %d backups, newest first, none restored: %s", len(tried), strings.Join(describeTries(tried), "; "))}
}

// attempt restores one backup after another into the same data directory.
type attempt struct {
	*job
	leader     *leaderConn
	sysid      uint64
	leaderInfo SystemInfo
	st         dirState
	wipe       bool // keep_data: the data directory still has to be emptied

	backup Meta  // the backup restored
	read   int64 // its bytes read
}

// newestFirst tries the backups in order (newest first) until one is
// restored or one is refused for a reason an older backup cannot cure
// (anything but 4 and 6). Backups of another cluster are not tried, except
// the newest, whose refusal says why none could be used.
func (t *attempt) newestFirst(ctx context.Context, backups []Meta) []tryResult {
	var tried []tryResult
	for i, b := range backups {
		if b.SystemID != t.sysid && i > 0 {
			t.log.Info().Str("backup_id", b.ID).Uint64("backup_system_identifier", b.SystemID).Msg("backup of another cluster: not tried")
			continue
		}
		r := t.try(ctx, b)
		tried = append(tried, r)
		if r.err == nil {
			break
		}
		code := CodeOf(r.err)
		t.log.Warn().Str("backup_id", b.ID).Int("exit_code", int(code)).Err(r.err).Msg("backup refused")
		if code != ExitVerify && code != ExitWALGone {
			break
		}
	}
	return tried
}

// ready is a backup that passed its pre-flight: what extract lays and
// where.
type ready struct {
	b           Meta
	plan        *plan
	tablespaces []*tsTarget
	configDir   string // "" when the configuration lives in the data directory
}

// try restores backup b: locked against retention, pre-flighted,
// extracted and finished; on failure, the data directory is as the
// attempt found it (what a wipe removed stays removed: the directory is
// then empty, and Patroni's next method or the next older backup can use
// it).
func (t *attempt) try(ctx context.Context, b Meta) (r tryResult) {
	r.id, r.stage = b.ID, stageBackup
	log := t.log.With().Str("backup", b.Dir).Logger()
	lock, err := lockBackup(b.Dir)
	if err != nil {
		r.err = failf(ExitVerify, "backup %s went away: %v", b.ID, err)
		return r
	}
	defer lock.Close()
	rd, err := t.preflight(log, b)
	if err != nil {
		r.err = err
		return r
	}
	r.stage = stageWAL
	if r.err = t.probeWAL(ctx, log, rd); r.err != nil {
		return r
	}
	r.stage = stageExtract
	start := time.Now()
	undo, err := t.extract(ctx, log, rd)
	if err == nil {
		err = t.finish(log, rd, start)
	}
	if err != nil && undo != nil {
		undo()
	}
	r.err = err
	return r
}

// preflight checks backup b without touching the data directory: its
// files against pghook.json, its manifest, WAL and label (planBackup),
// that it is of this cluster, where its tablespaces and its config_dir
// copy go.
func (t *attempt) preflight(log zerolog.Logger, b Meta) (*ready, error) {
	if err := checkMetaFiles(b); err != nil {
		return nil, err
	}
	plan, err := planBackup(b.Dir, t.decompressors)
	if err != nil {
		return nil, err
	}
	if plan.wal.SystemID != t.sysid {
		return nil, failf(ExitOtherCluster, "backup %s is of system %d, this cluster is %d", b.ID, plan.wal.SystemID, t.sysid)
	}
	if plan.manifest.SystemID != 0 && plan.manifest.SystemID != t.sysid {
		return nil, failf(ExitOtherCluster, "backup %s manifest says system %d, this cluster is %d", b.ID, plan.manifest.SystemID, t.sysid)
	}
	if err := checkMetaAgrees(b, plan); err != nil {
		return nil, err
	}
	tablespaces, err := planTablespaces(plan, t.mapping, t.dataDir)
	if err != nil {
		return nil, err
	}
	for old := range t.mapping {
		if !slices.ContainsFunc(plan.tablespaces, func(t Tablespace) bool { return filepath.Clean(t.Path) == old }) {
			log.Warn().Str("tablespace_dir", old).Msg("tablespace_mapping names a directory that no tablespace of the backup uses")
		}
	}
	configDir, err := configTarget(t.configDir, t.dataDir)
	if err != nil {
		return nil, err
	}
	switch {
	case len(b.ConfigFiles) > 0 && configDir != "":
		if err := checkConfigCopy(b.Dir, b.ConfigFiles); err != nil {
			return nil, err
		}
	case len(b.ConfigFiles) > 0:
		log.Info().Str("saved_config_dir", b.ConfigDir).Msg("the backup holds a config_dir copy, but this node keeps its configuration in the data directory: not laid")
		b.ConfigFiles = nil
	case configDir != "":
		log.Warn().Str("config_dir", configDir).Msg("config_dir is set but the backup holds no copy of one: left as it is")
	}
	return &ready{b: b, plan: plan, tablespaces: tablespaces, configDir: configDir}, nil
}

// probeWAL checks that the leader still has the WAL after the backup:
// a START_REPLICATION probe at the segment a restored standby will ask
// for, unless that is the segment the leader is writing.
func (t *attempt) probeWAL(ctx context.Context, log zerolog.Logger, rd *ready) error {
	b, plan := rd.b, rd.plan
	leader, err := t.leader.forProbe(ctx)
	if err != nil {
		return err
	}
	if leader == nil {
		return failf(ExitWALGone, "no leader (empty --connstring): cannot check that the WAL after backup %s is still available", b.ID)
	}
	tli, at := plan.nextWAL()
	li := t.leaderInfo
	if seg := LSN(plan.wal.SegSize); li.Timeline == tli && li.XLogPos != 0 && at == li.XLogPos-li.XLogPos%seg {
		// The leader is writing that very segment (nothing happened since
		// the backup): it exists, and a probe would only wait for WAL.
		log.Debug().Str("probe_lsn", at.String()).Str("leader_lsn", li.XLogPos.String()).Msg("the WAL after the backup is the leader's current segment: no probe")
	} else {
		t.leader.probed = true
		if err := leader.ProbeWAL(ctx, tli, at); err != nil {
			if errors.Is(err, ErrWALGone) {
				return fail(ExitWALGone, fmt.Errorf("backup %s ends at %s: %w", b.ID, plan.end, err))
			}
			return fail(ExitFailure, err)
		}
	}
	log.Info().Str("backup_id", b.ID).Uint64("system_identifier", t.sysid).Uint32("leader_timeline", li.Timeline).
		Str("end_lsn", plan.end.String()).Str("probe_lsn", at.String()).Int64("data_bytes", plan.manifest.DataSize()).
		Str("compression", plan.compression).Msg("pre-flight passed: extracting")
	return nil
}

// extract writes the backup: the data directory emptied when it is being
// replaced, created or its mode fixed, the tablespace directories
// prepared, the marker written, the archives extracted, verified and
// synced, the config_dir copy laid. undo, once non-nil, puts the data and
// tablespace directories back as extract found them; the caller runs it
// when extract or finish fails.
func (t *attempt) extract(ctx context.Context, log zerolog.Logger, rd *ready) (undo func(), err error) {
	if err := t.beforeWrite(); err != nil {
		return nil, err
	}
	if t.wipe {
		st, err := wipeDataDir(log, t.dataDir)
		if err != nil {
			return nil, err
		}
		t.st, t.wipe = st, false
	}
	undoData, err := prepareDataDir(t.dataDir, t.st)
	if err != nil {
		return nil, fail(ExitIO, err)
	}
	undoTS, err := prepareTablespaces(rd.tablespaces)
	if err != nil {
		if uerr := undoData(); uerr != nil {
			log.Error().Err(uerr).Msg("cleaning up the data directory")
		}
		return nil, fail(ExitIO, err)
	}
	undo = func() {
		if uerr := undoTS(); uerr != nil {
			log.Error().Err(uerr).Msg("cleaning up the tablespace directories")
		}
		if uerr := undoData(); uerr != nil {
			log.Error().Err(uerr).Msg("cleaning up the data directory")
		}
	}
	for _, ts := range rd.tablespaces {
		log.Info().Str("tablespace", ts.OID).Str("backed_up_dir", ts.Path).Str("dir", ts.Target).Msg("restoring tablespace")
	}
	if err := writeMarker(t.dataDir, t.st, rd.plan.manifest, rd.tablespaces); err != nil {
		return undo, fail(ExitIO, err)
	}
	n, err := extractAll(ctx, log, t.dataDir, t.st, rd.plan, rd.tablespaces, t.sysid, t.progressEvery)
	t.read = n
	if err != nil {
		return undo, fail(classify(ctx, err), err)
	}
	if len(rd.b.ConfigFiles) > 0 {
		staged, err := stageConfigDir(rd.b.Dir, rd.b.ConfigFiles, rd.configDir)
		if err != nil {
			return undo, err
		}
		if err := staged.commit(); err != nil {
			return undo, err
		}
		log.Info().Str("config_dir", rd.configDir).Int("files", len(rd.b.ConfigFiles)).Msg("config_dir files laid from the backup")
	}
	return undo, nil
}

// finish removes the marker: complete and synced, only now is the data
// directory a replica.
func (t *attempt) finish(log zerolog.Logger, rd *ready, start time.Time) error {
	if err := removeMarker(t.dataDir); err != nil {
		return fail(ExitIO, err)
	}
	t.backup = rd.b
	took := time.Since(start)
	size := rd.plan.manifest.DataSize()
	log.Info().Int64("read_bytes", t.read).Int64("data_bytes", size).Float64("took_s", round1(took.Seconds())).
		Float64("mb_per_s", round1(float64(size)/1e6/took.Seconds())).Msg("replica restored and verified; PostgreSQL left stopped")
	return nil
}

// configTarget cleans the config_dir to lay files into: "" when unset or
// when it is the data directory (then the files came with base.tar).
func configTarget(dir, dataDir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fail(ExitUsage, fmt.Errorf("config_dir %s: %w", dir, err))
	}
	if within(abs, dataDir) {
		return "", nil
	}
	if within(dataDir, abs) {
		return "", failf(ExitUsage, "config_dir %s contains the data directory %s", abs, dataDir)
	}
	return abs, nil
}

// clusterIdentity returns the cluster's system identifier: from the DCS
// and from the leader; both must agree, and at least one must answer.
func clusterIdentity(ctx context.Context, log zerolog.Logger, dcs func(context.Context) (uint64, bool, error), leader Leader) (uint64, SystemInfo, error) {
	var fromDCS uint64
	if dcs != nil {
		id, found, err := dcs(ctx)
		switch {
		case err != nil:
			log.Warn().Err(err).Msg("reading the initialize key from the DCS; relying on the leader")
		case !found:
			log.Warn().Msg("no initialize key in the DCS; relying on the leader")
		default:
			fromDCS = id
		}
	}
	var si SystemInfo
	if leader != nil {
		var err error
		si, err = leader.IdentifySystem(ctx)
		if err != nil {
			return 0, si, fail(ExitFailure, err)
		}
		if fromDCS != 0 && si.SystemID != fromDCS {
			return 0, si, failf(ExitOtherCluster, "the leader in --connstring is system %d but the DCS initialize key says %d", si.SystemID, fromDCS)
		}
		return si.SystemID, si, nil
	}
	if fromDCS == 0 {
		return 0, si, failf(ExitOtherCluster, "cannot tell which cluster this is: no DCS initialize key and no --connstring")
	}
	return fromDCS, si, nil
}

// dirState is what a data directory held before pghook touched it.
type dirState struct {
	exists      bool
	mode        os.FileMode
	entries     map[string]bool // every name in it
	significant []string        // names other than dotfiles and lost+found
	createdTop  string          // first missing ancestor (or dataDir itself)
}

func inspectDataDir(dataDir string) (dirState, error) {
	st := dirState{entries: map[string]bool{}}
	fi, err := os.Stat(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		top := dataDir
		for p := filepath.Dir(dataDir); p != top; p = filepath.Dir(p) {
			if _, err := os.Lstat(p); err == nil {
				break
			}
			top = p
		}
		st.createdTop = top
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	if !fi.IsDir() {
		return st, failf(ExitNotEmpty, "data directory %s is not a directory", dataDir)
	}
	st.exists, st.mode = true, fi.Mode().Perm()
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return st, fmt.Errorf("reading data directory: %w", err)
	}
	for _, e := range ents {
		st.entries[e.Name()] = true
		if !strings.HasPrefix(e.Name(), ".") && e.Name() != "lost+found" {
			st.significant = append(st.significant, e.Name())
		}
	}
	return st, nil
}

// adoptable returns "" when dataDir holds a cluster with system identifier
// sysid and no live postmaster, else the reason it does not.
func adoptable(dataDir string, sysid uint64) string {
	b, err := os.ReadFile(filepath.Join(dataDir, "global", "pg_control"))
	if err != nil {
		return "no readable global/pg_control"
	}
	cd, err := ParseControl(b)
	if err != nil {
		return err.Error()
	}
	if cd.SystemID != sysid {
		return fmt.Sprintf("it holds system %d, this cluster is %d", cd.SystemID, sysid)
	}
	// Only a copy that was a standby (or an unstarted base backup) is adopted.
	// A former primary may have diverged from the leader's timeline, and
	// adopting it would turn `patronictl reinit` into a silent no-op.
	_, err = os.Stat(filepath.Join(dataDir, "backup_label"))
	hasLabel := err == nil
	switch {
	case cd.State == dbShutdownedInRecovery, cd.State == dbInArchiveRecovery, hasLabel:
	default:
		return fmt.Sprintf("its pg_control state is %s, not a standby's: a former primary may have diverged", dbStateName(cd.State))
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		return "no PG_VERSION"
	}
	if pid, ok := livePostmaster(dataDir); ok {
		return fmt.Sprintf("a postmaster (pid %d) is running on it", pid)
	}
	return ""
}

// PostgreSQL's DBState values (src/include/catalog/pg_control.h).
const (
	dbShutdowned           = 1
	dbShutdownedInRecovery = 2
	dbInArchiveRecovery    = 5
	dbInProduction         = 6
)

func dbStateName(s uint32) string {
	switch s {
	case 0:
		return "starting up"
	case dbShutdowned:
		return "shut down"
	case dbShutdownedInRecovery:
		return "shut down in recovery"
	case 3:
		return "shutting down"
	case 4:
		return "in crash recovery"
	case dbInArchiveRecovery:
		return "in archive recovery"
	case dbInProduction:
		return "in production"
	}
	return fmt.Sprintf("unknown (%d)", s)
}

func postmasterPID(dataDir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// plan is a checked backup, ready to extract.
type plan struct {
	manifest     *Manifest
	base, walTar string // file paths
	tablespaces  []Tablespace
	tsArchives   map[string]string // <oid>.tar[.…] path by OID
	compression  string
	wal          WALHeader
	end          LSN
	endTLI       uint32
	fromStandby  bool
	label        BackupLabel
	storedBytes  int64
	progs        Decompressors // never nil
}

// nextWAL is where a restored standby will ask the leader for WAL: on a
// primary, pg_backup_stop switches WAL, so the standby next needs the
// segment after the one holding the end LSN; a backup taken on a standby
// does not switch, so the standby re-reads the end LSN's segment.
func (p *plan) nextWAL() (uint32, LSN) {
	seg := LSN(p.wal.SegSize)
	at := p.end - p.end%seg
	if !p.fromStandby {
		at += seg
	}
	return p.endTLI, at
}

// planBackup reads and checks a backup without touching the data
// directory; progs (nil: the defaults) undo its compression.
func planBackup(bdir string, progs Decompressors) (*plan, error) {
	if progs == nil {
		progs = DefaultDecompressors()
	}
	mb, err := os.ReadFile(filepath.Join(bdir, "backup_manifest"))
	if err != nil {
		return nil, backupErr(bdir, err)
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return nil, fail(ExitVerify, fmt.Errorf("backup %s: %w", bdir, err))
	}
	p := &plan{manifest: m, storedBytes: int64(len(mb)), tsArchives: map[string]string{}, progs: progs}
	p.endTLI, p.end = m.End()
	ents, err := os.ReadDir(bdir)
	if err != nil {
		return nil, fail(ExitIO, err)
	}
	for _, e := range ents {
		n := e.Name()
		c := compressionOf(n)
		if c == "" {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			return nil, failf(ExitVerify, "backup %s: %s is not a regular file", bdir, n)
		}
		switch {
		case strings.HasPrefix(n, "base.tar"):
			if p.base != "" {
				return nil, failf(ExitVerify, "backup %s has two base archives", bdir)
			}
			p.base, p.compression = filepath.Join(bdir, n), c
		case strings.HasPrefix(n, "pg_wal.tar"):
			if p.walTar != "" {
				return nil, failf(ExitVerify, "backup %s has two WAL archives", bdir)
			}
			p.walTar = filepath.Join(bdir, n)
		default:
			oid, ok := tablespaceArchiveOID(n)
			if !ok {
				return nil, failf(ExitVerify, "backup %s has %s, which is not a pg_basebackup archive name", bdir, n)
			}
			if _, dup := p.tsArchives[oid]; dup {
				return nil, failf(ExitVerify, "backup %s has two archives of tablespace %s", bdir, oid)
			}
			p.tsArchives[oid] = filepath.Join(bdir, n)
		}
		p.storedBytes += fi.Size()
	}
	if p.base == "" {
		return nil, failf(ExitVerify, "backup %s has no base.tar", bdir)
	}
	if p.walTar == "" {
		return nil, failf(ExitVerify, "backup %s has no pg_wal.tar (nor .tar.gz): without the WAL that pg_basebackup -X stream writes there it cannot start (-X fetch puts the WAL in base.tar, -X none leaves it out; neither is restored)", bdir)
	}
	f, err := os.Open(p.walTar)
	if err != nil {
		return nil, fail(ExitIO, err)
	}
	defer f.Close()
	zr, err := p.progs.decompress(f, compressionOf(p.walTar))
	if err != nil {
		return nil, backupErr(bdir, fmt.Errorf("%s: %w", filepath.Base(p.walTar), err))
	}
	defer zr.Close()
	p.wal, _, err = firstWALHeader(zr)
	if err != nil {
		return nil, backupErr(bdir, err)
	}
	label, tsmap, err := labelOf(p.base, p.progs)
	if err != nil {
		return nil, backupErr(bdir, err)
	}
	if p.tablespaces, err = ParseTablespaceMap(tsmap); err != nil {
		return nil, failf(ExitVerify, "backup %s: %v", bdir, err)
	}
	if err := checkTablespaces(p); err != nil {
		return nil, failf(ExitVerify, "backup %s: %v", bdir, err)
	}
	if label.Incremental {
		return nil, failf(ExitVerify, "backup %s is incremental: it needs pg_combinebackup", bdir)
	}
	p.fromStandby = label.From == "standby"
	p.label = label
	return p, nil
}

// backupErr is a failure to read or check backup bdir before anything is
// written: an I/O error (exit 7) when the storage or the system failed —
// EIO, no permission, a decompressor program missing — else a backup that
// failed verification (exit 4: missing or malformed files, corrupt streams).
func backupErr(bdir string, err error) error {
	err = fmt.Errorf("backup %s: %w", bdir, err)
	return fail(classify(context.Background(), err), err)
}

// labelOf reads backup_label and tablespace_map from the start of a base
// archive.
func labelOf(base string, progs Decompressors) (BackupLabel, []byte, error) {
	f, err := os.Open(base)
	if err != nil {
		return BackupLabel{}, nil, err
	}
	defer f.Close()
	zr, err := progs.decompress(f, compressionOf(base))
	if err != nil {
		return BackupLabel{}, nil, err
	}
	defer zr.Close()
	b, tsmap, err := readLabelAndMap(zr)
	if err != nil {
		return BackupLabel{}, nil, err
	}
	return ParseBackupLabel(b), tsmap, nil
}

// prepareDataDir creates the data directory (mode 0700) or fixes its mode,
// and returns the function that puts everything back as it was.
func prepareDataDir(dataDir string, st dirState) (func() error, error) {
	if !st.exists {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			os.RemoveAll(st.createdTop)
			return nil, fmt.Errorf("creating data directory: %w", err)
		}
		return func() error { return os.RemoveAll(st.createdTop) }, nil
	}
	if st.mode != 0o700 && st.mode != 0o750 {
		if err := os.Chmod(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("chmod data directory: %w", err)
		}
	}
	return func() error {
		ents, err := os.ReadDir(dataDir)
		if err != nil {
			return err
		}
		var errs []error
		for _, e := range ents {
			if !st.entries[e.Name()] {
				errs = append(errs, os.RemoveAll(filepath.Join(dataDir, e.Name())))
			}
		}
		errs = append(errs, os.Chmod(dataDir, st.mode))
		return errors.Join(errs...)
	}, nil
}

// extractAll extracts the base and WAL archives in parallel, verifies the
// result and syncs the file system. It returns the bytes read.
func extractAll(ctx context.Context, log zerolog.Logger, dataDir string, st dirState, p *plan, ts []*tsTarget, sysid uint64, every time.Duration) (int64, error) {
	root, err := os.OpenRoot(dataDir)
	if err != nil {
		return 0, ioErr{err}
	}
	defer root.Close()
	tsRoots := make([]*os.Root, len(ts))
	for i, t := range ts {
		if tsRoots[i], err = os.OpenRoot(t.Target); err != nil {
			return 0, ioErr{fmt.Errorf("tablespace %s: %w", t.OID, err)}
		}
		defer tsRoots[i].Close()
	}
	if err := linkTablespaces(root, ts); err != nil {
		return 0, err
	}
	reserved := map[string]bool{restoringMarker: true} // no archive may touch the marker
	for n := range st.entries {
		reserved[n] = true
	}
	x := newExtractor(root, p.manifest, reserved)
	tsx := make([]*extractor, len(ts))
	archives := make([]string, len(ts))
	for i, t := range ts {
		tsx[i], archives[i] = x.sub(tsRoots[i], t.state.entries), t.archive
	}
	read, err := streamArchives(ctx, log, p, x, tsx, archives, sysid, every)
	if err != nil {
		return read, err
	}
	if err := checkRestored(root, sysid); err != nil {
		return read, err
	}
	if err := rewriteTablespaceMap(root, ts); err != nil {
		return read, err
	}
	if err := syncTree(root, dataDir); err != nil {
		return read, ioErr{err}
	}
	for i, t := range ts {
		if err := syncTree(tsRoots[i], t.Target); err != nil {
			return read, ioErr{err}
		}
	}
	return read, nil
}

// streamArchives reads the base, WAL and tablespace archives in parallel
// through x and tsx (one per tablespace archive), writing under their roots
// or, without roots, only checking; then checks that every file of the
// manifest came, that the WAL covers the backup and that every WAL record
// in its range is valid. It returns the bytes read.
func streamArchives(ctx context.Context, log zerolog.Logger, p *plan, x *extractor, tsx []*extractor, tsArchives []string, sysid uint64, every time.Duration) (int64, error) {
	wh := p.wal
	x.walHdr = &wh
	for _, r := range p.manifest.WAL {
		w, err := newWALWalker(r, p.wal)
		if err != nil {
			return 0, err
		}
		x.walkers = append(x.walkers, w)
	}
	files := append([]string{p.base, p.walTar}, tsArchives...)
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	prog := startProgress(log, total, every)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	seg := int64(p.wal.SegSize)
	_, startLSN := p.manifest.Start()
	walCap := (int64(p.end-startLSN)/seg+4)*seg + 1<<20
	baseCap := p.manifest.DataSize() + int64(len(p.manifest.Files)+20000)*2048 + 1<<20

	var wg sync.WaitGroup
	errs := make([]error, len(files))
	run := func(i int, file string, limit int64, do func(io.Reader) error) {
		defer wg.Done()
		errs[i] = extractFile(ctx, p.progs, prog, file, limit, do)
		if errs[i] != nil {
			cancel()
		}
	}
	wg.Add(len(files))
	go run(0, p.base, baseCap, x.extractBase)
	go run(1, p.walTar, walCap, func(r io.Reader) error { return x.extractWAL(r, sysid) })
	for i, tx := range tsx {
		tx, oid := tx, p.tablespaces[i].OID
		if a, ok := tablespaceArchiveOID(filepath.Base(tsArchives[i])); ok {
			oid = a
		}
		go run(2+i, tsArchives[i], baseCap, func(r io.Reader) error { return tx.extractTablespace(r, oid) })
	}
	wg.Wait()
	prog.finish()
	read := prog.done.Load()
	for _, e := range errs {
		// the first real cause, not the other side's "context canceled"
		if e != nil && !errors.Is(e, context.Canceled) {
			return read, e
		}
	}
	if err := errors.Join(errs...); err != nil {
		return read, err
	}
	if miss := x.missing(); len(miss) > 0 {
		sort.Strings(miss)
		return read, fmt.Errorf("%w: %d files of the manifest are not in the archive (e.g. %s)", ErrUnsafeArchive, len(miss), miss[0])
	}
	if err := checkWALCoverage(p, x.wal); err != nil {
		return read, err
	}
	if err := x.finishWALWalks(); err != nil {
		return read, err
	}
	prog.line(log.Info().Int("wal_records", x.walRecords()), "read and checked")
	return read, nil
}

// extractFile opens one archive, decompresses it and feeds it to do.
func extractFile(ctx context.Context, progs Decompressors, prog *progress, file string, limit int64, do func(io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return ioErr{err}
	}
	defer f.Close()
	// Sequential read-ahead: shared storage is read once, front to back.
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	zr, err := progs.decompress(&fileSource{ctx: ctx, f: f, prog: prog}, compressionOf(file))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(file), err)
	}
	defer zr.Close()
	lr := &limitedReader{r: zr, n: limit}
	if err := do(lr); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(file), err)
	}
	// The tar ends before the compressed stream does: read the rest (the
	// padding and the compression's own trailer) so that the decompressor
	// checks its CRC and length and a bad one fails the restore.
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return fmt.Errorf("%s: after the end of the archive: %w", filepath.Base(file), err)
	}
	return nil
}

// checkWALCoverage checks that pg_wal holds every segment from the
// backup's start to its end (single-timeline backups).
func checkWALCoverage(p *plan, got map[string]bool) error {
	if len(p.manifest.WAL) != 1 {
		return nil
	}
	w := p.manifest.WAL[0]
	seg := uint64(p.wal.SegSize)
	for l := uint64(w.Start) - uint64(w.Start)%seg; l <= uint64(w.End); l += seg {
		if n := SegmentName(w.Timeline, LSN(l), seg); !got[n] {
			return fmt.Errorf("%w: WAL segment %s (between %s and %s) is not in the backup", ErrUnsafeArchive, n, w.Start, w.End)
		}
	}
	return nil
}

// checkRestored reads back pg_control and backup_label.
func checkRestored(root *os.Root, sysid uint64) error {
	b, err := root.ReadFile("global/pg_control")
	if err != nil {
		return fmt.Errorf("%w: global/pg_control: %v", ErrUnsafeArchive, err)
	}
	cd, err := ParseControl(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrChecksum, err)
	}
	if cd.SystemID != sysid {
		return &Error{Code: ExitOtherCluster, Err: fmt.Errorf("restored pg_control is of system %d, this cluster is %d", cd.SystemID, sysid)}
	}
	label, err := root.ReadFile("backup_label")
	if err != nil {
		return fmt.Errorf("%w: backup_label: %v", ErrUnsafeArchive, err)
	}
	if bytes.Contains(label, []byte("INCREMENTAL FROM")) {
		return fmt.Errorf("%w: an incremental backup needs pg_combinebackup", ErrUnsafeArchive)
	}
	return nil
}

// syncTree makes the restored files durable: one syncfs(2) for the data
// directory's file system, then the data directory's parent.
func syncTree(root *os.Root, dataDir string) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dataDir, err)
	}
	if p, err := os.Open(filepath.Dir(dataDir)); err == nil {
		p.Sync()
		p.Close()
	}
	return nil
}
