package hooks

// go test -fuzz targets (make fuzz runs each for FUZZTIME; plain go test
// runs the seeds in testdata/fuzz/<Name>/). Patroni builds the callback's
// argv from its configuration and appends ACTION ROLE SCOPE; a hand-edited
// patroni.yml or the seed's callback.sh line can put anything there.

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// primaryNames are the only role spellings that may become Primary.
var primaryNames = map[string]bool{"master": true, "primary": true, "promoted": true}

func FuzzParseRole(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := ParseRole(s)
		if ok != (r != Unknown) {
			t.Fatalf("ParseRole(%q) = %q, %v: known must mean not Unknown", s, r, ok)
		}
		norm := strings.ToLower(strings.TrimSpace(s))
		if r == Primary && !primaryNames[norm] {
			t.Fatalf("ParseRole(%q) = primary: only master, primary and promoted may be", s)
		}
		if primaryNames[norm] && r != Primary {
			t.Fatalf("ParseRole(%q) = %q, want primary", s, r)
		}
		if ok {
			// A recognised name normalises to a fixed point.
			if r2, ok2 := ParseRole(string(r)); !ok2 || r2 != r {
				t.Fatalf("ParseRole(ParseRole(%q)=%q) = %q, %v: not a fixed point", s, r, r2, ok2)
			}
		}
	})
}

// FuzzParseArgs gets up to nine arguments (n picks how many are passed),
// as Patroni would append them to a configured command line.
func FuzzParseArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, n uint8, a0, a1, a2, a3, a4, a5, a6, a7, a8 string) {
		all := []string{a0, a1, a2, a3, a4, a5, a6, a7, a8}
		args := all[:int(n)%(len(all)+1)]
		ev, err := ParseArgs(args)
		if len(args) == 9 {
			// The sixth legacy argument is the seed's password: nothing
			// ParseArgs returns, event or error text, may depend on it.
			alt := append([]string(nil), args...)
			alt[5] = "other-" + args[5]
			ev2, err2 := ParseArgs(alt)
			if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(ev, ev2) {
				t.Fatalf("the legacy password argument changes the result:\n%+v %v\n%+v %v", ev, err, ev2, err2)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("ParseArgs(%q): error %v does not wrap ErrUsage", args, err)
			}
			if (len(args) == 3 || len(args) == 9) && strings.TrimSpace(args[len(args)-1]) != "" {
				t.Fatalf("ParseArgs(%q) refused a well-formed vector: %v", args, err)
			}
			return
		}
		if len(args) != 3 && len(args) != 9 {
			t.Fatalf("ParseArgs accepted %d arguments", len(args))
		}
		tail := args[len(args)-3:]
		if ev.Scope == "" || ev.Scope != strings.TrimSpace(tail[2]) {
			t.Fatalf("scope %q from %q", ev.Scope, tail[2])
		}
		if string(ev.Action) != strings.TrimSpace(tail[0]) {
			t.Fatalf("action %q from %q", ev.Action, tail[0])
		}
		if ev.RawRole != tail[1] {
			t.Fatalf("raw role %q from %q", ev.RawRole, tail[1])
		}
		// Never an unknown (or differently spelled) role as primary: the VIP
		// follows Primary.
		want, _ := ParseRole(tail[1])
		if ev.Role != want {
			t.Fatalf("role %q from %q, ParseRole says %q", ev.Role, tail[1], want)
		}
		if ev.Role == Primary && !primaryNames[strings.ToLower(strings.TrimSpace(tail[1]))] {
			t.Fatalf("role %q parsed as primary", tail[1])
		}
		if len(args) == 9 {
			if ev.Legacy == nil || *ev.Legacy != (Legacy{Scope: args[0], Node: args[1], DataDir: args[2], Listen: args[3], BinDir: args[4]}) {
				t.Fatalf("legacy arguments %q -> %+v", args[:5], ev.Legacy)
			}
		} else if ev.Legacy != nil {
			t.Fatalf("legacy set for a 3-argument call: %+v", ev.Legacy)
		}
		// The plan holds the VIP only for a known action with a primary role
		// (or a standby leader when the policy says so).
		for _, pol := range []Policy{{}, {StandbyLeaderHoldsVIP: true}} {
			p := Decide(ev, pol)
			if p.VIP == VIPHold {
				ok := ev.Action.Known() && ev.Action != OnStop &&
					(ev.Role == Primary || (ev.Role == StandbyLeader && pol.StandbyLeaderHoldsVIP))
				if !ok {
					t.Fatalf("Decide(%+v, %+v) holds the VIP", ev, pol)
				}
			}
			if (!ev.Action.Known() || ev.Role == Unknown) && (p.VIP != VIPLeave || p.RosterRole != "") {
				t.Fatalf("Decide(%+v) acts on unknown input: %+v", ev, p)
			}
		}
	})
}
