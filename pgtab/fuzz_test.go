package pgtab

// go test -fuzz targets for the roster (make fuzz runs each for FUZZTIME;
// plain go test runs the seeds in testdata/fuzz/<Name>/). ~postgres/.pgtab
// is written by pghook but may be the seed's file (with its PWD column) or
// edited by hand, and every callback parses it.

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"strings"
	"testing"
	"time"
)

// normTime is what UPDATED_AT keeps through Encode: whole seconds, UTC,
// and only years RFC 3339 can spell.
func normTime(t time.Time) time.Time {
	if t.IsZero() || t.Year() < 0 || t.Year() > 9999 {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Second)
}

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := Parse(bytes.NewReader(b))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if r.Scope == "" || r.Node == "" || strings.HasPrefix(r.Scope, "#") {
				t.Fatalf("kept a row without scope or node, or a comment: %+v", r)
			}
			if seen[r.Key()] {
				t.Fatalf("two rows for %s/%s", r.Scope, r.Node)
			}
			seen[r.Key()] = true
		}
		// parse → render → parse. Only rows pghook would write itself are
		// expected back unchanged (csv folds \r\n inside a quoted field).
		var valid []Row
		for _, r := range rows {
			if r.Validate() == nil {
				r.UpdatedAt = normTime(r.UpdatedAt)
				valid = append(valid, r)
			}
		}
		var buf bytes.Buffer
		if err := Encode(&buf, valid); err != nil {
			t.Fatalf("encoding parsed rows: %v", err)
		}
		if !bytes.HasPrefix(buf.Bytes(), []byte(strings.Join(Header, ",")+"\n")) {
			t.Fatalf("encoded roster does not start with the header: %q", buf.String())
		}
		again, err := Parse(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("re-parsing the encoded roster: %v\n%s", err, buf.String())
		}
		want := Select(valid, "", "")
		sortRows(want)
		if len(again) != len(want) {
			t.Fatalf("round trip: %d rows, want %d\n%s", len(again), len(want), buf.String())
		}
		for i := range want {
			a := again[i]
			a.UpdatedAt = normTime(a.UpdatedAt)
			if !reflect.DeepEqual(a, want[i]) {
				t.Fatalf("round trip changed row %d:\ngot  %+v\nwant %+v\n%s", i, a, want[i], buf.String())
			}
		}
		// Merging one more row keeps every other row.
		extra := Row{Scope: "fuzz", Node: "n", Role: "replica"}
		merged := Merge(valid, extra)
		if len(merged) != len(valid)+1 && len(merged) != len(valid) {
			t.Fatalf("Merge of %d rows gave %d", len(valid), len(merged))
		}
	})
}

// sortRows sorts as Encode does: by scope, then node.
func sortRows(rows []Row) {
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && less(rows[j], rows[j-1]); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
}

func less(a, b Row) bool {
	if a.Scope != b.Scope {
		return a.Scope < b.Scope
	}
	return a.Node < b.Node
}

// FuzzLegacyPassword: a seed-format roster line carries a password in its
// PWD column. What pghook writes back must not depend on it at all: the
// encoding of the parsed line equals the encoding of the same line with
// the password emptied.
func FuzzLegacyPassword(f *testing.F) {
	f.Fuzz(func(t *testing.T, header bool, scope, node, dataDir, listen, binDir, pwd, role string) {
		line := func(pw string) []byte {
			var buf bytes.Buffer
			w := csv.NewWriter(&buf)
			if header {
				_ = w.Write(legacyHeader)
			}
			_ = w.Write([]string{scope, node, dataDir, listen, binDir, pw, role})
			w.Flush()
			return buf.Bytes()
		}
		render := func(b []byte) (string, error) {
			rows, err := Parse(bytes.NewReader(b))
			if err != nil {
				return "", err
			}
			var buf bytes.Buffer
			if err := Encode(&buf, rows); err != nil {
				return "", err
			}
			return buf.String(), nil
		}
		with, err1 := render(line(pwd))
		without, err2 := render(line(""))
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("the password decides whether the roster parses: %v / %v", err1, err2)
		}
		if with != without {
			t.Fatalf("the PWD column reaches the written roster:\nwith    %q\nwithout %q", with, without)
		}
		for _, h := range Header {
			if h == "PWD" {
				t.Fatal("pghook's header has a PWD column")
			}
		}
	})
}
