package pgtab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets this test binary act as a separate writer process, so the
// concurrency tests use real processes and real flock, as callbacks do.
func TestMain(m *testing.M) {
	if p := os.Getenv("PGTAB_TEST_WRITER"); p != "" {
		id := os.Getenv("PGTAB_TEST_ID")
		n, _ := strconv.Atoi(os.Getenv("PGTAB_TEST_N"))
		f := File{Path: p, LockTimeout: time.Minute}
		for j := 0; n == 0 || j < n; j++ {
			node := fmt.Sprintf("p%s-%d", id, j)
			if n == 0 { // endless writer for the kill test: keep rewriting
				node = fmt.Sprintf("p%s-%d", id, j%5)
			}
			if err := f.Upsert(context.Background(), Row{Scope: "s", Node: node, DataDir: "/var/lib/postgresql/15/main", Role: "replica"}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writer(t *testing.T, path string, id, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGTAB_TEST_WRITER="+path, "PGTAB_TEST_ID="+strconv.Itoa(id), "PGTAB_TEST_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	return cmd
}

func TestUpsertConcurrentProcesses(t *testing.T) {
	const procs, each = 50, 20
	path := filepath.Join(t.TempDir(), ".pgtab")
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for i := 0; i < procs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := writer(t, path, i, each).Run(); err != nil {
				errs <- fmt.Errorf("writer %d: %w", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rows, err := File{Path: path}.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != procs*each {
		t.Fatalf("got %d rows, want %d: rows were lost", len(rows), procs*each)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.Node] = true
	}
	for i := 0; i < procs; i++ {
		for j := 0; j < each; j++ {
			if !seen[fmt.Sprintf("p%d-%d", i, j)] {
				t.Fatalf("row p%d-%d lost", i, j)
			}
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != Mode {
		t.Fatalf("mode %v, want %v", fi.Mode().Perm(), Mode)
	}
	assertNoTemp(t, filepath.Dir(path))
}

// TestUpsertSurvivesSIGKILL kills writers at random points and checks that
// the roster is always a valid file that the next writer completes.
func TestUpsertSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".pgtab")
	f := File{Path: path}
	if err := f.Upsert(context.Background(), Row{Scope: "s", Node: "keep", Role: "primary"}); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 15; round++ {
		cmd := writer(t, path, round, 0)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(5+round*3) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), strings.Join(Header, ",")+"\n") {
			t.Fatalf("round %d: roster lost its header:\n%s", round, b)
		}
		rows, err := f.Read()
		if err != nil {
			t.Fatalf("round %d: invalid roster after SIGKILL: %v", round, err)
		}
		if len(Select(rows, "s", "keep")) != 1 {
			t.Fatalf("round %d: an unrelated row was lost", round)
		}
		// The next callback completes the roster.
		if err := f.Upsert(context.Background(), Row{Scope: "s", Node: fmt.Sprintf("next-%d", round), Role: "replica"}); err != nil {
			t.Fatalf("round %d: next upsert: %v", round, err)
		}
	}
	assertNoTemp(t, filepath.Dir(path))
	rows, _ := f.Read()
	for round := 0; round < 15; round++ {
		if len(Select(rows, "s", fmt.Sprintf("next-%d", round))) != 1 {
			t.Fatalf("row next-%d missing", round)
		}
	}
}

func TestUpsertKeepsUnreadableFileAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".pgtab")
	os.WriteFile(path, []byte("SCOPE,NODENAME\n\"unterminated,n1\n"), 0o640)
	// LazyQuotes accepts most damage; force a real CSV error with a bare
	// quote in an unquoted field followed by a field count mismatch is not
	// an error either, so simulate an unreadable file by permissions when
	// not root.
	if err := (File{Path: path}).Upsert(context.Background(), Row{Scope: "s", Node: "n1", Role: "replica"}); err != nil {
		t.Fatal(err)
	}
	rows, err := File{Path: path}.Read()
	if err != nil || len(Select(rows, "s", "n1")) != 1 {
		t.Fatalf("rows %+v err %v", rows, err)
	}
}

func TestUpsertRejectsInvalidRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".pgtab")
	if err := (File{Path: path}).Upsert(context.Background(), Row{Scope: "", Node: "n"}); err == nil {
		t.Fatal("accepted a row without scope")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("an invalid row created the file")
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

// Callbacks can finish out of order (Patroni does not always kill a slow
// one): the row is the latest-started event's, even when that event changed
// nothing.
func TestUpsertEventOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 21, 33, 15, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type ev struct {
		at    int // ms after t0
		role  string
		stale bool
	}
	tests := []struct {
		name     string
		events   []ev
		wantRole string
	}{
		{"in order", []ev{{0, "primary", false}, {10, "replica", false}}, "replica"},
		{"a slow earlier callback finishes last", []ev{{10, "replica", false}, {0, "primary", true}}, "replica"},
		{"a later event that changed nothing still wins", []ev{{0, "replica", false}, {20, "replica", false}, {10, "primary", true}}, "replica"},
		{"same start is not stale", []ev{{0, "replica", false}, {0, "primary", false}}, "primary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := File{Path: filepath.Join(t.TempDir(), ".pgtab")}
			for i, e := range tt.events {
				err := f.UpsertEvent(context.Background(), Row{Scope: "pglab", Node: "n2", Role: e.role}, at(e.at))
				if e.stale != errors.Is(err, ErrStale) || (!e.stale && err != nil) {
					t.Fatalf("event %d (%+v): err %v, want stale=%v", i, e, err, e.stale)
				}
			}
			rows, err := f.Read()
			if err != nil || len(rows) != 1 || rows[0].Role != tt.wantRole {
				t.Fatalf("rows %+v err %v, want role %s", rows, err, tt.wantRole)
			}
			// Other rows are ordered on their own.
			if err := f.UpsertEvent(context.Background(), Row{Scope: "pglab", Node: "n3", Role: "replica"}, at(-1000)); err != nil {
				t.Fatalf("another node's older event: %v", err)
			}
		})
	}
}
