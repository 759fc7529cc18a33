//go:build !linux

package azurite

import "syscall"

// sysProcAttr asks for nothing where the kernel cannot end a child with its
// parent: Stop, run by t.Cleanup, ends Azurite.
func sysProcAttr() *syscall.SysProcAttr { return nil }
