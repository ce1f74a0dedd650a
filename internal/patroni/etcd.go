package patroni

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ErrNoEtcd3 is returned when patroni.yml has no etcd3 section, so the v3
// API cannot see Patroni's keys (the v2 keyspace is separate).
var ErrNoEtcd3 = errors.New("patroni: DCS is not etcd3")

// Etcd3 is a small client of etcd's v3 API over its JSON gateway — the
// same transport Patroni's own etcd3 code uses, so any etcd Patroni can
// reach, pghook can. It is deliberately not the gRPC client: linking
// grpc and etcd's protobuf packages costs ~2.7 ms of start-up on every
// callback (docs/BENCHMARKS.md), for a process that reads one key.
//
// Safe for concurrent use.
type Etcd3 struct {
	endpoints []string
	user      string
	password  string
	http      *http.Client

	mu     sync.Mutex
	token  string
	prefix string // "/v3", "/v3beta" or "/v3alpha", found on first use
}

// EtcdClient builds a v3 client from the etcd3 section of patroni.yml:
// endpoints, basic auth and TLS. timeout bounds each HTTP request.
func (c *Config) EtcdClient(timeout time.Duration) (*Etcd3, error) {
	if c.Etcd3 == nil {
		return nil, fmt.Errorf("%w (it is %q in %s)", ErrNoEtcd3, c.DCS(), c.Path)
	}
	eps, err := c.Etcd3.Endpoints()
	if err != nil {
		return nil, fmt.Errorf("key etcd3 in %s: %w", c.Path, err)
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}
	if c.Etcd3.CACert != "" || c.Etcd3.Cert != "" {
		tc, err := tlsConfig(c.Etcd3)
		if err != nil {
			return nil, fmt.Errorf("key etcd3 in %s: %w", c.Path, err)
		}
		tr.TLSClientConfig = tc
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Etcd3{endpoints: eps, user: c.Etcd3.Username, password: c.Etcd3.Password,
		http: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

func tlsConfig(e *Etcd) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CACert != "" {
		pem, err := os.ReadFile(e.CACert)
		if err != nil {
			return nil, fmt.Errorf("cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cacert %s: no PEM certificate found", e.CACert)
		}
		tc.RootCAs = pool
	}
	if e.Cert != "" {
		key := e.Key
		if key == "" {
			key = e.Cert // Patroni accepts a combined PEM
		}
		pair, err := tls.LoadX509KeyPair(e.Cert, key)
		if err != nil {
			return nil, fmt.Errorf("cert/key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Close releases idle connections.
func (e *Etcd3) Close() { e.http.CloseIdleConnections() }

// Endpoints returns the endpoints tried, in order.
func (e *Etcd3) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Get reads key with a linearizable range (it fails rather than answer
// from a member cut off from the quorum). found is false when the key does
// not exist.
func (e *Etcd3) Get(ctx context.Context, key string) (value string, found bool, err error) {
	req := map[string]any{"key": base64.StdEncoding.EncodeToString([]byte(key))}
	var resp struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := e.call(ctx, "/kv/range", req, &resp); err != nil {
		return "", false, fmt.Errorf("reading %s from etcd: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", false, nil
	}
	v, err := base64.StdEncoding.DecodeString(resp.Kvs[0].Value)
	if err != nil {
		return "", false, fmt.Errorf("reading %s from etcd: value is not base64: %w", key, err)
	}
	return string(v), true, nil
}

// Leader returns the member name in the leader key, or "" when no member
// holds the lock. The call is bounded by ctx.
func (c *Config) Leader(ctx context.Context, e *Etcd3) (string, error) {
	v, _, err := e.Get(ctx, c.LeaderKey())
	return v, err
}

// statusError is a non-2xx answer from the gateway. body is kept whole for
// classify; Error shows only the answer's error message, cut short, so a
// server that echoes the request (a password) does not put it in a log.
type statusError struct {
	code int
	body string
}

// maxErrorText bounds the part of an answer that an error message shows.
const maxErrorText = 160

func (s *statusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", s.code, answerText(s.body))
}

// answerText is what a log may show of an error answer: the "error" or
// "message" of a JSON body (the gateway's own words), else the body; one
// line of printable text, at most maxErrorText bytes.
func answerText(body string) string {
	var j struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	text := body
	if json.Unmarshal([]byte(body), &j) == nil {
		switch {
		case j.Error != "":
			text = j.Error
		case j.Message != "":
			text = j.Message
		default:
			text = "(no error message)"
		}
	}
	text = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(text))
	if len(text) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}

// call POSTs a JSON request to each endpoint in turn until one answers.
func (e *Etcd3) call(ctx context.Context, path string, in, out any) error {
	var errs []error
	for _, ep := range e.endpoints {
		err := e.callOne(ctx, ep, path, in, out)
		if err == nil {
			return nil
		}
		var se *statusError
		if errors.As(err, &se) && se.code < 500 && se.code != http.StatusNotFound {
			return fmt.Errorf("%s: %w", ep, err) // an answer, not an outage: do not try others
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (e *Etcd3) callOne(ctx context.Context, ep, path string, in, out any) error {
	prefixes := []string{"/v3", "/v3beta", "/v3alpha"}
	e.mu.Lock()
	if e.prefix != "" {
		prefixes = []string{e.prefix}
	}
	e.mu.Unlock()
	var last error
	for _, p := range prefixes {
		err := e.post(ctx, ep, p, path, in, out, true)
		var se *statusError
		if errors.As(err, &se) && se.code == http.StatusNotFound {
			last = err
			continue // older etcd: try the next API prefix, as Patroni does
		}
		if err == nil {
			e.mu.Lock()
			e.prefix = p
			e.mu.Unlock()
		}
		return err
	}
	return last
}

func (e *Etcd3) post(ctx context.Context, ep, prefix, path string, in, out any, retryAuth bool) error {
	if e.user != "" {
		if err := e.authenticate(ctx, ep, prefix); err != nil {
			return err
		}
	}
	req, err := e.request(ctx, ep, prefix, path, in)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		if retryAuth && e.user != "" && strings.Contains(string(b), "invalid auth token") {
			e.mu.Lock()
			e.token = ""
			e.mu.Unlock()
			return e.post(ctx, ep, prefix, path, in, out, false)
		}
		return &statusError{code: resp.StatusCode, body: string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding answer of %s: %w", path, err)
		}
	}
	return nil
}

// request builds a JSON POST of in to ep+prefix+path, with the auth token
// when there is one.
func (e *Etcd3) request(ctx context.Context, ep, prefix, path string, in any) (*http.Request, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(ep, "/")+prefix+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	e.mu.Lock()
	if e.token != "" {
		req.Header.Set("Authorization", e.token)
	}
	e.mu.Unlock()
	return req, nil
}

// authenticate gets a token for user/password once (never logged).
func (e *Etcd3) authenticate(ctx context.Context, ep, prefix string) error {
	e.mu.Lock()
	have := e.token != ""
	e.mu.Unlock()
	if have {
		return nil
	}
	body, _ := json.Marshal(map[string]string{"name": e.user, "password": e.password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(ep, "/")+prefix+"/auth/authenticate", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		// The request carried the password: never keep it, even echoed.
		body := string(b)
		if e.password != "" {
			body = strings.ReplaceAll(body, e.password, "[redacted]")
		}
		return fmt.Errorf("authenticating as %s: %w", e.user, &statusError{code: resp.StatusCode, body: body})
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Token == "" {
		return fmt.Errorf("authenticating as %s: no token in the answer", e.user)
	}
	e.mu.Lock()
	e.token = r.Token
	e.mu.Unlock()
	return nil
}
