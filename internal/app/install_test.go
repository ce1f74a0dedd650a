package app

import (
	"reflect"
	"testing"
)

func TestRejoinParams(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"a=1", "b=2"}, []string{"a=1", "b=2"}},
		{[]string{"shared_preload_libraries=pg_stat_statements", "auto_explain", "work_mem=4MB"}, []string{"shared_preload_libraries=pg_stat_statements,auto_explain", "work_mem=4MB"}},
		{[]string{"x"}, []string{"x"}},
	}
	for _, tc := range cases {
		if got := rejoinParams(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("rejoinParams(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
