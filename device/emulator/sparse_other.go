//go:build !linux

package emulator

import (
	"io"
	"os"
)

// fileReader reads size bytes of f from off.
func fileReader(f *os.File, off, size int64) io.Reader {
	return io.NewSectionReader(f, off, size)
}
