package install

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckAdoption(t *testing.T) {
	ok := adoptFacts{DataDir: "/d", HasCluster: true, DataVersion: "15", BinVersion: "15", SysID: 42,
		DCSReachable: true, DCSKey: "/service/s/initialize", Running: true, PID: 7, StopHint: "pg_ctlcluster 15 s stop", StartHint: "pg_ctlcluster 15 s start"}
	tests := []struct {
		name string
		edit func(*adoptFacts)
		want string // "" = accepted
	}{
		{"running, DCS has no cluster yet", func(*adoptFacts) {}, ""},
		{"running, DCS knows it, Patroni runs it (re-run)", func(f *adoptFacts) { f.DCSSysID, f.Managed = "42", true }, ""},
		{"stopped, DCS knows it", func(f *adoptFacts) { f.DCSSysID, f.Running = "42", false }, ""},
		{"no cluster", func(f *adoptFacts) { f.HasCluster = false }, "holds no PostgreSQL cluster"},
		{"other major version", func(f *adoptFacts) { f.DataVersion = "14" }, "holds a PostgreSQL 14 cluster, but the scope would run PostgreSQL 15"},
		{"DCS unreachable", func(f *adoptFacts) { f.DCSReachable, f.DCSErr = false, "connection refused" }, "start etcd or correct --etcd-endpoints"},
		{"another cluster in the DCS", func(f *adoptFacts) { f.DCSSysID = "43" }, "says the scope's cluster is 43: this is another cluster"},
		{"standalone running on a cluster Patroni manages", func(f *adoptFacts) { f.DCSSysID = "42" }, "stop it first (pg_ctlcluster 15 s stop)"},
		{"stopped, DCS does not know it", func(f *adoptFacts) { f.Running = false }, "start it (pg_ctlcluster 15 s start)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.edit(&f)
			err := checkAdoption(f)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want a refusal containing %q", err, tt.want)
			}
		})
	}
}

func TestEvalRoles(t *testing.T) {
	pw := map[string]string{"superuser": "s3cret-su", "replication": "s3cret-rep", "rewind": "s3cret-rw"}
	needs := []roleNeed{{"superuser", "postgres", pw["superuser"]}, {"replication", "replicator", pw["replication"]}, {"rewind", "rewind_user", pw["rewind"]}}
	ver := func(p string) string { v, _ := scramVerifier(p); return v }
	good := []roleRow{
		{Name: "postgres", Super: true, Login: true, Replication: true, Password: ver(pw["superuser"]), Rewind: true},
		{Name: "replicator", Login: true, Replication: true, Password: ver(pw["replication"])},
		{Name: "rewind_user", Login: true, Password: ver(pw["rewind"]), Rewind: true},
	}
	tests := []struct {
		name     string
		edit     func([]roleRow) []roleRow
		problems []string // substrings, one per problem
		fixes    []string // substrings of the SQL, in order
	}{
		{"all as needed", func(r []roleRow) []roleRow { return r }, nil, nil},
		{"no roles but postgres", func(r []roleRow) []roleRow { return r[:1] },
			[]string{"role replicator (replication) does not exist", "role rewind_user (rewind) does not exist"},
			[]string{`CREATE ROLE "replicator" LOGIN REPLICATION PASSWORD 'SCRAM-SHA-256$4096:`, `CREATE ROLE "rewind_user" LOGIN PASSWORD 'SCRAM-SHA-256$`, `GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO "rewind_user"`}},
		{"rewind user without grants", func(r []roleRow) []roleRow { r[2].Rewind = false; return r },
			[]string{"rewind_user lacks EXECUTE on pg_rewind's functions"}, []string{"GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)"}},
		{"replicator without REPLICATION, no login", func(r []roleRow) []roleRow { r[1].Replication, r[1].Login = false, false; return r },
			[]string{"replicator cannot log in", "replicator lacks REPLICATION"}, []string{`ALTER ROLE "replicator" REPLICATION LOGIN;`}},
		{"other password (md5)", func(r []roleRow) []roleRow { r[1].Password = "md5" + strings.Repeat("0", 32); return r },
			[]string{"role replicator has another password than /s/replication"}, []string{`ALTER ROLE "replicator" PASSWORD 'SCRAM-SHA-256$`}},
		{"superuser without password", func(r []roleRow) []roleRow { r[0].Password = ""; return r },
			[]string{"role postgres has no password"}, []string{`ALTER ROLE "postgres" PASSWORD`}},
		{"superuser not super", func(r []roleRow) []roleRow { r[0].Super = false; return r },
			[]string{"role postgres is not a superuser"}, []string{`ALTER ROLE "postgres" SUPERUSER;`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := tt.edit(append([]roleRow(nil), good...))
			problems, fixes, err := evalRoles(rows, needs, "/s", scramVerifier)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems %q, want %d like %q", problems, len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if !strings.Contains(problems[i], want) {
					t.Errorf("problem %d %q lacks %q", i, problems[i], want)
				}
			}
			var sql []string
			for _, f := range fixes {
				sql = append(sql, f.SQL)
				for _, p := range pw {
					if strings.Contains(f.SQL, p) || strings.Contains(f.What, p) {
						t.Fatalf("a fix holds a password: %q", f.SQL)
					}
				}
			}
			all := strings.Join(sql, "\n")
			if tt.fixes == nil && len(fixes) > 0 {
				t.Fatalf("fixes %q, want none", all)
			}
			for _, want := range tt.fixes {
				if !strings.Contains(all, want) {
					t.Errorf("fixes lack %q:\n%s", want, all)
				}
			}
		})
	}
}

