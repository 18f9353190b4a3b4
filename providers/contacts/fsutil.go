package contacts

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

// tempPrefix starts the names of Cradle's temporary files; files starting with '.' are never
// contacts.
const tempPrefix = ".cradle-tmp-"

// writeFileAtomic writes data to path so that readers see the old file or the new one, never a
// part: a temporary file in the same folder, fsync, rename, fsync of the folder. modTime, when
// not zero, becomes the file's modification time.
func writeFileAtomic(path string, data []byte, perm fs.FileMode, modTime ...time.Time) (err error) {
	dir := filepath.Dir(path)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, tempPrefix+hex.EncodeToString(rnd[:])+"-"+filepath.Base(path))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if len(modTime) > 0 && !modTime[0].IsZero() {
		if err = os.Chtimes(tmp, modTime[0], modTime[0]); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// fsErr maps a file-system error to the repl sentinel a user and the engine understand.
func fsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return repl.Classify(err, repl.ErrNotFound)
	case errors.Is(err, fs.ErrPermission):
		return repl.Classify(err, repl.ErrPermission)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return repl.Classify(err, repl.ErrNoSpace)
	case errors.Is(err, syscall.EROFS):
		return repl.Classify(err, repl.ErrReadOnly)
	}
	return err
}
