//go:build integration

package replica

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
)

// TestConfigDirIntegration: PostgreSQL configured Debian-style, from a
// config_dir outside the data directory. pghook backup saves it; the
// restore lays it into the replica's config_dir; the restored server
// starts from that config_dir (pg_ctl -D CONFIG_DIR) as a streaming standby.
func TestConfigDirIntegration(t *testing.T) {
	pg := testenv.StartPostgres(t)
	parent := pgTempDir(t)
	dataDir := filepath.Join(parent, "data")
	replicaConf := filepath.Join(parent, "etc", "main")

	// The primary's config_dir as a Debian node has it; its data_directory
	// is the replica's path, as on hosts that share one layout.
	src := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(pg.DataDir, "postgresql.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf = append(conf, []byte(fmt.Sprintf("\ndata_directory = '%s'\nhba_file = '%s/pg_hba.conf'\nident_file = '%s/pg_ident.conf'\ninclude_dir = 'conf.d'\n",
		dataDir, replicaConf, replicaConf))...)
	for name, body := range map[string][]byte{
		"postgresql.conf":  conf,
		"pg_hba.conf":      []byte("local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"),
		"pg_ident.conf":    nil,
		"conf.d/name.conf": []byte("cluster_name = 'from_config_dir'\n"),
	} {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, body, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	backups := t.TempDir()
	m, err := Backup(context.Background(), BackupOptions{Dir: backups, Scope: "conf", Host: "127.0.0.1", Port: pg.Port, User: "postgres",
		Compression: "lz4", PgBaseBackup: pg.BinDir + "/pg_basebackup", ConfigDir: src, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if m.ConfigDir != src || len(m.ConfigFiles) != 4 {
		t.Fatalf("config_dir %q files %+v", m.ConfigDir, m.ConfigFiles)
	}

	args, err := ParseArgs([]string{"--config_dir=" + replicaConf, "--scope=conf", "--role=replica", "--datadir=" + dataDir, "--connstring=" + connstr(pg)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := Restore(ctx, RestoreOptions{Args: args, BackupDir: backups, Log: testLog(t)}); err != nil {
		t.Fatalf("restore: %v (exit %d)", err, CodeOf(err))
	}
	for _, f := range m.ConfigFiles {
		fi, err := os.Stat(filepath.Join(replicaConf, f.Name))
		if err != nil || fi.Mode().Perm() != 0o640 || fi.Size() != f.Size {
			t.Fatalf("%s: %v %v", f.Name, fi, err)
		}
	}

	// Start it the Debian way: pg_ctl -D CONFIG_DIR.
	if out, err := exec.Command("chown", "-R", "postgres:postgres", parent).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	testenv.AsPostgres(t, "touch", filepath.Join(dataDir, "standby.signal"))
	port := testenv.FreePort(t)
	testenv.AsPostgres(t, pg.BinDir+"/pg_ctl", "-D", replicaConf, "-l", filepath.Join(parent, "standby.log"), "-w", "-t", "30", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c primary_conninfo='%s'", port, parent, connstr(pg)), "start")
	t.Cleanup(func() {
		exec.Command("runuser", "-u", "postgres", "--", pg.BinDir+"/pg_ctl", "-D", replicaConf, "-m", "immediate", "-w", "stop").Run()
	})
	testenv.WaitFor(t, 30*time.Second, "standby started from config_dir streams", func() error {
		out, err := exec.Command("runuser", "-u", "postgres", "--", pg.BinDir+"/psql", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
			"-U", "postgres", "-XAtqc", "SELECT current_setting('cluster_name'), current_setting('config_file'), (SELECT status FROM pg_stat_wal_receiver)").CombinedOutput()
		want := "from_config_dir|" + filepath.Join(replicaConf, "postgresql.conf") + "|streaming"
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			return fmt.Errorf("%v: %q, want %q", err, got, want)
		}
		return nil
	})
}