func TestPasswordMatches(t *testing.T) {
	v, err := scramVerifierWith("pencil", []byte("0123456789abcdef"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		stored, user, pw string
		want             bool
	}{
		{v, "u", "pencil", true},
		{v, "u", "pencil2", false},
		{strings.Replace(v, "$4096:", "$4095:", 1), "u", "pencil", false},
		{"md5" + "a7acb1e0c31f9d8c8cbfe51ea3d3fa38", "replicator", "x", false},
		{"", "u", "", false},
		{"SCRAM-SHA-256$garbage", "u", "pencil", false},
	} {
		if got := passwordMatches(tt.stored, tt.user, tt.pw); got != tt.want {
			t.Errorf("passwordMatches(%.30q, %q, %q) = %v", tt.stored, tt.user, tt.pw, got)
		}
	}
	// md5 as PostgreSQL computes it: md5(password || user).
	if !passwordMatches("md5"+md5hex("pu"), "u", "p") {
		t.Error("md5 of password||user not accepted")
	}
}

func TestParsePostgresqlConf(t *testing.T) {
	got := parsePostgresqlConf([]byte(`# comment
data_directory = '/var/lib/postgresql/15/standalondb'		# use data in another directory
port = 5433				# (change requires restart)
Max_Connections=100
cluster_name = 'it''s'
listen_addresses 'localhost'
port = 5434 # later wins
`))
	want := map[string]string{"data_directory": "/var/lib/postgresql/15/standalondb", "port": "5434", "max_connections": "100", "cluster_name": "it's", "listen_addresses": "localhost"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestApplyDebianCluster(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "etc/postgresql/15/standalondb")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte("data_directory = '/srv/sa'\nport = 5433\n"), 0o644)
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"fills the gaps", Options{DebianCluster: "15/standalondb"}, ""},
		{"bad name", Options{DebianCluster: "15-standalondb"}, "want VERSION/NAME"},
		{"unknown cluster", Options{DebianCluster: "15/nope"}, "is 15/nope a cluster of this host"},
		{"other version", Options{DebianCluster: "15/standalondb", PGVersion: "16"}, "contradicts --debian-cluster"},
		{"other data dir", Options{DebianCluster: "15/standalondb", DataDir: "/srv/other"}, "is not the data directory of 15/standalondb (/srv/sa"},
		{"other config dir", Options{DebianCluster: "15/standalondb", ConfigDir: "/etc/x"}, "is not the configuration directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Root = root
			err := applyDebianCluster(&o)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.PGVersion != "15" || o.DataDir != "/srv/sa" || o.Port != 5433 || o.ConfigDir != "/etc/postgresql/15/standalondb" {
				t.Fatalf("got version %q data %q port %d config %q", o.PGVersion, o.DataDir, o.Port, o.ConfigDir)
			}
		})
	}
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
