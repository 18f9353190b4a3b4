//go:build !linux

package emulator

import (
	"os"
	"time"
)

// setFileTimes sets the access and modification times of the open file f to t (by its name).
func setFileTimes(f *os.File, t time.Time) error { return os.Chtimes(f.Name(), t, t) }
