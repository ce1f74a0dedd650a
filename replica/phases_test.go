package replica

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestResolvePrecedence: the method section (Args) wins over the caller's
// backup_dir, config_dir and tablespace_mapping; defaults fill the rest.
func TestResolvePrecedence(t *testing.T) {
	tests := []struct {
		name    string
		opts    RestoreOptions
		backups string
		config  string
		mapping map[string]string
	}{
		{
			name:    "defaults",
			opts:    RestoreOptions{Args: Args{Scope: "s", DataDir: "/d"}},
			backups: DefaultBackupDir,
			mapping: map[string]string{},
		},
		{
			name:    "caller's values",
			opts:    RestoreOptions{Args: Args{Scope: "s", DataDir: "/d"}, BackupDir: "/b", ConfigDir: "/etc/pg", TablespaceMapping: map[string]string{"/old/": "/new/x/.."}},
			backups: "/b", config: "/etc/pg",
			mapping: map[string]string{"/old": "/new"},
		},
		{
			name: "method section wins",
			opts: RestoreOptions{
				Args:      Args{Scope: "s", DataDir: "/d", BackupDir: "/a", ConfigDir: "/etc/a", TablespaceMapping: map[string]string{"/old": "/args", "/t2": "/t2new"}},
				BackupDir: "/b", ConfigDir: "/etc/pg", TablespaceMapping: map[string]string{"/old": "/caller", "/t1": "/t1new"},
			},
			backups: "/a", config: "/etc/a",
			mapping: map[string]string{"/old": "/args", "/t1": "/t1new", "/t2": "/t2new"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := tc.opts.resolve()
			if err != nil {
				t.Fatal(err)
			}
			if j.backupDir != tc.backups || j.configDir != tc.config {
				t.Errorf("backup dir %q, config dir %q; want %q, %q", j.backupDir, j.configDir, tc.backups, tc.config)
			}
			if !reflect.DeepEqual(j.mapping, tc.mapping) {
				t.Errorf("mapping %v, want %v", j.mapping, tc.mapping)
			}
			if j.dial == nil {
				t.Error("no dialer")
			}
		})
	}
}

func TestResolveDataDirAbsolute(t *testing.T) {
	j, err := RestoreOptions{Args: Args{Scope: "s", DataDir: "rel/d"}}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "rel/d"); j.dataDir != want {
		t.Errorf("data dir %q, want %q", j.dataDir, want)
	}
}

// TestBeforeWriteOnce: BeforeWrite runs before the first write and never again.
func TestBeforeWriteOnce(t *testing.T) {
	calls := 0
	j, _ := RestoreOptions{Args: Args{Scope: "s", DataDir: "/d"}, BeforeWrite: func() error { calls++; return errors.New("no") }}.resolve()
	if err := j.beforeWrite(); err == nil {
		t.Error("the first call's error was lost")
	}
	if err := j.beforeWrite(); err != nil || calls != 1 {
		t.Errorf("second call: err %v, %d calls", err, calls)
	}
}

