package replica

import "syscall"

func syscallENOSPC() error { return syscall.ENOSPC }
