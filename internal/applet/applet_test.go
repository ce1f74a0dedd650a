package applet

import (
	"reflect"
	"testing"
)

func TestRewrite(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"plain pghook", []string{"/usr/bin/pghook", "callback", "on_start", "master", "s"}, []string{"/usr/bin/pghook", "callback", "on_start", "master", "s"}},
		{"seed callback symlink", []string{"/usr/lib/pghook/callback.sh", "postgres", "n1", "/d", "0.0.0.0:5432", "/b", "pw", "on_start", "master", "postgres"},
			[]string{"pghook", "callback", "postgres", "n1", "/d", "0.0.0.0:5432", "/b", "pw", "on_start", "master", "postgres"}},
		{"create_replica symlink", []string{"create_replica.sh", "--scope=s"}, []string{"pghook", "create-replica", "--scope=s"}},
		{"post_init symlink", []string{"./post_init.sh", "dbname=postgres"}, []string{"pghook", "post-init", "dbname=postgres"}},
		{"pghook-callback", []string{"/x/pghook-callback", "on_stop", "replica", "s"}, []string{"pghook", "callback", "on_stop", "replica", "s"}},
		{"unknown name untouched", []string{"/tmp/whatever", "version"}, []string{"/tmp/whatever", "version"}},
		{"empty argv", nil, []string{"pghook"}},
		{"name in a directory is not enough", []string{"/callback.sh/pghook"}, []string{"/callback.sh/pghook"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rewrite(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Rewrite(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
