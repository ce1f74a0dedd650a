package replica

import (
	"fmt"
	"strings"
)

// Args are create-replica's arguments as Patroni passes them: one
// --key=value for every key of the method's section (keep_data: true
// becomes --keep_data=True), then --scope, --role, --datadir and
// --connstring. Unknown keys are kept in Extra and otherwise ignored.
type Args struct {
	Scope      string
	DataDir    string
	Role       string
	ConnString string
	KeepData   bool
	// BackupDir and PatroniConfig may come from the method section
	// (backup_dir: …, patroni_config: …); empty means the caller's default.
	BackupDir     string
	PatroniConfig string
	// ConfigDir is PostgreSQL's configuration directory outside the data
	// directory (--config_dir; else the caller's, from patroni.yml).
	ConfigDir string
	// TablespaceMapping is --tablespace_mapping=OLD=NEW[,OLD=NEW…]
	// (repeatable): see ParseTablespaceMapping.
	TablespaceMapping map[string]string
	Extra             map[string]string
}

// textFields maps each key whose value a takes as given to its field; each
// of them may be given once.
func (a *Args) textFields() map[string]*string {
	return map[string]*string{
		"scope": &a.Scope, "datadir": &a.DataDir, "role": &a.Role, "connstring": &a.ConnString,
		"backup_dir": &a.BackupDir, "patroni_config": &a.PatroniConfig, "config_dir": &a.ConfigDir,
	}
}

// ParseArgs parses Patroni's argv (without the command name). Keys are
// matched with '-' and '_' treated alike. A bare word, a missing --scope or
// --datadir, or an unparsable keep_data is a usage error (ExitUsage).
func ParseArgs(argv []string) (Args, error) {
	a := Args{Extra: map[string]string{}}
	text := a.textFields()
	// Known keys take a value; --key value (two argv elements) is accepted
	// for them, for humans. Patroni always sends --key=value.
	known := func(key string) bool {
		return text[key] != nil || key == "keep_data" || key == "tablespace_mapping"
	}
	seen := map[string]bool{}
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		if arg == "--" {
			if i+1 < len(argv) {
				return a, failf(ExitUsage, "unexpected argument %q", argv[i+1])
			}
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			return a, failf(ExitUsage, "unexpected argument %q: create-replica takes only --key=value", arg)
		}
		kv := strings.TrimLeft(arg, "-")
		key, val, hasVal := strings.Cut(kv, "=")
		key = strings.ReplaceAll(strings.ToLower(key), "-", "_")
		if key == "" {
			return a, failf(ExitUsage, "unexpected argument %q", arg)
		}
		if !hasVal {
			switch {
			case key == "keep_data":
				val = "true" // a bare --keep-data switch
			case known(key) && i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "--"):
				i++
				val = argv[i]
			case known(key):
				return a, failf(ExitUsage, "--%s needs a value", key)
			default:
				a.Extra[key] = ""
				continue
			}
		}
		if field := text[key]; field != nil {
			if seen[key] {
				return a, failf(ExitUsage, "--%s given twice", key)
			}
			seen[key] = true
			*field = val
			continue
		}
		switch key {
		case "tablespace_mapping":
			m, err := ParseTablespaceMapping(val)
			if err != nil {
				return a, failf(ExitUsage, "--tablespace_mapping: %v", err)
			}
			if a.TablespaceMapping == nil {
				a.TablespaceMapping = map[string]string{}
			}
			for k, v := range m {
				if prev, dup := a.TablespaceMapping[k]; dup && prev != v {
					return a, failf(ExitUsage, "--tablespace_mapping: %s is mapped twice (to %s and %s)", k, prev, v)
				}
				a.TablespaceMapping[k] = v
			}
		case "keep_data":
			b, err := parseBool(val)
			if err != nil {
				return a, failf(ExitUsage, "--keep_data=%s: %v", val, err)
			}
			a.KeepData = b
		default:
			a.Extra[key] = val
		}
	}
	var missing []string
	if a.Scope == "" {
		missing = append(missing, "--scope")
	}
	if a.DataDir == "" {
		missing = append(missing, "--datadir")
	}
	if len(missing) > 0 {
		return a, failf(ExitUsage, "missing %s", strings.Join(missing, " and "))
	}
	if strings.ContainsAny(a.Scope, "/\x00") || a.Scope == "." || a.Scope == ".." {
		return a, failf(ExitUsage, "--scope=%q is not a valid scope name", a.Scope)
	}
	return a, nil
}

// parseBool accepts Python's and YAML's spellings: Patroni sends True/False.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "y", "yes", "on":
		return true, nil
	case "0", "f", "false", "n", "no", "off", "", "none":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}
