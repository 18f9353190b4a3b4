// Package fsutil holds the small file-system helpers that several layers share: an atomic file
// write, a folder flush, and a reader and a writer that let a copy stop when its context ends.
//
// It imports only the standard library, so any package of Cradle may use it, device/folder
// included. Errors come back as the os package gives them; turning them into the engine's
// sentinel errors is providers.MapFSError's job (the device layer has its own mapping to
// device errors). The package map is in docs/design.md.
package fsutil

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// WriteOptions tune WriteFileAtomic.
type WriteOptions struct {
	// Perm is the new file's permission bits, applied exactly (the umask does not narrow them);
	// 0 means 0o600.
	Perm fs.FileMode
	// TempName is the name of the temporary file, in the same folder as the target. Callers pick
	// a name their own readers skip (the stores' TempName, a dot file); "" means
	// ".<base>.tmp-<random>".
	TempName string
	// ModTime, when not zero, becomes the file's modification time.
	ModTime time.Time
}

// WriteFileAtomic replaces the file at path with data so that a reader sees the old content or
// the new, never a part: the data goes to a temporary file in the same folder, which is synced,
// renamed over path, and the folder is synced (SyncDir) so that the rename survives a power cut.
// On failure the temporary file is removed and path is left as it was (unless only the final
// folder sync failed: the rename is then done, and its error is returned).
func WriteFileAtomic(path string, data []byte, o WriteOptions) (err error) {
	dir := filepath.Dir(path)
	perm := o.Perm
	if perm == 0 {
		perm = 0o600
	}
	name := o.TempName
	if name == "" {
		name = "." + filepath.Base(path) + ".tmp-" + rand.Text()[:16]
	}
	tmp := filepath.Join(dir, name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !o.ModTime.IsZero() {
		if err := os.Chtimes(tmp, o.ModTime, o.ModTime); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	renamed = true
	return SyncDir(dir)
}

// SyncDir flushes a folder's entries, so that a rename or removal in it survives a power cut.
// File systems that cannot sync a folder (EINVAL) count as done. Errors are the os package's
// (*fs.PathError, naming the folder).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// ContextReader returns a reader of r that fails with ctx's error once ctx is done, so that a
// long copy stops between two reads.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// WriterOnly hides the ReadFrom of a writer such as *os.File, so that io.Copy goes through the
// source's Read (a ContextReader's checks) instead of a sendfile or splice that never asks it.
type WriterOnly struct{ W io.Writer }

// Write writes p to the wrapped writer.
func (o WriterOnly) Write(p []byte) (int, error) { return o.W.Write(p) }
