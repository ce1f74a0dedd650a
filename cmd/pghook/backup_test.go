package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupCLI: the backup subcommands' exit codes and messages without
// any backup (those with backups run in replica's integration tests).
func TestBackupCLI(t *testing.T) {
	dir := t.TempDir()
	handmade := filepath.Join(dir, "main", "by-hand")
	os.MkdirAll(handmade, 0o755)
	os.WriteFile(filepath.Join(handmade, "backup_manifest"), []byte("{}"), 0o644)
	cfg := filepath.Join(t.TempDir(), "pghook.yaml")
	os.WriteFile(cfg, []byte("scopes:\n  main:\n    backup_dir: "+dir+"\n"), 0o644)
	badCfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badCfg, []byte("scopes:\n  main:\n    backupdir: /x\n"), 0o644)
	tests := []struct {
		name            string
		args            []string
		code            int
		inStderr, inOut string
	}{
		{"take without scope", []string{"backup"}, 2, "--scope is required", ""},
		{"unknown subcommand", []string{"backup", "lsit"}, 2, `unknown subcommand "lsit"`, ""},
		{"list: a hand-made directory is named", []string{"--config", cfg, "--log-format", "json", "backup", "list", "--scope", "main", "--json"}, 0, "pghook backup import", `"backups": []`},
		{"list reads backup_dir from pghook.yaml", []string{"--config", cfg, "backup", "list", "--json"}, 0, "", "by-hand"},
		{"verify: nothing to verify", []string{"--config", cfg, "backup", "verify", "--scope", "main"}, 3, "no published backup", ""},
		{"verify: a named ID that is not there", []string{"--config", cfg, "backup", "verify", "nope", "--scope", "main"}, 3, "no published backup nope", ""},
		{"verify needs a target", []string{"backup", "verify"}, 2, "--all", ""},
		{"import without DIR", []string{"backup", "import", "--scope", "main"}, 2, "want one DIR", ""},
		{"import without scope", []string{"backup", "import", handmade}, 2, "--scope is required", ""},
		{"import of a missing directory", []string{"backup", "import", filepath.Join(dir, "absent"), "--scope", "main"}, 2, "is not a directory", ""},
		{"import of a broken backup: 4", []string{"--config", cfg, "backup", "import", handmade, "--scope", "main"}, 4, "manifest", ""},
		{"config error names the key, not a Go type", []string{"--config", badCfg, "backup", "list"}, 2, "unknown key scopes.main.backupdir", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBin(t, bin, nil, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.inStderr) || !strings.Contains(r.stdout, tt.inOut) {
				t.Fatalf("want %q in stderr, %q in stdout:\nstdout: %s\nstderr: %s", tt.inStderr, tt.inOut, r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "config.Scope") {
				t.Fatalf("a Go type in the message: %s", r.stderr)
			}
		})
	}
}
