// Package pgtab keeps the roster of the Patroni-managed PostgreSQL clusters
// on this host: ~postgres/.pgtab, a CSV file with a header and one row per
// (scope, node). It reads the seed's old format (which had a PWD column)
// and never writes a password.
//
// Writes are atomic (temp file, fsync, rename, fsync of the directory)
// under an exclusive flock on a sibling lock file, so concurrent callbacks
// never lose a row and a writer SIGKILLed at any instant leaves either the
// old file or the new one.
package pgtab

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Row is one cluster member known on this host.
type Row struct {
	Scope         string    `json:"scope"`
	Node          string    `json:"node"`
	DataDir       string    `json:"data_dir"`
	Listen        string    `json:"listen"`
	BinDir        string    `json:"bin_dir"`
	Role          string    `json:"role"`
	PatroniConfig string    `json:"patroni_config"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Header is the header line pghook writes.
var Header = []string{"SCOPE", "NODENAME", "DATA_DIR", "LISTEN", "BIN_DIR", "ROLE", "PATRONI_CONFIG", "UPDATED_AT"}

// legacyHeader is the seed's header; headerless files use its order.
var legacyHeader = []string{"SCOPE", "NODENAME", "DATA_DIR", "LISTEN", "BIN_DIR", "PWD", "ROLE"}

// ErrInvalidRow is returned by Validate for a row pghook refuses to write.
var ErrInvalidRow = errors.New("pgtab: invalid row")

// Validate reports why r cannot be stored, or nil.
func (r Row) Validate() error {
	if r.Scope == "" || r.Node == "" {
		return fmt.Errorf("%w: scope and node are required (got scope %q, node %q)", ErrInvalidRow, r.Scope, r.Node)
	}
	for name, v := range map[string]string{"scope": r.Scope, "node": r.Node, "data_dir": r.DataDir, "listen": r.Listen, "bin_dir": r.BinDir, "role": r.Role, "patroni_config": r.PatroniConfig} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("%w: %s %q contains a line break or NUL", ErrInvalidRow, name, v)
		}
	}
	return nil
}

// Key identifies a row.
func (r Row) Key() string { return r.Scope + "\x00" + r.Node }

// Parse reads a roster in pghook's format, the seed's format (with a PWD
// column, which is dropped), or the seed's headerless lines. Columns are
// matched by header name, so extra or reordered columns are tolerated;
// rows without a scope or node are skipped. When a (scope, node) appears
// twice, the last row wins.
func Parse(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.TrimLeadingSpace = true
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parsing roster: %w", err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	cols := legacyHeader
	if isHeader(recs[0]) {
		cols = make([]string, len(recs[0]))
		for i, c := range recs[0] {
			cols[i] = strings.ToUpper(strings.TrimSpace(c))
		}
		recs = recs[1:]
	}
	byKey := map[string]int{}
	var rows []Row
	for _, rec := range recs {
		var row Row
		text := row.textColumns()
		for i, v := range rec {
			if i >= len(cols) {
				break
			}
			v = strings.TrimSpace(v)
			if field := text[cols[i]]; field != nil {
				*field = v
			} else if cols[i] == "UPDATED_AT" {
				if t, err := time.Parse(time.RFC3339, v); err == nil {
					row.UpdatedAt = t
				}
			}
		}
		if row.Scope == "" || row.Node == "" || strings.HasPrefix(row.Scope, "#") {
			continue
		}
		if i, ok := byKey[row.Key()]; ok {
			rows[i] = row
			continue
		}
		byKey[row.Key()] = len(rows)
		rows = append(rows, row)
	}
	return rows, nil
}

// textColumns maps each text column Parse reads (NODE is taken for
// NODENAME too) to the field of r it fills.
func (r *Row) textColumns() map[string]*string {
	return map[string]*string{
		"SCOPE": &r.Scope, "NODENAME": &r.Node, "NODE": &r.Node, "DATA_DIR": &r.DataDir, "LISTEN": &r.Listen,
		"BIN_DIR": &r.BinDir, "ROLE": &r.Role, "PATRONI_CONFIG": &r.PatroniConfig,
	}
}

func isHeader(rec []string) bool {
	for _, c := range rec {
		if strings.EqualFold(strings.TrimSpace(c), "SCOPE") {
			return true
		}
	}
	return false
}

// Encode writes rows in pghook's format, sorted by scope and node.
func Encode(w io.Writer, rows []Row) error {
	sorted := append([]Row(nil), rows...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Scope != sorted[j].Scope {
			return sorted[i].Scope < sorted[j].Scope
		}
		return sorted[i].Node < sorted[j].Node
	})
	cw := csv.NewWriter(w)
	if err := cw.Write(Header); err != nil {
		return err
	}
	for _, r := range sorted {
		ts := ""
		if !r.UpdatedAt.IsZero() {
			ts = r.UpdatedAt.UTC().Format(time.RFC3339)
		}
		if err := cw.Write([]string{r.Scope, r.Node, r.DataDir, r.Listen, r.BinDir, r.Role, r.PatroniConfig, ts}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Merge returns rows with row inserted, or replacing the row with the same
// (scope, node). Empty fields of row keep the stored value, so a caller
// that knows less (an on_stop without patroni.yml) does not erase facts.
func Merge(rows []Row, row Row) []Row {
	out := make([]Row, 0, len(rows)+1)
	found := false
	for _, r := range rows {
		if r.Key() != row.Key() {
			out = append(out, r)
			continue
		}
		found = true
		out = append(out, overlay(r, row))
	}
	if !found {
		out = append(out, row)
	}
	return out
}

func overlay(old, n Row) Row {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	old.DataDir = pick(old.DataDir, n.DataDir)
	old.Listen = pick(old.Listen, n.Listen)
	old.BinDir = pick(old.BinDir, n.BinDir)
	old.Role = pick(old.Role, n.Role)
	old.PatroniConfig = pick(old.PatroniConfig, n.PatroniConfig)
	if !n.UpdatedAt.IsZero() {
		old.UpdatedAt = n.UpdatedAt
	}
	return old
}

// Select returns the rows of scope (all when empty) and node (any when empty).
func Select(rows []Row, scope, node string) []Row {
	var out []Row
	for _, r := range rows {
		if (scope == "" || r.Scope == scope) && (node == "" || r.Node == node) {
			out = append(out, r)
		}
	}
	return out
}
