package postinit

import "testing"

func TestValidate(t *testing.T) {
	bad := []Plan{
		{RewindUser: "x; DROP TABLE y"},
		{Roles: []Role{{Name: "ok", Options: []string{"SUPERUSER; DROP"}}}},
		{Databases: []Database{{Name: "a b"}}},
		{SQLDir: "/nonexistent/dir"},
	}
	for _, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("accepted %+v", p)
		}
	}
}
