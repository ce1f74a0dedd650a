// Package applet maps the name pghook was invoked under (argv[0]) to the
// subcommand form, so that a symlink named after an old shell script
// (callback.sh, create_replica.sh, post_init.sh) runs the right command.
//
// It is pure: it only rewrites argument vectors, and never looks at the
// file system.
package applet

import "path/filepath"

// names maps a base name of argv[0] to the pghook subcommand it stands for.
var names = map[string]string{
	"callback.sh":           "callback",
	"pghook-callback":       "callback",
	"create_replica.sh":     "create-replica",
	"pghook-create-replica": "create-replica",
	"post_init.sh":          "post-init",
	"pghook-post-init":      "post-init",
	"pghook-backup":         "backup",
	"pghook-env":            "env",
	"pghook-pgtab":          "pgtab",
	VIPHelper:               "vip",
	"pghook-install":        "install",
	"pghook-version":        "version",
}

// VIPHelper is the name of the privileged copy of pghook that holds
// CAP_NET_ADMIN and CAP_NET_RAW as file capabilities; invoked under this
// name, pghook runs only VIP commands and trusts only a root-owned config.
const VIPHelper = "pghook-vip"

// Privileged reports whether argv0 names the privileged VIP helper.
func Privileged(argv0 string) bool { return filepath.Base(argv0) == VIPHelper }

// Rewrite returns args in the subcommand form: when the base name of
// args[0] is a known applet name, the subcommand is inserted after it and
// args[0] becomes "pghook". Other argument vectors are returned unchanged.
func Rewrite(args []string) []string {
	if len(args) == 0 {
		return []string{"pghook"}
	}
	cmd, ok := Command(args[0])
	if !ok {
		return args
	}
	out := make([]string, 0, len(args)+1)
	out = append(out, "pghook", cmd)
	return append(out, args[1:]...)
}

// Command reports the subcommand that argv0 stands for, and whether it is
// a known applet name.
func Command(argv0 string) (string, bool) {
	c, ok := names[filepath.Base(argv0)]
	return c, ok
}
