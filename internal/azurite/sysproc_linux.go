package azurite

import "syscall"

// sysProcAttr has the kernel end Azurite when the test binary dies, so a
// crashed or killed test leaves no emulator behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
