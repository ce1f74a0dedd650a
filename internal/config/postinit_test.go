package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pghook/pghook/internal/postinit"
)

// TestPostInitSchema: post_init's roles and databases are read straight
// into postinit's types, and a key they do not have is named.
func TestPostInitSchema(t *testing.T) {
	f, err := Parse(strings.NewReader(`
scopes:
  main:
    post_init:
      rewind_user: rewind_user
      roles:
        - {name: app, login: true, options: [CREATEDB], in_roles: [pg_read_all_data], password_file: /etc/pghook/app.pw}
      databases:
        - {name: appdb, owner: app}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := f.Scopes["main"].PostInit
	wantRoles := []postinit.Role{{Name: "app", Login: true, Options: []string{"CREATEDB"}, InRoles: []string{"pg_read_all_data"}, PasswordFile: "/etc/pghook/app.pw"}}
	if !reflect.DeepEqual(got.Roles, wantRoles) || !reflect.DeepEqual(got.Databases, []postinit.Database{{Name: "appdb", Owner: "app"}}) {
		t.Errorf("post_init %+v", got)
	}
	_, err = Parse(strings.NewReader("scopes:\n  main:\n    post_init:\n      roles: [{name: app, logon: true}]\n"))
	if err == nil || !strings.Contains(err.Error(), "logon") {
		t.Errorf("a misspelt role key: %v", err)
	}
}
