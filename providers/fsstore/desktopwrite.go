package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
	"golang.org/x/sys/unix"
)

// Write creates, updates, renames or moves an item (see repl.Store). Name is the new relative
// path; when Handle is set and differs from Name the item moves. A file's content is written
// atomically (see DesktopStore); Data nil is empty content.
func (s *DesktopStore) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if err := repl.CheckName(req.Name); err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	name := req.Name
	target, err := s.abs(name)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write %q: %w", req.Name, err)
	}
	if req.Handle != "" {
		if _, err := s.abs(req.Handle); err != nil {
			return repl.Entry{}, fmt.Errorf("write %q: %w", req.Handle, err)
		}
	}
	var e repl.Entry
	if req.Kind == repl.KindFolder {
		e, err = s.writeFolder(req, name, target)
	} else {
		e, err = s.writeFile(ctx, req, name, target)
	}
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write %s: %w", target, err)
	}
	return e, nil
}

func (s *DesktopStore) writeFolder(req repl.WriteRequest, name, target string) (repl.Entry, error) {
	moving := req.Handle != "" && req.Handle != name
	if req.Handle != "" {
		if err := s.checkExpected(req.Handle, req.Expected); err != nil {
			return repl.Entry{}, err
		}
	}
	if moving {
		if _, err := os.Lstat(target); err == nil {
			return repl.Entry{}, repl.ErrExists
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return repl.Entry{}, providers.MapFSError(err)
		}
		if err := os.Rename(s.dir+"/"+req.Handle, target); err != nil {
			return repl.Entry{}, providers.MapFSError(err)
		}
		s.syncDir(filepath.Dir(s.dir + "/" + req.Handle))
	} else {
		fi, err := os.Lstat(target)
		switch {
		case err == nil && !fi.IsDir() && req.Handle == name:
			// A file becomes a folder (its stamp was checked above).
			if err := s.remove(target, name, req.Cause); err != nil {
				return repl.Entry{}, err
			}
			if err := os.Mkdir(target, 0o755); err != nil {
				return repl.Entry{}, providers.MapFSError(err)
			}
		case err == nil && !fi.IsDir():
			return repl.Entry{}, fmt.Errorf("a file is in the way: %w", repl.ErrExists)
		case err == nil && req.Handle == "":
			return repl.Entry{}, fmt.Errorf("the folder exists already: %w", repl.ErrExists)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return repl.Entry{}, providers.MapFSError(err)
		case err != nil:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return repl.Entry{}, providers.MapFSError(err)
			}
		}
	}
	if !req.ModTime.IsZero() {
		if err := os.Chtimes(target, req.ModTime, req.ModTime); err != nil {
			return repl.Entry{}, providers.MapFSError(err)
		}
	}
	s.syncDir(filepath.Dir(target))
	return s.current(name)
}

func (s *DesktopStore) writeFile(ctx context.Context, req repl.WriteRequest, name, target string) (repl.Entry, error) {
	moving := req.Handle != "" && req.Handle != name
	if req.Handle != "" {
		if err := s.checkExpected(req.Handle, req.Expected); err != nil {
			return repl.Entry{}, err
		}
	}
	if moving && (req.Expected == nil || req.Expected.Kind != repl.KindFolder) {
		// A file to move whose old name is a folder now (another item took the name) cannot
		// be moved: the folder could not be removed after the copy, which would stay behind.
		if fi, err := os.Lstat(s.dir + "/" + req.Handle); err == nil && fi.IsDir() {
			return repl.Entry{}, fmt.Errorf("%s is a folder now, not the file to move: %w", req.Handle, repl.ErrChanged)
		}
	}
	if req.Handle == "" || moving {
		if _, err := os.Lstat(target); err == nil {
			return repl.Entry{}, repl.ErrExists
		} else if !errors.Is(err, fs.ErrNotExist) {
			return repl.Entry{}, providers.MapFSError(err)
		}
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return repl.Entry{}, fmt.Errorf("a file is in the way of its folder: %w", repl.ErrExists)
		}
		return repl.Entry{}, providers.MapFSError(err)
	}
	if moving && req.SameContent {
		// A rename of the same content: the file moves, nothing is copied, and a file that
		// took the new name meanwhile is never replaced (RENAME_NOREPLACE).
		old := s.dir + "/" + req.Handle
		err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, target, unix.RENAME_NOREPLACE)
		switch {
		case err == nil:
			s.syncDir(filepath.Dir(old))
			s.syncDir(dir)
			return s.current(name)
		case errors.Is(err, syscall.EEXIST):
			return repl.Entry{}, repl.ErrExists
		case errors.Is(err, syscall.ENOENT):
			return repl.Entry{}, fmt.Errorf("%s is gone: %w", old, repl.ErrChanged)
		case !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) && !errors.Is(err, syscall.EXDEV):
			return repl.Entry{}, providers.MapFSError(err)
		}
		// The file system cannot rename without replacing: copy.
	}

	tmp, err := s.writeTemp(ctx, dir, req)
	if err != nil {
		return repl.Entry{}, err
	}
	committed := false
	defer func() {
		if !committed {
			removeTemp(tmp)
		}
	}()
	// The last look before the rename: the user may have edited the item while it was copied.
	if req.Handle != "" {
		if err := s.checkExpected(req.Handle, req.Expected); err != nil {
			return repl.Entry{}, err
		}
	}
	if req.Handle == "" || moving {
		if _, err := os.Lstat(target); err == nil {
			return repl.Entry{}, repl.ErrExists
		}
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if !moving && req.Handle != "" {
		if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
			// A folder becomes a file: only an empty one may go.
			if err := os.Remove(target); err != nil {
				if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
					return repl.Entry{}, fmt.Errorf("replace folder with a file: %w", repl.ErrNotEmpty)
				}
				return repl.Entry{}, providers.MapFSError(err)
			}
		}
	}
	if r := versions.ReasonOf(req.Cause); r != "" && s.versions != nil && !moving && req.Handle != "" {
		if fi, err := os.Lstat(target); err == nil && fi.Mode().IsRegular() {
			// The old content stays in its place until the new one takes it, and is in the
			// versions area from now on.
			if err := s.versions.KeepReplaced(target, name, r); err != nil {
				return repl.Entry{}, providers.MapFSError(err)
			}
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return repl.Entry{}, providers.MapFSError(err)
	}
	committed = true
	if moving {
		old := s.dir + "/" + req.Handle
		if err := s.remove(old, req.Handle, req.Cause); err != nil && !errors.Is(err, repl.ErrNotFound) {
			// The new name goes again: the write did not happen. Left there, it was one more
			// copy at every retry, and a caller trying the next free name made a hundred.
			os.Remove(target)
			s.syncDir(dir)
			return repl.Entry{}, fmt.Errorf("remove the old name %s after moving: %w", old, err)
		}
		s.syncDir(filepath.Dir(old))
	}
	s.syncDir(dir)
	return s.current(name)
}

