package patroni

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakePatroni answers like Patroni's REST API for the given state.
func fakePatroni(t *testing.T, primary *bool, hang time.Duration) *httptest.Server {
	state := "running"
	return fakePatroniState(t, primary, &state, hang)
}

func fakePatroniState(t *testing.T, primary *bool, state *string, hang time.Duration) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang > 0 {
			time.Sleep(hang)
		}
		role := "replica"
		if *primary {
			role = "master"
		}
		switch r.URL.Path {
		case "/primary":
			if !*primary {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case "/patroni":
		default:
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"state":"` + *state + `","role":"` + role + `","patroni":{"version":"3.0.2","scope":"pg"},"database_system_identifier":"7300000000000000001","timeline":2}`))
	}))
}

func restFor(t *testing.T, url string, timeout time.Duration) *Rest {
	c, err := Parse([]byte("name: n1\nscope: pg\npostgresql: {data_dir: /d}\nrestapi: {connect_address: '" + strings.TrimPrefix(url, "http://") + "'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.RestClient(timeout)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRestIsPrimary(t *testing.T) {
	primary := true
	srv := fakePatroni(t, &primary, 0)
	defer srv.Close()
	r := restFor(t, srv.URL, time.Second)
	ctx := context.Background()
	if ok, err := r.IsPrimary(ctx); err != nil || !ok {
		t.Fatalf("primary: %v %v", ok, err)
	}
	primary = false
	if ok, err := r.IsPrimary(ctx); err != nil || ok {
		t.Fatalf("replica: %v %v", ok, err)
	}
	st, err := r.Status(ctx)
	if err != nil || st.Role != "replica" || st.SystemID != "7300000000000000001" || st.Patroni.Scope != "pg" {
		t.Fatalf("status %+v %v", st, err)
	}
}

// Patroni keeps role master (and /primary 200) while it stops PostgreSQL;
// the body's state tells.
func TestRestIsPrimaryState(t *testing.T) {
	primary := true
	for _, tt := range []struct {
		state string
		want  bool
	}{{"running", true}, {"stopping", false}, {"stopped", false}, {"starting", false}, {"restarting", false}} {
		state := tt.state
		srv := fakePatroniState(t, &primary, &state, 0)
		ok, err := restFor(t, srv.URL, time.Second).IsPrimary(context.Background())
		srv.Close()
		if err != nil || ok != tt.want {
			t.Errorf("state %s: primary %v err %v, want %v", tt.state, ok, err, tt.want)
		}
	}
}

func TestRestNoAnswer(t *testing.T) {
	primary := true
	hung := fakePatroni(t, &primary, 700*time.Millisecond)
	defer hung.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for name, url := range map[string]string{"hung": hung.URL, "down": down.URL} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			ok, err := restFor(t, url, 200*time.Millisecond).IsPrimary(context.Background())
			if ok || !errors.Is(err, ErrNoAnswer) {
				t.Fatalf("ok %v err %v, want ErrNoAnswer", ok, err)
			}
			if time.Since(start) > time.Second {
				t.Fatal("not bounded by the timeout")
			}
		})
	}
}

// Primary returns the code's meaning and the body's state and role as
// Patroni 3.0.2 sends them while a switchover stops the old primary.
func TestRestPrimaryStatus(t *testing.T) {
	for _, tt := range []struct {
		name    string
		code    int
		body    string
		want    PrimaryStatus
		running bool
	}{
		{"primary", 200, `{"state":"running","role":"master"}`, PrimaryStatus{true, "running", "master"}, true},
		{"stopping, lock still held", 200, `{"state":"stopping","role":"master"}`, PrimaryStatus{true, "stopping", "master"}, false},
		{"stopped after demote", 503, `{"state":"stopped","role":"demoted"}`, PrimaryStatus{false, "stopped", "demoted"}, false},
		{"replica", 503, `{"state":"running","role":"replica"}`, PrimaryStatus{false, "running", "replica"}, true},
		{"no body", 200, ``, PrimaryStatus{Leader: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/primary" {
					w.WriteHeader(http.StatusNotFound)
					return
				}
				w.WriteHeader(tt.code)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			got, err := restFor(t, srv.URL, time.Second).Primary(context.Background())
			if err != nil || got != tt.want || got.Running() != tt.running {
				t.Fatalf("got %+v running %v err %v, want %+v running %v", got, got.Running(), err, tt.want, tt.running)
			}
		})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer srv.Close()
	if _, err := restFor(t, srv.URL, time.Second).Primary(context.Background()); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("HTTP 500: err %v", err)
	}
}

func TestRestServesReads(t *testing.T) {
	for _, tt := range []struct {
		code    int
		want    bool
		wantErr bool
	}{
		{http.StatusOK, true, false},
		{http.StatusServiceUnavailable, false, false},
		{http.StatusInternalServerError, false, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/replica" {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.WriteHeader(tt.code)
		}))
		got, err := restFor(t, srv.URL, time.Second).ServesReads(context.Background())
		srv.Close()
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("HTTP %d: %v, %v; want %v (error %v)", tt.code, got, err, tt.want, tt.wantErr)
		}
	}
}
