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
	err := startDetached(self, append([]string{self}, args...), "middle", true)
	if err != nil {
		return fmt.Errorf("spawning detached %s %s: %w", self, strings.Join(args, " "), err)
	}
	return nil
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
	if err := startDetached(self, argv, "final", false); err != nil {
		return true, fmt.Errorf("starting detached %s: %w", strings.Join(argv, " "), err)
	}
	return true, nil
}

// startDetached starts self with argv (argv[0] included) and detachEnv set
// to stage; when wait is set it waits for the process to exit.
func startDetached(self string, argv []string, stage string, wait bool) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
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
	if wait {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return cmd.Run()
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