// writeTemp copies req.Data into a new temporary file in dir, syncs it and sets its time.
func (s *DesktopStore) writeTemp(ctx context.Context, dir string, req repl.WriteRequest) (string, error) {
	tmp := filepath.Join(dir, TempName())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", providers.MapFSError(err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			removeTemp(tmp)
		}
	}()
	var data io.Reader = eofReader{}
	if req.Data != nil {
		data = req.Data
	}
	n, err := io.CopyBuffer(fsutil.WriterOnly{W: f}, fsutil.ContextReader(ctx, data), make([]byte, 256<<10))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", providers.MapFSError(err)
	}
	if req.Size >= 0 && n != req.Size {
		return "", fmt.Errorf("the content was %d bytes, %d were announced (the source changed while it was copied): %w",
			n, req.Size, io.ErrUnexpectedEOF)
	}
	if err := f.Sync(); err != nil {
		return "", providers.MapFSError(err)
	}
	if err := f.Close(); err != nil {
		return "", providers.MapFSError(err)
	}
	if !req.ModTime.IsZero() {
		if err := os.Chtimes(tmp, req.ModTime, req.ModTime); err != nil {
			return "", providers.MapFSError(err)
		}
	}
	ok = true
	return tmp, nil
}

// Delete removes a file, or a folder that holds nothing (or only the litter operating systems
// leave, such as .DS_Store and Thumbs.db, which goes with it). It refuses with ErrChanged when the
// item no longer matches expected.
func (s *DesktopStore) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	return s.DeleteFor(ctx, handle, expected, repl.CauseNone)
}

// remove removes the file at p (the item rel): into the versions area when the engine said why.
func (s *DesktopStore) remove(p, rel string, cause repl.Cause) error {
	if r := versions.ReasonOf(cause); r != "" && s.versions != nil {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			return providers.MapFSError(s.versions.Take(p, rel, r))
		}
	}
	if err := os.Remove(p); err != nil {
		return providers.MapFSError(err)
	}
	return nil
}

// DeleteFor is Delete, told why (repl.CauseDeleter): a file deleted for a cause goes into the
// versions area.
func (s *DesktopStore) DeleteFor(ctx context.Context, handle string, expected repl.Stamp, cause repl.Cause) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.abs(handle)
	if err != nil {
		return fmt.Errorf("delete %q: %w", handle, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("delete %s: %w", p, providers.MapFSError(err))
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return fmt.Errorf("delete %s: replaced by a special file: %w", p, repl.ErrChanged)
	}
	if now := entryOf(handle, fi); repl.StampChanged(expected, now) || repl.ChangeMoved(expected, now) {
		return fmt.Errorf("delete %s: modified since it was last seen: %w", p, repl.ErrChanged)
	}
	if fi.IsDir() {
		if err := s.removeJunk(p); err != nil {
			return fmt.Errorf("delete %s: %w", p, err)
		}
	} else if r := versions.ReasonOf(cause); r != "" && s.versions != nil {
		if err := s.versions.Take(p, handle, r); err != nil {
			return fmt.Errorf("delete %s: %w", p, providers.MapFSError(err))
		}
		return nil
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("delete %s: %w", p, repl.ErrNotEmpty)
		}
		return fmt.Errorf("delete %s: %w", p, providers.MapFSError(err))
	}
	s.syncDir(filepath.Dir(p))
	return nil
}

// removeJunk removes OS litter from a folder about to be deleted, but only when the folder holds
// nothing else: a folder with anything of the user's in it is left as it is.
func (s *DesktopStore) removeJunk(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return providers.MapFSError(err)
	}
	if len(entries) == 0 {
		return nil
	}
	for _, e := range entries {
		if !junkNames[e.Name()] || !e.Type().IsRegular() {
			return nil // not only litter: os.Remove will say ErrNotEmpty
		}
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return providers.MapFSError(err)
		}
	}
	return nil
}

// syncDir flushes a folder's entries so that a rename survives a power cut. A failure is logged:
// the operation itself succeeded.
func (s *DesktopStore) syncDir(dir string) {
	if err := fsutil.SyncDir(dir); err != nil {
		s.logf("files: flushing folder %s: %v", dir, err)
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
