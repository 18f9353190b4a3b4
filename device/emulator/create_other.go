//go:build !unix

package emulator

import (
	"io/fs"
	"os"
)

// createExcl creates the file name, which must not exist, for writing.
func createExcl(name string, perm uint32) (*os.File, error) {
	return os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(perm))
}
