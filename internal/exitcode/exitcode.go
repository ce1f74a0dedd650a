// Package exitcode is the error a command returns to say how the process
// exits. The packages the command line wires return these errors, and
// cmd/pghook maps them to the process's exit code.
package exitcode

import "fmt"

// Exit codes shared by all commands (create-replica and status add their
// own, documented in their help).
const (
	OK      = 0
	Failure = 1
	Usage   = 2
)

// Error carries the exit code and the message printed before exiting
// ("" prints nothing: the failure was already logged with its context).
// It satisfies urfave/cli's ExitCoder.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// ExitCode is the process's exit status.
func (e *Error) ExitCode() int { return e.Code }

// New returns an Error with code and a formatted message.
func New(code int, format string, a ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// Usagef is a usage error (exit 2) naming the bad argument or setting.
func Usagef(format string, a ...any) error { return New(Usage, format, a...) }

// Failuref is a failure (exit 1).
func Failuref(format string, a ...any) error { return New(Failure, format, a...) }

// Silent exits with code and prints nothing: the log line said it.
func Silent(code int) error { return &Error{Code: code} }
