package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"host=a user=u password=s3cret dbname=x", "host=a user=u password=***** dbname=x"},
		{"password='a b\\'c' host=a", "password=***** host=a"},
		{"postgres://u:pw@h:5432/db", "postgres://u:*****@h:5432/db"},
		{"PGPASSWORD=x", "PGPASSWORD=*****"},
		{"nothing here", "nothing here"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewJSONHasContractFields(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(Options{Format: FormatAuto, Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	log.Error().Str("scope", "s").Err(errors.New("boom")).Msg("x")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON on a non-terminal: %q", buf.String())
	}
	if m["err"] != "boom" || m["scope"] != "s" || m["time"] == nil {
		t.Fatalf("fields: %v", m)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New(Options{Level: "loud"}); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("bad level accepted: %v", err)
	}
	if _, err := New(Options{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("bad format accepted: %v", err)
	}
}
