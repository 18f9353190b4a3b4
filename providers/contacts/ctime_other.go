//go:build !linux

package contacts

import (
	"io/fs"
	"time"
)

// changeTime is the file's modification time where the inode change time is not at hand.
func changeTime(info fs.FileInfo) time.Time { return info.ModTime() }
