//go:build unix

package emulator

import (
	"os"
	"syscall"
)

// createExcl creates the file name, which must not exist, for writing. A regular file is never
// pollable: opened with syscall.Open and wrapped by os.NewFile, it costs no attempt to register
// it with the runtime's poller (os.OpenFile's epoll_ctl and fcntl calls).
func createExcl(name string, perm uint32) (*os.File, error) {
	fd, err := syscall.Open(name, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, perm)
	for err == syscall.EINTR {
		fd, err = syscall.Open(name, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, perm)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}
