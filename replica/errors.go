package replica

import (
	"errors"
	"fmt"
	"strings"
)

// ExitCode is the process exit code of create-replica. Patroni treats any
// non-zero code as "try the next method"; distinct codes tell an operator
// why, in Patroni's log.
type ExitCode int

// Exit codes of create-replica. 1 is left for unexpected failures and 2 is
// the usage code shared by all pghook commands.
const (
	ExitOK           ExitCode = 0
	ExitFailure      ExitCode = 1 // unexpected failure, or cancelled (SIGTERM)
	ExitUsage        ExitCode = 2 // bad arguments
	ExitNoBackup     ExitCode = 3 // no published backup of the scope
	ExitVerify       ExitCode = 4 // backup failed verification or is unusable
	ExitOtherCluster ExitCode = 5 // backup belongs to another cluster, or no source says which cluster this is
	ExitWALGone      ExitCode = 6 // leader no longer has the WAL after the backup, or there is no leader to ask
	ExitIO           ExitCode = 7 // reading the backup or writing the data directory failed (disk full…)
	ExitNotEmpty     ExitCode = 8 // data directory not empty without keep_data, a postmaster on it, or a tablespace directory not empty
)

var exitNames = map[ExitCode]string{
	ExitOK:           "ok",
	ExitFailure:      "failure",
	ExitUsage:        "usage",
	ExitNoBackup:     "no backup",
	ExitVerify:       "verification failed",
	ExitOtherCluster: "other cluster, or this cluster's identity unknown",
	ExitWALGone:      "WAL after the backup gone from the leader, or no leader",
	ExitIO:           "I/O error",
	ExitNotEmpty:     "data or tablespace directory not empty",
}

func (c ExitCode) String() string {
	if s, ok := exitNames[c]; ok {
		return s
	}
	return fmt.Sprintf("exit %d", int(c))
}

// ExitCodes returns every code with its meaning, in order: the table of
// create-replica's --help.
func ExitCodes() []ExitCode {
	return []ExitCode{ExitOK, ExitFailure, ExitUsage, ExitNoBackup, ExitVerify, ExitOtherCluster, ExitWALGone, ExitIO, ExitNotEmpty}
}

// ExitCodeHelp is the exit-code table as text for --help.
func ExitCodeHelp() string {
	var b strings.Builder
	for _, c := range ExitCodes() {
		fmt.Fprintf(&b, "  %d  %s\n", int(c), c)
	}
	return b.String()
}

// Error is a failure with the exit code of its cause.
type Error struct {
	Code ExitCode
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// fail wraps err with code, unless err already carries a code.
func fail(code ExitCode, err error) error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return err
	}
	return &Error{Code: code, Err: err}
}

func failf(code ExitCode, format string, a ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, a...)}
}

// CodeOf returns the exit code for err: 0 for nil, the code of the first
// *Error in its chain, else ExitFailure.
func CodeOf(err error) ExitCode {
	if err == nil {
		return ExitOK
	}
	var re *Error
	if errors.As(err, &re) {
		return re.Code
	}
	return ExitFailure
}
