package contacts

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"time"

	"github.com/cradle-sync/cradle/internal/fsutil"
)

// tempPrefix starts the names of Cradle's temporary files; files starting with '.' are never
// contacts.
const tempPrefix = ".cradle-tmp-"

// atomically returns the options for fsutil.WriteFileAtomic that write path (mode 0600) through
// a temporary file beside it named tempPrefix, a random part and path's base name; modTime, when
// not zero, becomes the file's modification time.
func atomically(path string, modTime time.Time) fsutil.WriteOptions {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return fsutil.WriteOptions{
		TempName: tempPrefix + hex.EncodeToString(rnd[:]) + "-" + filepath.Base(path),
		ModTime:  modTime,
	}
}
