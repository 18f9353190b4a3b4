//go:build linux

package emulator

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// inotify watches folders with Linux's inotify, through the runtime's poller so that close
// wakes a pending read.
type inotify struct {
	fd  int
	f   *os.File
	buf []byte
}

const inotifyMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO |
	syscall.IN_CLOSE_WRITE | syscall.IN_MODIFY | syscall.IN_ATTRIB | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF |
	syscall.IN_ONLYDIR

func openNotifier() (notifier, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	return &inotify{fd: fd, f: os.NewFile(uintptr(fd), "inotify"), buf: make([]byte, 64<<10)}, nil
}

func (n *inotify) add(path string) (int, error) {
	wd, err := syscall.InotifyAddWatch(n.fd, path, inotifyMask)
	if err != nil {
		return -1, fmt.Errorf("inotify_add_watch %s: %w", path, err)
	}
	return wd, nil
}

func (n *inotify) rm(wd int) {
	// The watch may be gone already (its folder was deleted); nothing to do then.
	_, _ = syscall.InotifyRmWatch(n.fd, uint32(wd))
}

func (n *inotify) read() ([]int, bool, error) {
	got, err := n.f.Read(n.buf)
	if err != nil {
		return nil, false, err
	}
	var wds []int
	all := false
	for off := 0; off+syscall.SizeofInotifyEvent <= got; {
		wd := int(int32(binary.NativeEndian.Uint32(n.buf[off:])))
		mask := binary.NativeEndian.Uint32(n.buf[off+4:])
		nameLen := int(binary.NativeEndian.Uint32(n.buf[off+12:]))
		off += syscall.SizeofInotifyEvent + nameLen
		if mask&syscall.IN_Q_OVERFLOW != 0 {
			all = true
			continue
		}
		if wd >= 0 {
			wds = append(wds, wd)
		}
	}
	return wds, all, nil
}

func (n *inotify) close() { n.f.Close() }
