package pgtab

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Row
	}{
		{"empty", "", nil},
		{"header only", strings.Join(Header, ",") + "\n", nil},
		{"pghook format",
			"SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,ROLE,PATRONI_CONFIG,UPDATED_AT\npostgres,n1,/d,0.0.0.0:5432,/b,primary,/etc/patroni/p.yml,2026-01-02T03:04:05Z\n",
			[]Row{{Scope: "postgres", Node: "n1", DataDir: "/d", Listen: "0.0.0.0:5432", BinDir: "/b", Role: "primary", PatroniConfig: "/etc/patroni/p.yml", UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}},
		{"seed format drops the password",
			"SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,PWD,ROLE\npostgres,postgresql1,/var/lib/postgresql/15/main,0.0.0.0:5432,/usr/lib/postgresql/15/bin,qaz1\nstandalondb,postgresql1,/var/lib/postgresql/15/standalondb,0.0.0.0:5433,/usr/lib/postgresql/15/bin,qaz1,master\n",
			[]Row{
				{Scope: "postgres", Node: "postgresql1", DataDir: "/var/lib/postgresql/15/main", Listen: "0.0.0.0:5432", BinDir: "/usr/lib/postgresql/15/bin"},
				{Scope: "standalondb", Node: "postgresql1", DataDir: "/var/lib/postgresql/15/standalondb", Listen: "0.0.0.0:5433", BinDir: "/usr/lib/postgresql/15/bin", Role: "master"},
			}},
		{"headerless seed lines", "postgres,n2,/d,*:5432,/b,pw\n",
			[]Row{{Scope: "postgres", Node: "n2", DataDir: "/d", Listen: "*:5432", BinDir: "/b"}}},
		{"reordered and extra columns", "ROLE,EXTRA,NODENAME,SCOPE\nreplica,x,n3,s\n",
			[]Row{{Scope: "s", Node: "n3", Role: "replica"}}},
		{"duplicates: last wins", "SCOPE,NODENAME,ROLE\ns,n1,replica\ns,n1,primary\n",
			[]Row{{Scope: "s", Node: "n1", Role: "primary"}}},
		{"rows without scope or node skipped", "SCOPE,NODENAME,ROLE\n,n1,replica\ns,,x\n\n",
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("row %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestEncodeRoundTripAndNoPassword(t *testing.T) {
	rows, _ := Parse(strings.NewReader("SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,PWD,ROLE\nb,n1,/d,l,/b,secretpw,replica\na,n2,\"/d,with comma\",l,/b,secretpw,master\n"))
	var buf bytes.Buffer
	if err := Encode(&buf, rows); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "secretpw") || strings.Contains(buf.String(), "PWD") {
		t.Fatalf("password survived a rewrite:\n%s", buf.String())
	}
	if !strings.HasPrefix(buf.String(), strings.Join(Header, ",")+"\n") {
		t.Fatalf("no header:\n%s", buf.String())
	}
	again, err := Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[0].Scope != "a" || again[0].DataDir != "/d,with comma" {
		t.Fatalf("round trip: %+v", again)
	}
}

func TestMerge(t *testing.T) {
	base := []Row{{Scope: "s", Node: "n1", DataDir: "/d", Role: "replica"}, {Scope: "s", Node: "n2", Role: "replica"}}
	tests := []struct {
		name string
		row  Row
		want []Row
	}{
		{"update keeps known facts", Row{Scope: "s", Node: "n1", Role: "primary"},
			[]Row{{Scope: "s", Node: "n1", DataDir: "/d", Role: "primary"}, {Scope: "s", Node: "n2", Role: "replica"}}},
		{"insert new", Row{Scope: "t", Node: "n1", Role: "replica"},
			append(append([]Row{}, base...), Row{Scope: "t", Node: "n1", Role: "replica"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Merge(base, tt.row)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v", got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("row %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	bad := []Row{{Node: "n"}, {Scope: "s"}, {Scope: "s", Node: "n", DataDir: "a\nb"}}
	for _, r := range bad {
		if r.Validate() == nil {
			t.Errorf("accepted %+v", r)
		}
	}
	if err := (Row{Scope: "s", Node: "n"}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestUpsertSkipsUnchangedRow(t *testing.T) {
	path := t.TempDir() + "/.pgtab"
	f := File{Path: path}
	ctx := context.Background()
	row := Row{Scope: "s", Node: "n", DataDir: "/d", Role: "replica"}
	if err := f.Upsert(ctx, row); err != nil {
		t.Fatal(err)
	}
	fi1, _ := os.Stat(path)
	time.Sleep(20 * time.Millisecond)
	if err := f.Upsert(ctx, row); err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(path)
	if !fi1.ModTime().Equal(fi2.ModTime()) || os.SameFile(fi1, fi2) == false {
		t.Fatal("an unchanged row rewrote the file")
	}
	row.Role = "primary"
	if err := f.Upsert(ctx, row); err != nil {
		t.Fatal(err)
	}
	rows, _ := f.Read()
	if rows[0].Role != "primary" {
		t.Fatalf("changed role not written: %+v", rows)
	}
	// A seed-format file holding the same facts is still rewritten (drops PWD).
	os.WriteFile(path, []byte("SCOPE,NODENAME,DATA_DIR,LISTEN,BIN_DIR,PWD,ROLE\ns,n,/d,,,pw,primary\n"), 0o640)
	if err := f.Upsert(ctx, row); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "pw") {
		t.Fatalf("legacy file not rewritten: %s", b)
	}
}
