//go:build integration

package install

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pghook/pghook/internal/testenv"
)

// pgControl is a pg_control that replica.ParseControl accepts: the system
// identifier first, the CRC32C of the struct at offset 288 (PG15).
func pgControl(sysid uint64) []byte {
	b := make([]byte, 8192)
	binary.LittleEndian.PutUint64(b[0:], sysid)
	binary.LittleEndian.PutUint32(b[8:], 1300)
	binary.LittleEndian.PutUint32(b[288:], crc32.Checksum(b[:288], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// A data directory that holds another cluster than the DCS knows is refused
// before anything is written; the same cluster, or a DCS that knows none
// yet, is fine.
func TestInstallRefusesAnotherClustersDataDir(t *testing.T) {
	e := testenv.StartEtcd(t)
	const dataDir = "/var/lib/postgresql/15/main"
	tests := []struct {
		name       string
		initialize string // "" = no key
		sysid      uint64
		wantErr    string
	}{
		{"no initialize key yet", "", 7300000000000000001, ""},
		{"same cluster", "7300000000000000001", 7300000000000000001, ""},
		{"another cluster", "7300000000000000002", 7300000000000000001, "holds the cluster with system identifier 7300000000000000001, but the DCS key /service/main/initialize says this cluster is 7300000000000000002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.Ctl(t, "del", "/service/main/initialize")
			if tt.initialize != "" {
				e.Ctl(t, "put", "/service/main/initialize", tt.initialize)
			}
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, dataDir, "global"), 0o700); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(root, dataDir, "PG_VERSION"), []byte("15\n"), 0o600)
			os.WriteFile(filepath.Join(root, dataDir, "global", "pg_control"), pgControl(tt.sysid), 0o600)
			o := Options{Scope: "main", Name: "pg1", Interface: "eth0", Address: "10.0.0.11", Network: "10.0.0.0/24",
				EtcdEndpoints: []string{e.Endpoint}, PGVersion: "15", Root: root, NoValidate: true, DataDir: dataDir}
			var out bytes.Buffer
			_, err := Run(o, &out)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("install: %v\n%s", err, out.String())
				}
				return
			}
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ue) {
				t.Fatalf("install = %v, want a usage error containing %q", err, tt.wantErr)
			}
			if _, serr := os.Stat(filepath.Join(root, "etc", "patroni")); !os.IsNotExist(serr) {
				t.Errorf("something was written before the refusal: %v", serr)
			}
		})
	}
}
