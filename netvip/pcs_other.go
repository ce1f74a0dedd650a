//go:build !unix

package netvip

import "os/exec"

func setProcessGroup(*exec.Cmd) {}
