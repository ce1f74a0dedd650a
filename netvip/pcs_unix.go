//go:build unix

package netvip

import (
	"os/exec"
	"syscall"
)

// setProcessGroup makes cmd a process group leader and kills the whole
// group when its context ends: pcs is a Python program that runs
// crm_resource, cibadmin and crm_simulate itself.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