// TestInspect: what the data directory holds decides restore, adopt,
// replace or refuse.
func TestInspect(t *testing.T) {
	const sysid = 7000000000000000001
	tests := []struct {
		name  string
		setup func(t *testing.T, d string)
		keep  bool
		want  dirPlan
		code  ExitCode
	}{
		{name: "absent", setup: func(*testing.T, string) {}},
		{name: "empty", setup: mkdir},
		{name: "only dotfiles and lost+found", setup: func(t *testing.T, d string) {
			mkdir(t, d)
			write(t, filepath.Join(d, ".keep"), nil)
			mkdir(t, filepath.Join(d, "lost+found"))
		}},
		{name: "not empty without keep_data", setup: func(t *testing.T, d string) {
			mkdir(t, d)
			write(t, filepath.Join(d, "PG_VERSION"), []byte("15\n"))
		}, code: ExitNotEmpty},
		{name: "a file, not a directory", setup: func(t *testing.T, d string) { write(t, d, nil) }, code: ExitNotEmpty},
		{name: "this cluster's standby copy is adopted", keep: true, setup: func(t *testing.T, d string) {
			mkdir(t, filepath.Join(d, "global"))
			write(t, filepath.Join(d, "global", "pg_control"), pgControlState(sysid, dbShutdownedInRecovery))
			write(t, filepath.Join(d, "PG_VERSION"), []byte("15\n"))
		}, want: dirPlan{adopt: true}},
		{name: "a former primary is replaced", keep: true, setup: func(t *testing.T, d string) {
			mkdir(t, filepath.Join(d, "global"))
			write(t, filepath.Join(d, "global", "pg_control"), pgControlState(sysid, dbShutdowned))
			write(t, filepath.Join(d, "PG_VERSION"), []byte("15\n"))
		}, want: dirPlan{wipe: true}},
		{name: "another cluster is replaced", keep: true, setup: func(t *testing.T, d string) {
			mkdir(t, filepath.Join(d, "global"))
			write(t, filepath.Join(d, "global", "pg_control"), pgControlState(sysid+1, dbShutdownedInRecovery))
			write(t, filepath.Join(d, "PG_VERSION"), []byte("15\n"))
		}, want: dirPlan{wipe: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "data")
			tc.setup(t, d)
			j, err := RestoreOptions{Args: Args{Scope: "s", DataDir: d, KeepData: tc.keep}, Log: zerolog.Nop()}.resolve()
			if err != nil {
				t.Fatal(err)
			}
			got, err := j.inspect(sysid)
			if tc.code != 0 {
				if CodeOf(err) != tc.code {
					t.Fatalf("err %v (exit %d), want exit %d", err, CodeOf(err), tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.adopt != tc.want.adopt || got.wipe != tc.want.wipe {
				t.Errorf("adopt %v wipe %v, want adopt %v wipe %v", got.adopt, got.wipe, tc.want.adopt, tc.want.wipe)
			}
		})
	}
}

// TestVerdict: the error that is returned is that of the backup that got
// furthest, the newest among equals; several tries are all named.
func TestVerdict(t *testing.T) {
	verify, wal, other := failf(ExitVerify, "bad"), failf(ExitWALGone, "gone"), failf(ExitOtherCluster, "other")
	tests := []struct {
		name  string
		tried []tryResult
		code  ExitCode
		text  string
	}{
		{name: "restored", tried: []tryResult{{id: "a"}}},
		{name: "restored after a refusal", tried: []tryResult{{id: "b", stage: stageBackup, err: verify}, {id: "a", stage: stageExtract}}},
		{name: "one refusal is returned as it is", tried: []tryResult{{id: "a", stage: stageWAL, err: wal}}, code: ExitWALGone, text: "gone"},
		{name: "the furthest wins", tried: []tryResult{{id: "b", stage: stageBackup, err: verify}, {id: "a", stage: stageWAL, err: wal}},
			code: ExitWALGone, text: "tried 2 backups, newest first, none restored: b: exit 4 (bad); a: exit 6 (gone)"},
		{name: "the newest among equals", tried: []tryResult{{id: "b", stage: stageBackup, err: other}, {id: "a", stage: stageBackup, err: verify}},
			code: ExitOtherCluster, text: "tried 2 backups"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verdict(zerolog.Nop(), tc.tried)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("err %v, want nil", err)
				}
				return
			}
			if CodeOf(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err %v (exit %d), want exit %d with %q", err, CodeOf(err), tc.code, tc.text)
			}
		})
	}
}

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestClusterIdentity: the DCS and the leader must agree; one of them
// must answer.
func TestClusterIdentity(t *testing.T) {
	const id = 7000000000000000001
	dcs := func(v uint64, found bool, err error) func(context.Context) (uint64, bool, error) {
		return func(context.Context) (uint64, bool, error) { return v, found, err }
	}
	tests := []struct {
		name   string
		dcs    func(context.Context) (uint64, bool, error)
		leader Leader
		want   uint64
		code   ExitCode
	}{
		{name: "both agree", dcs: dcs(id, true, nil), leader: &fakeLeader{sysid: id}, want: id},
		{name: "the leader alone", leader: &fakeLeader{sysid: id}, want: id},
		{name: "the DCS alone", dcs: dcs(id, true, nil), want: id},
		{name: "no initialize key: the leader decides", dcs: dcs(0, false, nil), leader: &fakeLeader{sysid: id}, want: id},
		{name: "DCS unreadable: the leader decides", dcs: dcs(0, false, errors.New("down")), leader: &fakeLeader{sysid: id}, want: id},
		{name: "they disagree", dcs: dcs(id, true, nil), leader: &fakeLeader{sysid: id + 1}, code: ExitOtherCluster},
		{name: "neither", dcs: dcs(0, false, nil), code: ExitOtherCluster},
		{name: "nothing to ask", code: ExitOtherCluster},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := clusterIdentity(context.Background(), zerolog.Nop(), tc.dcs, tc.leader)
			if CodeOf(err) != tc.code || (tc.code == 0 && got != tc.want) {
				t.Errorf("got %d, %v (exit %d); want %d, exit %d", got, err, CodeOf(err), tc.want, tc.code)
			}
		})
	}
}

// TestProbeWAL: the segment a restored standby asks for first is probed,
// unless it is the one the leader is writing; a leader without it is exit 6.
func TestProbeWAL(t *testing.T) {
	const seg = 16 << 20
	tests := []struct {
		name        string
		end         LSN
		fromStandby bool
		leaderPos   LSN
		walGone     bool
		noLeader    bool
		probed      []LSN
		code        ExitCode
	}{
		{name: "from a primary: the next segment", end: 0x2000100, leaderPos: 0x5000000, probed: []LSN{0x3000000}},
		{name: "from a standby: the end's segment", end: 0x2000100, fromStandby: true, leaderPos: 0x5000000, probed: []LSN{0x2000000}},
		{name: "the leader writes that segment: no probe", end: 0x2000100, leaderPos: 0x3000010},
		{name: "WAL gone", end: 0x2000100, leaderPos: 0x5000000, walGone: true, probed: []LSN{0x3000000}, code: ExitWALGone},
		{name: "no leader", end: 0x2000100, noLeader: true, code: ExitWALGone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fl := &fakeLeader{walGone: tc.walGone}
			lc := &leaderConn{}
			if !tc.noLeader {
				lc.conn = fl
			}
			j := &job{log: zerolog.Nop()}
			at := &attempt{job: j, leader: lc, leaderInfo: SystemInfo{Timeline: 1, XLogPos: tc.leaderPos}}
			p := &plan{wal: WALHeader{SegSize: seg}, end: tc.end, endTLI: 1, fromStandby: tc.fromStandby, manifest: &Manifest{}}
			err := at.probeWAL(context.Background(), zerolog.Nop(), &ready{b: Meta{ID: "b"}, plan: p})
			if CodeOf(err) != tc.code {
				t.Fatalf("err %v (exit %d), want exit %d", err, CodeOf(err), tc.code)
			}
			if !reflect.DeepEqual(fl.probed, tc.probed) {
				t.Errorf("probed %v, want %v", fl.probed, tc.probed)
			}
			if lc.probed != (len(tc.probed) > 0) {
				t.Errorf("connection marked probed %v after %d probes", lc.probed, len(tc.probed))
			}
		})
	}
}
