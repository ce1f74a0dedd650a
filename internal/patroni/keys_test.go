package patroni

import "testing"

func TestKeyPrefix(t *testing.T) {
	cases := []struct {
		ns, scope, prefix string
	}{
		{"/service/", "main", "/service/main/"},
		{"/service", "main", "/service/main/"},
		{"", "main", "/service/main/"},
		{"service", "pg.1", "/service/pg.1/"},
		{"//a//b/", "s", "/a/b/s/"},
	}
	for _, tc := range cases {
		if p := KeyPrefix(tc.ns, tc.scope); p != tc.prefix {
			t.Errorf("%q %q: prefix %q, want %q", tc.ns, tc.scope, p, tc.prefix)
		}
	}
}
