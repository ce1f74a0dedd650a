package clusterstatus

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WriteJSON writes the reports as one JSON object:
// {"scopes": [...], "exit_code": N}.
func WriteJSON(w io.Writer, rs []*Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if rs == nil {
		rs = []*Report{}
	}
	return enc.Encode(struct {
		Scopes   []*Report `json:"scopes"`
		ExitCode int       `json:"exit_code"`
	}{rs, ExitCode(rs)})
}

// WriteTable writes each report as patronictl list does (Member, Host,
// Role, State, TL, Lag in MB) with a VIP column, then a line saying who
// answers for the VIP and the leader key, and one line per problem.
func WriteTable(w io.Writer, rs []*Report) error {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte('\n')
		}
		writeOne(&b, r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var columns = []string{"Member", "Host", "Role", "State", "TL", "Lag in MB", "VIP"}

// rightAligned columns, as patronictl aligns them.
var rightAligned = map[int]bool{4: true, 5: true}

func writeOne(b *strings.Builder, r *Report) {
	rows := make([][]string, 0, len(r.Members))
	appendPort := false
	seen := map[string]bool{}
	for _, m := range r.Members {
		if m.Port != 0 && m.Port != 5432 || seen[m.Host] {
			appendPort = true
		}
		seen[m.Host] = true
	}
	for _, m := range r.Members {
		host := m.Host
		if appendPort && host != "" && m.Port != 0 {
			host += ":" + strconv.Itoa(m.Port)
		}
		tl := ""
		if m.Timeline != 0 {
			tl = strconv.Itoa(m.Timeline)
		}
		lag := ""
		switch {
		case m.LagUnknown:
			lag = "unknown"
		case m.LagBytes != nil:
			lag = strconv.FormatInt(int64(math.Round(float64(*m.LagBytes)/1024/1024)), 10)
		}
		vip := ""
		if m.VIP {
			vip = "*"
		}
		rows = append(rows, []string{m.Name, host, roleTitle(m.Role), m.State, tl, lag, vip})
	}
	cols := columns
	if r.VIP == nil {
		cols = columns[:len(columns)-1]
		for i := range rows {
			rows[i] = rows[i][:len(cols)]
		}
	}
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = utf8.RuneCountInString(c)
	}
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	rule := func() string {
		parts := make([]string, len(widths))
		for i, w := range widths {
			parts[i] = strings.Repeat("-", w+2)
		}
		return "+" + strings.Join(parts, "+") + "+"
	}
	line := func(cells []string) {
		b.WriteByte('|')
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if rightAligned[i] {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		b.WriteByte('\n')
	}
	top := rule()
	if title := "+ Cluster: " + r.Scope + " "; utf8.RuneCountInString(title) < len(top) {
		top = title + top[utf8.RuneCountInString(title):]
	}
	b.WriteString(top + "\n")
	line(cols)
	b.WriteString(rule() + "\n")
	for _, row := range rows {
		line(row)
	}
	b.WriteString(rule() + "\n")

	if v := r.VIP; v != nil {
		what := v.Address
		switch {
		case v.Backend == "pcs":
			what = "resource " + v.Resource
		case v.Interface != "":
			what += " on " + v.Interface
		}
		fmt.Fprintf(b, "VIP %s (%s): %s", what, v.Backend, vipAnswer(v))
		b.WriteByte('\n')
	}
	leader := r.Leader
	if leader == "" {
		leader = "none"
	}
	if r.LeaderSource != "" {
		fmt.Fprintf(b, "Leader: %s (%s)\n", leader, r.LeaderSource)
	}
	if r.Paused {
		b.WriteString("Maintenance mode: on\n")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(b, "! %s\n", p)
	}
}

// vipAnswer is the summary of who answers, naming the holders when there
// are several, and whether this host is one.
func vipAnswer(v *VIP) string {
	if v.Error != "" {
		return "unknown (" + v.Error + ")"
	}
	switch len(v.Holders) {
	case 0:
		return "nobody"
	case 1:
		s := v.Holders[0].label()
		if v.Holders[0].Local {
			s += " (this host)"
		}
		return s
	}
	names := make([]string, len(v.Holders))
	for i, h := range v.Holders {
		names[i] = h.label()
		if h.Local {
			names[i] += " (this host)"
		}
	}
	return fmt.Sprintf("%d hosts! %s", len(v.Holders), strings.Join(names, ", "))
}

// roleTitle writes a role as patronictl does: sync_standby → Sync Standby.
func roleTitle(role string) string {
	words := strings.Fields(strings.ReplaceAll(role, "_", " "))
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}
