//go:build unix

package fsutil

import (
	"os"
	"syscall"
)

// OpenRead opens the file name for reading, as os.Open does, for files that are regular (the
// caller checks): os.Open tries to register every file it opens with the runtime's poller
// (epoll_ctl and fcntl calls), which a regular file refuses; this opens it with one openat and
// wraps it with os.NewFile. Reads then block a thread, as they do for a regular file anyway.
// Errors are *os.PathError, as os.Open's.
func OpenRead(name string) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}
