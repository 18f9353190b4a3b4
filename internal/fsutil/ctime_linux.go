package fsutil

import (
	"io/fs"
	"syscall"
)

// ChangeTime returns when a file's inode last changed, in Unix nanoseconds, or 0 when the file
// system does not say. No writer can set it back (unlike the modification time): it moves with
// every write, rename, link and time change.
func ChangeTime(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return 0
}
