//go:build unix

package emulator

import (
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lstatIn returns what lstat says of the entry name of the open folder dir, looked up from the
// folder's descriptor (fstatat) rather than from its whole path: a folder's read stats every
// entry.
func lstatIn(dir *os.File, name string) (fs.FileInfo, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "fstatat", Path: name, Err: err}
		}
		break
	}
	fi := &statInfo{name: name, size: st.Size, mtime: time.Unix(st.Mtim.Unix())}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fi.mode = fs.ModeDir
	case unix.S_IFREG:
	default:
		fi.mode = fs.ModeIrregular
	}
	fi.mode |= fs.FileMode(st.Mode & 0o777)
	return fi, nil
}

// statInfo is an fs.FileInfo made from a stat.
type statInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.size }
func (s *statInfo) Mode() fs.FileMode  { return s.mode }
func (s *statInfo) ModTime() time.Time { return s.mtime }
func (s *statInfo) IsDir() bool        { return s.mode.IsDir() }
func (s *statInfo) Sys() any           { return nil }
