package patroni

import (
	"encoding/json"
	"testing"
)

// FuzzClusterAnswer: any /cluster answer and any member key value of the
// DCS parse without panicking, and what they yield is consistent.
func FuzzClusterAnswer(f *testing.F) {
	f.Add([]byte(`{"members":[{"name":"n1","role":"leader","state":"running","api_url":"http://10.0.0.1:8008/patroni","host":"10.0.0.1","port":5432,"timeline":2},{"name":"n2","role":"replica","lag":"unknown"},{"name":"n3","lag":12}]}`))
	f.Add([]byte(`{"members":[{"name":"n2","lag":1e400}]}`))
	f.Add([]byte(`{"members":[{"lag":-1}],"pause":true}`))
	f.Add([]byte(`{"api_url":"http://10.0.0.2:8008/patroni","conn_url":"postgres://10.0.0.2:5432/postgres"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var cl Cluster
		if json.Unmarshal(body, &cl) == nil {
			for _, m := range cl.Members {
				if m.Lag != nil && m.LagUnknown {
					t.Fatalf("lag both known (%d) and unknown: %q", *m.Lag, body)
				}
			}
		}
		prefix := "/service/s/members/"
		for _, m := range ParseMembers(prefix, map[string]string{prefix + "n1": string(body), prefix + "n1/x": string(body)}) {
			if m.Name != "n1" || m.APIURL == "" {
				t.Fatalf("member %+v from %q", m, body)
			}
		}
	})
}
