package versions

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cradle-sync/cradle/internal/fsutil"
)

// Dir is a versions area in a folder on this computer.
//
// Concurrency: safe for use from several goroutines (every operation is a file-system call that
// stands alone; two versions of one item kept in the same second get different names).
type Dir struct {
	root string // the area, absolute
	side string
	now  func() time.Time
}

// NewDir returns the area in the folder root (created when the first version is kept) for the
// content of side (Desktop or Device).
func NewDir(root, side string) *Dir {
	return &Dir{root: root, side: side, now: time.Now}
}

// Root returns the area's folder.
func (d *Dir) Root() string { return d.root }

// SetClock replaces the clock that dates the versions kept (tests).
func (d *Dir) SetClock(now func() time.Time) { d.now = now }

// tempPrefix starts the names of the files Save writes before renaming them into place; List
// skips them, and the next Save in their folder removes those left by a killed process.
const tempPrefix = ".cradle-part-"

// target returns a free name for a version of rel kept now, and its folder, created.
func (d *Dir) target(rel string, r Reason) (string, string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || badRel(rel) {
		return "", "", fmt.Errorf("keep a version of %q: not a relative path", rel)
	}
	dir, base := path.Split(rel)
	folder := filepath.Join(d.root, filepath.FromSlash(dir))
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return "", "", fmt.Errorf("keep a version of %s: create %s: %w", rel, folder, err)
	}
	t := d.now()
	for n := 1; n < 1000; n++ {
		p := filepath.Join(folder, storedName(base, t, r, n))
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p, folder, nil
		}
	}
	return "", "", fmt.Errorf("keep a version of %s: a thousand versions in one second", rel)
}

// badRel tells whether rel has an empty, "." or ".." component.
func badRel(rel string) bool {
	for c := range strings.SplitSeq(rel, "/") {
		if c == "" || c == "." || c == ".." {
			return true
		}
	}
	return false
}

// KeepReplaced keeps the file at abs (the item rel), which is about to be replaced by a rename
// over it: a hard link in the area, so that the file never leaves its place before the new
// content takes it. Where links cannot be made it is moved into the area (the new content
// takes its place right after; a process killed in between leaves it in the area), and on
// another file system copied.
func (d *Dir) KeepReplaced(abs, rel string, r Reason) error {
	p, folder, err := d.target(rel, r)
	if err != nil {
		return err
	}
	err = os.Link(abs, p)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		err = d.move(abs, p)
	}
	if err != nil {
		return fmt.Errorf("keep the old version of %s in %s: %w", rel, d.root, err)
	}
	return fsutil.SyncDir(folder)
}

// Take moves the file at abs (the item rel, about to be deleted) into the area: it leaves its
// place and is in the area at once (a rename); on another file system it is copied first.
func (d *Dir) Take(abs, rel string, r Reason) error {
	p, folder, err := d.target(rel, r)
	if err != nil {
		return err
	}
	if err := d.move(abs, p); err != nil {
		return fmt.Errorf("keep the deleted %s in %s: %w", rel, d.root, err)
	}
	if err := fsutil.SyncDir(folder); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(abs))
}

// move renames from to to, or copies it there and removes it when they are on two file systems.
func (d *Dir) move(from, to string) error {
	err := os.Rename(from, to)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := d.write(context.Background(), to, f, fi.ModTime()); err != nil {
		return err
	}
	return os.Remove(from)
}

// Save keeps content read from r as a version of rel (content that lives elsewhere: a device's
// file, a contact card), dated modTime.
func (d *Dir) Save(ctx context.Context, r io.Reader, rel string, reason Reason, modTime time.Time) error {
	p, _, err := d.target(rel, reason)
	if err != nil {
		return err
	}
	if err := d.write(ctx, p, r, modTime); err != nil {
		return fmt.Errorf("keep the old version of %s in %s: %w", rel, d.root, err)
	}
	return nil
}

// write copies r into a new file at p atomically: a temporary file beside it, synced, renamed.
func (d *Dir) write(ctx context.Context, p string, r io.Reader, modTime time.Time) error {
	folder := filepath.Dir(p)
	removeStaleTemps(folder)
	tmp := filepath.Join(folder, tempPrefix+strconv.Itoa(os.Getpid())+"-"+rand.Text()[:12])
	if err := writeTemp(ctx, tmp, r, modTime); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return fsutil.SyncDir(folder)
}

// removeStaleTemps removes the temporary files of processes that no longer run from folder.
func removeStaleTemps(folder string) {
	entries, err := os.ReadDir(folder)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if err != nil || n <= 0 || n == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(n, 0), syscall.ESRCH) {
			os.Remove(filepath.Join(folder, e.Name()))
		}
	}
}

// List returns the versions in the area, newest first. A missing area holds none.
func (d *Dir) List() ([]Version, error) {
	var out []Version
	err := filepath.WalkDir(d.root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p == d.root && errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		if !de.Type().IsRegular() || strings.HasPrefix(de.Name(), tempPrefix) {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		if v, ok := versionAt("computer", d.side, filepath.ToSlash(rel), fi.Size(), fi.ModTime()); ok {
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the versions in %s: %w", d.root, err)
	}
	sortVersions(out)
	return out, nil
}

// Path returns where a version of this area is on disk.
func (d *Dir) Path(v Version) string { return filepath.Join(d.root, filepath.FromSlash(v.stored)) }

// Open returns a version's content.
func (d *Dir) Open(v Version) (io.ReadCloser, error) {
	f, err := os.Open(d.Path(v))
	if err != nil {
		return nil, fmt.Errorf("open the version of %s: %w", v.Path, err)
	}
	return f, nil
}

// Remove deletes a version, and the folders of the area it leaves empty.
func (d *Dir) Remove(v Version) error {
	p := d.Path(v)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the version %s: %w", p, err)
	}
	for dir := filepath.Dir(p); dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty
		}
	}
	return nil
}
