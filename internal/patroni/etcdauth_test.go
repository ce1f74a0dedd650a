package patroni

import (
	"errors"
	"fmt"
	"testing"
)

func TestKeyPrefixAndRangeEnd(t *testing.T) {
	cases := []struct {
		ns, scope, prefix, end string
	}{
		{"/service/", "main", "/service/main/", "/service/main0"},
		{"/service", "main", "/service/main/", "/service/main0"},
		{"", "main", "/service/main/", "/service/main0"},
		{"service", "pg.1", "/service/pg.1/", "/service/pg.10"},
		{"//a//b/", "s", "/a/b/s/", "/a/b/s0"},
	}
	for _, tc := range cases {
		p := KeyPrefix(tc.ns, tc.scope)
		if p != tc.prefix || PrefixRangeEnd(p) != tc.end {
			t.Errorf("%q %q: prefix %q end %q, want %q %q", tc.ns, tc.scope, p, PrefixRangeEnd(p), tc.prefix, tc.end)
		}
	}
	for in, want := range map[string]string{"a\xff": "b", "\xff\xff": "\x00", "ab": "ac"} {
		if got := PrefixRangeEnd(in); got != want {
			t.Errorf("PrefixRangeEnd(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClassifyEtcdErrors(t *testing.T) {
	cases := []struct {
		body   string
		want   error
		answer bool
	}{
		{`{"error":"etcdserver: authentication is not enabled","code":9}`, ErrAuthNotEnabled, true},
		{`{"error":"etcdserver: authentication failed, invalid user ID or password","code":3}`, ErrAuthFailed, true},
		{`{"error":"etcdserver: user name not found","code":9}`, ErrUserNotFound, true},
		{`{"error":"etcdserver: role name not found","code":9}`, ErrRoleNotFound, true},
		{`{"error":"etcdserver: permission denied","code":7}`, ErrPermission, true},
	}
	for _, tc := range cases {
		err := classify(fmt.Errorf("http://e:2379: %w", &statusError{code: 400, body: tc.body}))
		if !errors.Is(err, tc.want) || IsEtcdAnswer(err) != tc.answer {
			t.Errorf("%s: got %v (answer %v)", tc.body, err, IsEtcdAnswer(err))
		}
	}
	if IsEtcdAnswer(&statusError{code: 404}) || IsEtcdAnswer(errors.New("connection refused")) {
		t.Error("a 404 or a dial error counted as etcd's answer")
	}
	for v, want := range map[any]string{"READWRITE": "READWRITE", 2.0: "READWRITE", 1.0: "WRITE", nil: "READ"} {
		if got := permTypeName(v); got != want {
			t.Errorf("permTypeName(%v) = %s, want %s", v, got, want)
		}
	}
}
