//go:build integration

package shellenv

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/testenv"
)

func TestQueryRealServer(t *testing.T) {
	pg := testenv.StartPostgres(t)
	tgt := Target{Scope: "s", Node: "n", DataDir: pg.DataDir, Listen: "0.0.0.0:" + strconv.Itoa(pg.Port), SocketDir: pg.SocketDir, BinDir: pg.BinDir}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	live, err := Query(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if live.VersionNum/10000 != 15 || live.InRecovery || !strings.HasPrefix(live.ConfigFile, pg.DataDir) ||
		!strings.HasSuffix(live.HbaFile, "pg_hba.conf") || live.ClusterName != "pghook_it" {
		t.Fatalf("live facts %+v", live)
	}
	// The exports, evaluated by a real shell, let psql reach the server.
	var b strings.Builder
	WriteExports(&b, tgt.Vars(live, os.Getenv("PATH")))
	cmd := exec.Command("sh", "-c", b.String()+"exec psql -XAtc 'show port'")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0}}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(pg.Port) {
		t.Fatalf("psql through the exported env: %v %s", err, out)
	}
}

func TestQueryDownServerIsBounded(t *testing.T) {
	tgt := Target{Listen: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := Query(ctx, tgt); err == nil {
		t.Fatal("no error from a closed port")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("unbounded")
	}
}
