package backupops

import (
	"reflect"
	"strings"
	"testing"
)

func TestInterleaved(t *testing.T) {
	bools := map[string]bool{"move": true, "all": true}
	values := map[string]bool{"scope": true, "backup-dir": true}
	tests := []struct {
		args    []string
		flags   map[string]string
		pos     []string
		wantErr string
	}{
		{[]string{"/b", "--scope", "main"}, map[string]string{"scope": "main"}, []string{"/b"}, ""},
		{[]string{"--scope=main", "/b", "--move"}, map[string]string{"scope": "main", "move": "true"}, []string{"/b"}, ""},
		{[]string{"-scope", "s", "--move=false", "x"}, map[string]string{"scope": "s"}, []string{"x"}, ""},
		{[]string{"x", "--", "--scope"}, map[string]string{}, []string{"x", "--scope"}, ""},
		{[]string{"x", "--scope"}, nil, nil, "--scope needs a value"},
		{[]string{"x", "--bogus"}, nil, nil, "unknown flag --bogus"},
		{[]string{"--move=perhaps"}, nil, nil, "want true or false"},
	}
	for _, tc := range tests {
		fl, pos, err := interleaved(tc.args, bools, values)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(fl, tc.flags) || !reflect.DeepEqual(pos, tc.pos) {
			t.Errorf("%q: %v %q %v, want %v %q", tc.args, fl, pos, err, tc.flags, tc.pos)
		}
	}
}
