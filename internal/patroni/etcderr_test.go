package patroni

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAnswerText(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{name: "gateway error", body: `{"error":"etcdserver: authentication failed, invalid user ID or password","code":3,"message":"etcdserver: authentication failed, invalid user ID or password"}`, want: "etcdserver: authentication failed, invalid user ID or password"},
		{name: "message only", body: `{"message":"permission denied"}`, want: "permission denied"},
		{name: "JSON without a message: nothing of it", body: `{"name":"root","password":"s3cret"}`, want: "(no error message)"},
		{name: "plain text, control characters flattened", body: "bad\nthing\x1b[31m", want: "bad thing [31m"},
		{name: "cut short", body: strings.Repeat("x", 500), want: strings.Repeat("x", maxErrorText) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := answerText(tt.body); got != tt.want {
				t.Errorf("answerText = %q, want %q", got, tt.want)
			}
		})
	}
}

// A server that echoes the authentication request does not get the
// password into the error (and so into a log line).
func TestAuthenticateErrorHidesEcho(t *testing.T) {
	const pw = "s3cret-Pa55"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("rejected: " + string(b)))
	}))
	defer srv.Close()
	e := &Etcd3{endpoints: []string{srv.URL}, user: "pghook", password: pw, http: srv.Client()}
	err := e.authenticate(context.Background(), srv.URL, "/v3")
	if err == nil {
		t.Fatal("authenticate succeeded against a 401")
	}
	if strings.Contains(err.Error(), pw) {
		t.Fatalf("the password is in the error: %v", err)
	}
	if !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("error %q does not say what happened", err)
	}
}
