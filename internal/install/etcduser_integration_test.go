//go:build integration

package install

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pghook/pghook/internal/dcs"
	"github.com/pghook/pghook/internal/patroni"
	"github.com/pghook/pghook/internal/testenv"
)

// etcdWithAuth starts an etcd 3.4 with authentication enabled and returns
// its endpoint and a file holding the root password.
func etcdWithAuth(t *testing.T) (string, string) {
	t.Helper()
	e := testenv.StartEtcd(t)
	rootPW := newPassword()
	ctl := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command("etcdctl", append([]string{"--endpoints", e.Endpoint}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("etcdctl %v: %v: %s", args, err, out)
		}
	}
	// The password through stdin, not the command line.
	ctl(rootPW+"\n", "user", "add", "root", "--interactive=false")
	exec.Command("etcdctl", "--endpoints", e.Endpoint, "role", "add", "root").Run() // exists already on some versions
	ctl("", "user", "grant-role", "root", "root")
	ctl("", "auth", "enable")
	f := filepath.Join(t.TempDir(), "etcd-root.pw")
	if err := os.WriteFile(f, []byte(rootPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e.Endpoint, f
}

// asUser is an etcd v3 client authenticating as the etcd3 user of the
// patroni.yml install wrote under root.
func asUser(t *testing.T, root, patroniYML string) (*dcs.Client, *patroni.Config) {
	t.Helper()
	c, err := patroni.Load(filepath.Join(root, patroniYML))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := dcs.Open(c, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, c
}

// gatewayAs POSTs to the v3 gateway as user (what Patroni's etcd3 client
// does besides the keys: the member list, leases).
func gatewayAs(t *testing.T, ep, user, pw, path string, body any) (int, string) {
	t.Helper()
	post := func(path, token string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, ep+"/v3"+path, bytes.NewReader(b))
		if token != "" {
			req.Header.Set("Authorization", token)
		}
		resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes()
	}
	code, b := post("/auth/authenticate", "", map[string]string{"name": user, "password": pw})
	var tok struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(b, &tok); code != 200 || tok.Token == "" {
		t.Fatalf("authenticating as %s: %d %s", user, code, b)
	}
	code, b = post(path, tok.Token, body)
	return code, string(b)
}

func TestEtcdUserAgainstRealEtcd(t *testing.T) {
	ep, rootPWFile := etcdWithAuth(t)
	const yml = "/etc/patroni/main.yml"
	opts := func(root string) Options {
		return Options{Scope: "main", Name: "pg1", Interface: "eth0", Address: "10.0.0.11", Network: "10.0.0.0/24",
			EtcdEndpoints: []string{ep}, PGVersion: "15", Root: root, NoValidate: true,
			EtcdUser: "patroni_main", EtcdRootPasswordFile: rootPWFile,
			// Generous: on a loaded host a slow answer would read as an unreachable etcd.
			EtcdTimeout: 10 * time.Second}
	}
	root := t.TempDir()
	res, out := run(t, opts(root))
	for _, want := range []string{"created    etcd user patroni_main", "created    etcd role patroni-service-main",
		"granted    etcd role patroni-service-main READWRITE on the prefix /service/main/", "granted    etcd role patroni-service-main to user patroni_main"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run does not say %q:\n%s", want, out)
		}
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}
	pw := secret(t, root, "main", "etcd")
	if fi, err := os.Stat(filepath.Join(root, SecretsDir, "main", "etcd")); err != nil || fi.Mode().Perm() != 0o600 || len(pw) < 20 {
		t.Fatalf("etcd secret: %v %v (len %d)", fi, err, len(pw))
	}
	rootPW := strings.TrimSpace(string(read(t, rootPWFile)))
	for _, s := range []string{pw, rootPW} {
		if strings.Contains(out, s) {
			t.Fatal("a password in install's output")
		}
	}

	// The user Patroni gets: allowed under /service/main/ only.
	cli, c := asUser(t, root, yml)
	if c.Etcd3.Username != "patroni_main" || c.Etcd3.Password != pw {
		t.Fatalf("patroni.yml etcd3 section: %q / password from the secret: %v", c.Etcd3.Username, c.Etcd3.Password == pw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cases := []struct {
		key   string
		allow bool
	}{
		{"/service/main/leader", true},
		{"/service/main/members/pg1", true},
		{"/service/main", false},
		{"/service/mainx/leader", false},
		{"/service/other/leader", false},
		{"/other", false},
	}
	for _, tc := range cases {
		err := cli.Put(ctx, tc.key, "pg1")
		switch {
		case tc.allow && err != nil:
			t.Errorf("put %s as the user: %v", tc.key, err)
		case !tc.allow && !errors.Is(err, dcs.ErrPermission):
			t.Errorf("put %s as the user: want permission denied, got %v", tc.key, err)
		}
	}
	if v, err := cli.Leader(ctx); err != nil || v != "pg1" {
		t.Errorf("reading the leader key as the user: %q %v", v, err)
	}
	// Patroni's etcd3 client also lists the members and uses leases.
	if code, body := gatewayAs(t, ep, "patroni_main", pw, "/cluster/member/list", map[string]any{}); code != 200 {
		t.Errorf("member list as the user: %d %s", code, body)
	}
	code, body := gatewayAs(t, ep, "patroni_main", pw, "/lease/grant", map[string]any{"TTL": 30})
	var lease struct {
		ID string `json:"ID"`
	}
	if json.Unmarshal([]byte(body), &lease); code != 200 || lease.ID == "" {
		t.Fatalf("lease grant as the user: %d %s", code, body)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	if code, body := gatewayAs(t, ep, "patroni_main", pw, "/kv/put", map[string]any{"key": b64("/service/main/leader"), "value": b64("pg1"), "lease": lease.ID}); code != 200 {
		t.Errorf("put with a lease as the user: %d %s", code, body)
	}

	// Idempotent: a second run changes nothing, in etcd or on disk.
	res, out = run(t, opts(root))
	if res.Changes != 0 || !strings.Contains(out, "unchanged  etcd user patroni_main") {
		t.Fatalf("second run changed %d:\n%s", res.Changes, out)
	}

	// Another node with the secrets copied: nothing to do in etcd.
	root2 := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root2, SecretsDir), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("cp", "-a", filepath.Join(root, SecretsDir, "main"), filepath.Join(root2, SecretsDir)).Run(); err != nil {
		t.Fatal(err)
	}
	o2 := opts(root2)
	o2.Name = "pg2"
	if _, out := run(t, o2); !strings.Contains(out, "unchanged  etcd user patroni_main") {
		t.Errorf("second node:\n%s", out)
	}
	// The same, without root credentials: the password is checked.
	o2.EtcdRootPasswordFile = ""
	if _, out := run(t, o2); !strings.Contains(out, "checked    etcd user patroni_main authenticates") {
		t.Errorf("second node without root credentials:\n%s", out)
	}

	// A node without the copy generates another password: refused, nothing written.
	root3 := t.TempDir()
	var buf bytes.Buffer
	_, err := Run(opts(root3), &buf)
	if err == nil || !strings.Contains(err.Error(), "exists with another password") {
		t.Fatalf("a different password: want a refusal, got %v\n%s", err, buf.String())
	}
	if entries, _ := os.ReadDir(root3); len(entries) != 0 {
		t.Errorf("files written although the etcd user's password differs")
	}
	// ... and without root credentials it says what to pass.
	o3 := opts(root3)
	o3.EtcdRootPasswordFile = ""
	if _, err := Run(o3, &buf); err == nil || !strings.Contains(err.Error(), "--etcd-root-password-file") {
		t.Fatalf("no root credentials: %v", err)
	}
	// Wrong root credentials: a clear error.
	bad := filepath.Join(t.TempDir(), "bad.pw")
	os.WriteFile(bad, []byte("not-the-root-password\n"), 0o600)
	o4 := opts(t.TempDir())
	o4.EtcdUser, o4.EtcdRootPasswordFile = "patroni_other", bad
	if _, err := Run(o4, &buf); err == nil || !strings.Contains(err.Error(), "root credentials") {
		t.Fatalf("wrong root password: %v\n%s", err, buf.String())
	}

	// Dry run: says what it would create, creates nothing.
	o5 := opts(t.TempDir())
	o5.Scope, o5.EtcdUser, o5.DryRun = "dry", "patroni_dry", true
	if _, out := run(t, o5); !strings.Contains(out, "would create etcd user patroni_dry") {
		t.Errorf("dry run:\n%s", out)
	}
	admin, err := rootClient(ep, rootPW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UserRoles(ctx, "patroni_dry"); !errors.Is(err, dcs.ErrUserNotFound) {
		t.Errorf("dry run created the user: %v", err)
	}
	if _, err := admin.UserRoles(ctx, "patroni_main"); err != nil {
		t.Errorf("root reads the user: %v", err)
	}
}

// rootClient is a client of ep as etcd's root user.
func rootClient(ep, rootPW string) (*dcs.Client, error) {
	c, err := patroni.Parse([]byte(fmt.Sprintf("scope: x\nname: y\npostgresql: {data_dir: /d}\netcd3: {hosts: [%s], username: root, password: %q}\n", strings.TrimPrefix(ep, "http://"), rootPW)))
	if err != nil {
		return nil, err
	}
	return dcs.Open(c, 3*time.Second)
}
