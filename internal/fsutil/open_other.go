//go:build !unix

package fsutil

import "os"

// OpenRead opens the file name for reading (os.Open).
func OpenRead(name string) (*os.File, error) { return os.Open(name) }
