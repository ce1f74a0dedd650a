package netvip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as a helper process instead of
// running tests: "report" and "announce" stand in for the pghook command
// that SpawnDetached starts.
const helperEnv = "PGHOOK_NETVIP_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode, os.Args))
	}
	os.Exit(m.Run())
}

func helperMain(mode string, argv []string) int {
	self, err := os.Executable()
	if err != nil {
		return 2
	}
	if exit, err := RunDetached(self, argv); exit || err != nil {
		if err != nil {
			return 1
		}
		return 0
	}
	switch mode {
	case "report": // argv: self OUTFILE; reports once OUTFILE.go exists
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(argv[1] + ".go"); err == nil {
				break
			}
		}
		sid, _ := unix.Getsid(0)
		report := fmt.Sprintf("%d %d %s", os.Getpid(), sid, strings.Join(ancestors(os.Getpid()), ","))
		tmp := argv[1] + ".tmp"
		if os.WriteFile(tmp, []byte(report), 0o600) != nil || os.Rename(tmp, argv[1]) != nil {
			return 1
		}
		return 0
	case "announce": // argv: self PIDFILE ANNOUNCE-ARGS...
		if err := os.WriteFile(argv[1], []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			return 1
		}
		r, err := ParseAnnounceArgs(argv[2:])
		if err != nil {
			return 1
		}
		if err := Announce(context.Background(), r, zerolog.Nop()); err != nil {
			return 1
		}
		return 0
	}
	return 2
}

// ancestors returns the pids above pid, from its parent up to pid 1.
func ancestors(pid int) []string {
	var out []string
	for pid > 1 && len(out) < 100 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 {
			break
		}
		pid, _ = strconv.Atoi(fields[1])
		out = append(out, strconv.Itoa(pid))
	}
	return out
}

func TestSpawnDetached(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(helperEnv, "report")
	for _, how := range []string{"SpawnDetached", "StartDetached"} {
		t.Run(how, func(t *testing.T) { checkDetached(t, self, how) })
	}
}

// checkDetached spawns the "report" helper with how and checks that it runs
// in a session of its own, with neither the caller nor the middle process
// among its ancestors.
func checkDetached(t *testing.T, self, how string) {
	out := filepath.Join(t.TempDir(), "report")
	spawn := func() error { return SpawnDetached(self, []string{out}) }
	if how == "StartDetached" {
		spawn = func() error {
			wait, err := StartDetached(self, []string{out})
			if err != nil {
				return err
			}
			return wait()
		}
	}
	if err := spawn(); err != nil {
		t.Fatal(err)
	}
	// The middle process has exited: the detached one may look at its
	// ancestors now.
	if err := os.WriteFile(out+".go", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var report []byte
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if report, err = os.ReadFile(out); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the detached process did not report within 10s")
		}
	}
	var pid, sid int
	var anc string
	if _, err := fmt.Sscanf(string(report), "%d %d %s", &pid, &sid, &anc); err != nil {
		t.Fatalf("report %q: %v", report, err)
	}
	me := strconv.Itoa(os.Getpid())
	for _, a := range strings.Split(anc, ",") {
		if a == me || a == strconv.Itoa(sid) {
			t.Errorf("detached process %d has ancestors %s, which include the caller %s or the middle process %d", pid, anc, me, sid)
		}
	}
	if mySid, _ := unix.Getsid(0); sid == mySid || sid == pid {
		t.Errorf("detached process %d is in session %d, want the middle's new session (the caller's is %d)", pid, sid, mySid)
	}
}

func TestRunDetachedOutsideASpawn(t *testing.T) {
	t.Setenv(detachEnv, "")
	exit, err := RunDetached("/nonexistent", []string{"pghook"})
	if exit || err != nil {
		t.Errorf("RunDetached = %t, %v; want false, nil when not started by SpawnDetached", exit, err)
	}
}

func TestSpawnDetachedReportsFailure(t *testing.T) {
	if err := SpawnDetached("/nonexistent/pghook", []string{"vip", "announce"}); err == nil {
		t.Error("SpawnDetached of a missing executable succeeded")
	}
}
