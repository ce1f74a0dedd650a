package pgtab

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkUpsert measures one roster upsert (lock, read, merge, atomic
// write with fsync) on a roster of a few clusters.
func BenchmarkUpsert(b *testing.B) {
	f := File{Path: filepath.Join(b.TempDir(), ".pgtab")}
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		f.Upsert(ctx, Row{Scope: fmt.Sprintf("s%d", i), Node: "n1", DataDir: "/var/lib/postgresql/15/main", Listen: "0.0.0.0:5432", BinDir: "/usr/lib/postgresql/15/bin", Role: "replica"})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Upsert(ctx, Row{Scope: "s0", Node: "n1", Role: "replica"}); err != nil {
			b.Fatal(err)
		}
	}
}
