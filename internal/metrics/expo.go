// Package metrics gives pghook's figures to Prometheus in its text
// exposition format (version 0.0.4): served on /metrics by the VIP
// watcher, and written as node_exporter textfiles by the short-lived
// commands (callback, backup, create-replica).
//
// The format is written here rather than by a metrics library: the
// callback is a process of a few milliseconds, and the libraries register
// collectors, read /proc or /sys and may log when their package is
// initialised, on every start (docs/ARCHITECTURE.md, "Metrics"). What is
// written is checked by the tests with Prometheus's own parser.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Type is a metric family's type.
type Type string

const (
	Counter Type = "counter"
	Gauge   Type = "gauge"
)

// Label is one name="value" pair.
type Label struct{ Name, Value string }

// Sample is one line of a family: its labels and value.
type Sample struct {
	Labels []Label
	Value  float64
}

// Family is a metric name with its help text, type and samples.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Samples []Sample
}

// L builds labels from name, value pairs.
func L(pairs ...string) []Label {
	out := make([]Label, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Label{pairs[i], pairs[i+1]})
	}
	return out
}

// Write writes fams in the text exposition format, families sorted by
// name, each sample's labels in the order given. Families without samples
// are written with their HELP and TYPE only.
func Write(w io.Writer, fams []Family) error {
	bw := bufio.NewWriter(w)
	sorted := append([]Family(nil), fams...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, f := range sorted {
		if !validName(f.Name) {
			return fmt.Errorf("metrics: invalid metric name %q", f.Name)
		}
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.Name, escapeHelp(f.Help), f.Name, f.Type)
		for _, s := range f.Samples {
			bw.WriteString(f.Name)
			if len(s.Labels) > 0 {
				bw.WriteByte('{')
				for i, l := range s.Labels {
					if !validLabel(l.Name) {
						return fmt.Errorf("metrics: %s: invalid label name %q", f.Name, l.Name)
					}
					if i > 0 {
						bw.WriteByte(',')
					}
					bw.WriteString(l.Name)
					bw.WriteString(`="`)
					bw.WriteString(escapeValue(l.Value))
					bw.WriteByte('"')
				}
				bw.WriteByte('}')
			}
			bw.WriteByte(' ')
			bw.WriteString(formatValue(s.Value))
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
var valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeValue(s string) string { return valueEscaper.Replace(s) }

// validName reports whether s is a metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// validLabel reports whether s is a label name: [a-zA-Z_][a-zA-Z0-9_]*,
// not starting with __ (reserved).
func validLabel(s string) bool {
	if strings.HasPrefix(s, "__") {
		return false
	}
	return validName(s) && !strings.Contains(s, ":")
}
