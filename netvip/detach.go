package netvip

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
)

// detachEnv marks the processes of a detached spawn: "middle" for the one
// SpawnDetached starts, "final" for the one the middle starts.
const detachEnv = "PGHOOK_DETACH"

// SpawnDetached runs `self args...` so that the process doing the work is
// not a descendant of the caller: Patroni kills a running callback and all
// its descendants when the next callback arrives, and the announcer must
// survive that. It starts a middle process in a new session (setsid), with
// stdin, stdout and stderr on /dev/null and the working directory /, and
// waits for it; the middle, in RunDetached, starts the final process and
// exits at once, so the final one is re-parented to init (or the nearest
// subreaper). SpawnDetached returns once the middle has exited, with an
// error if the middle could not start the final process.
func SpawnDetached(self string, args []string) error {
	wait, err := StartDetached(self, args)
	if err != nil {
		return err
	}
	return wait()
}

// StartDetached is SpawnDetached without the wait for the middle process:
// it returns once the middle has been started, with wait, which waits for
// the middle's exit (it reaps it) and reports whether it started the final
// process. The middle is a whole start of self (the runtime and every
// package's init: 60-300 ms on a loaded machine), which a caller whose
// next step waits for it (the VIP helper's take, before the DNS record
// can follow) must not pay; the final process is detached all the same,
// as soon as the caller or the middle exits.
func StartDetached(self string, args []string) (wait func() error, err error) {
	cmd, err := startDetached(self, append([]string{self}, args...), "middle", true)
	if err != nil {
		return nil, fmt.Errorf("spawning detached %s %s: %w", self, strings.Join(args, " "), err)
	}
	return func() error {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("spawning detached %s %s: %w", self, strings.Join(args, " "), err)
		}
		return nil
	}, nil
}

// RunDetached is the first thing the command started by SpawnDetached
// does, with self the running executable (os.Executable) and argv the
// process's whole argv (os.Args). It reports whether the caller must exit
// at once with status 0: true in the middle process, after it has started
// the final one, with the same argv; false in the final process, or when
// the command was not started by SpawnDetached (it then just runs, in the
// foreground).
func RunDetached(self string, argv []string) (exit bool, err error) {
	if os.Getenv(detachEnv) != "middle" {
		return false, nil
	}
	if _, err := startDetached(self, argv, "final", false); err != nil {
		return true, fmt.Errorf("starting detached %s: %w", strings.Join(argv, " "), err)
	}
	return true, nil
}

// startDetached starts self with argv (argv[0] included) and detachEnv set
// to stage; middle: in a new session, and the caller waits for it (cmd);
// otherwise the process is released.
func startDetached(self string, argv []string, stage string, middle bool) (*exec.Cmd, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	env := slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, detachEnv+"=") })
	cmd := &exec.Cmd{
		Path:   self,
		Args:   argv,
		Env:    append(env, detachEnv+"="+stage),
		Dir:    "/",
		Stdin:  null,
		Stdout: null,
		Stderr: null,
	}
	if middle {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if middle {
		return cmd, nil
	}
	return nil, cmd.Process.Release()
}
