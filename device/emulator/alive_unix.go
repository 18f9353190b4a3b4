//go:build unix

package emulator

import (
	"errors"
	"syscall"
)

// processGone tells whether no process with this ID runs (signal 0 checks that it exists; EPERM
// means it does, as another user's).
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
