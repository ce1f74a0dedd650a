package install

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

var passwordLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^(\s*password:\s*)\S.*$`) })

// mask hides every secret value and every YAML password value.
func mask(b []byte, secrets []string) string {
	s := string(b)
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "********")
		}
	}
	return passwordLine().ReplaceAllString(s, "${1}********")
}

// unifiedDiff returns a unified diff of a and b (3 lines of context), or
// "" when they are equal. Files here are small: a plain LCS table is fine.
func unifiedDiff(name string, a, b string) string {
	if a == b {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind   byte // ' ', '-', '+'
		text   string
		ai, bi int // line numbers (0-based) in a and b before this op
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			ops = append(ops, op{' ', x[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', x[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', y[j], i, j})
			j++
		}
	}
	var out strings.Builder
	fromName, toName := "a"+name, "b"+name
	if a == "" {
		fromName = "/dev/null"
	}
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", fromName, toName)
	const ctx = 3
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(k-ctx, 0)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run-end > 2*ctx || run == len(ops) {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		var as, bs int
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				as++
			}
			if o.kind != '-' {
				bs++
			}
		}
		astart, bstart := ops[start].ai+1, ops[start].bi+1
		if as == 0 {
			astart--
		}
		if bs == 0 {
			bstart--
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", astart, as, bstart, bs)
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		k = end
	}
	return out.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
