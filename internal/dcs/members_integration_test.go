//go:build integration

package dcs

import (
	"context"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/internal/testenv"
)

// TestMemberAPIsFromRealEtcd lists the members as Patroni registers them,
// through the v3 API (etcd3:) and the v2 keys API (etcd:).
func TestMemberAPIsFromRealEtcd(t *testing.T) {
	want := []patroni.MemberAPI{{Name: "n1", APIURL: "http://10.0.0.1:8008/patroni"}, {Name: "n2", APIURL: "http://10.0.0.2:8008/patroni"}}
	member := func(n int) string {
		return fmt.Sprintf(`{"conn_url":"postgres://10.0.0.%d:5432/postgres","api_url":"http://10.0.0.%d:8008/patroni","state":"running","role":"replica"}`, n, n)
	}
	for _, dcs := range []string{"etcd3", "etcd"} {
		t.Run(dcs, func(t *testing.T) {
			var e *testenv.Etcd
			if dcs == "etcd" {
				e = testenv.StartEtcd(t, "--enable-v2=true")
			} else {
				e = testenv.StartEtcd(t)
			}
			host := strings.TrimPrefix(e.Endpoint, "http://")
			c := memberConfig(t, fmt.Sprintf("%s: {hosts: [%s]}", dcs, host))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if ms, err := MemberAPIs(ctx, c, 2*time.Second); err != nil || len(ms) != 0 {
				t.Fatalf("no members yet: %v %v", ms, err)
			}
			put := func(key, value string) {
				if dcs == "etcd3" {
					e.Ctl(t, "put", key, value)
					return
				}
				out, err := exec.CommandContext(ctx, "curl", "-fsS", "-X", "PUT", e.Endpoint+"/v2/keys"+key, "--data-urlencode", "value="+value).CombinedOutput()
				if err != nil {
					t.Fatalf("%v %s", err, out)
				}
			}
			put("/service/pg/members/n2", member(2))
			put("/service/pg/members/n1", member(1))
			put("/service/pg/leader", "n1")
			put("/service/other/members/n9", member(9)) // another scope: not listed
			put("/service/pg/membersX", member(8))      // a sibling key that only shares the prefix text
			ms, err := MemberAPIs(ctx, c, 2*time.Second)
			if err != nil || !reflect.DeepEqual(ms, want) {
				t.Fatalf("got %+v %v, want %+v", ms, err, want)
			}
		})
	}
}
