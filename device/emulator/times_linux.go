//go:build linux

package emulator

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// setFileTimes sets the access and modification times of the open file f to t through its
// descriptor (futimens), without looking its path up again.
func setFileTimes(f *os.File, t time.Time) error {
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(t.UnixNano()), syscall.NsecToTimespec(t.UnixNano())}
	// utimensat with a NULL path sets the times of the file dirfd refers to.
	_, _, errno := syscall.Syscall6(syscall.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "futimens", Path: f.Name(), Err: errno}
	}
	return nil
}
