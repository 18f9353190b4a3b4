//go:build !unix

package emulator

import (
	"io/fs"
	"os"
	"path/filepath"
)

// lstatIn returns what lstat says of the entry name of the open folder dir.
func lstatIn(dir *os.File, name string) (fs.FileInfo, error) {
	return os.Lstat(filepath.Join(dir.Name(), name))
}
