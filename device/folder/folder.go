// Package folder is Cradle's mass-storage device: a mounted folder (a USB drive, an SD card, a
// camera that mounts as a disk, or any folder the user adds) behind the device.Device interface.
//
// The folder is storage 1. Paths are '/'-separated and relative to the folder. All access goes
// through an os.Root, so no path, symbolic link or name can reach outside the folder; symbolic
// links and special files inside it are not reported (a drive formatted FAT has none). Names
// that must never become desktop paths (see device.CheckName) are skipped with a warning and counted.
//
// Create writes to a hidden temporary file (".cradle-part-*") in the target folder, syncs it,
// sets its modification time and renames it into place, so no reader ever sees a half-written
// object. Temporary files left by a crash are never listed and are removed when a listing meets
// one that is more than a day old.
//
// Events come from inotify (through package syscall: device/ uses only the standard library and
// gousb), watching the whole tree and following new subfolders. Monitor notices removable drives
// mounted under /media and /run/media, and folders the user adds.
package folder

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/internal/fsutil"
)

// Storage is the one storage of a folder device.
const Storage device.StorageID = 1

// staleTemp is how old a leftover temporary file must be before a listing removes it.
const staleTemp = 24 * time.Hour

// Options tune a folder device. The zero value is ready to use.
type Options struct {
	// EventBuffer is the capacity of the Events channel (default 256). A reader that falls
	// further behind loses events and then receives device.EventOverflow.
	EventBuffer int
	// NoEvents turns the inotify watcher off; Events then reports only the device going away.
	NoEvents bool
	// Logf receives warnings (skipped names, a watcher that could not start); default log.Printf.
	Logf func(format string, args ...any)
}

// Device is a folder behind device.Device.
//
// Concurrency: every method is safe for use from several goroutines. File operations go
// straight to the file system (an os.Root, itself safe for concurrent use); the device's own
// state (closed, gone, the events channel) is guarded by one mutex. Two concurrent Creates of the
// same path cannot both succeed silently: each writes its own temporary file and the rename
// checks for an existing object first (a race of microseconds remains between that check and
// the rename, on file systems without an atomic no-replace rename).
type Device struct {
	dir  string // absolute, symbolic links resolved
	dev  uint64 // st_dev of dir at open: a different one later means it was unmounted
	info device.Info
	logf func(string, ...any)

	skipped atomic.Int64 // objects skipped for unsafe names

	mu       sync.Mutex
	closed   bool
	goneErr  error // non-nil once the folder went away
	events   chan device.Event
	chClosed bool
	dropped  int64 // events lost to a slow reader
	overflow bool  // an EventOverflow is owed to the reader

	w *watcher
}

var _ device.Device = (*Device)(nil)

// Open opens the folder dir as a device. dir must exist and be a folder.
func Open(dir string, opts Options) (*Device, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open folder device %s: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	var st syscall.Stat_t
	if err := syscall.Stat(abs, &st); err != nil {
		return nil, fmt.Errorf("open folder device %s: %w", abs, mapErr(err))
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, fmt.Errorf("open folder device %s: not a folder", abs)
	}
	f, err := os.Open(abs) // is it readable?
	if err != nil {
		return nil, fmt.Errorf("open folder device %s: %w", abs, mapErr(err))
	}
	f.Close()
	logf := opts.Logf
	if logf == nil {
		logf = log.Printf
	}
	buf := opts.EventBuffer
	if buf <= 0 {
		buf = 256
	}
	serial, manufacturer, model := identify(abs)
	d := &Device{
		dir:  abs,
		dev:  uint64(st.Dev),
		logf: logf,
		info: device.Info{
			Serial:       serial,
			Manufacturer: manufacturer,
			Model:        model,
			Kind:         device.KindStorage,
			Transport:    "folder",
		},
		events: make(chan device.Event, buf),
	}
	if !opts.NoEvents {
		w, err := startWatcher(d)
		if err != nil {
			logf("folder device %s: changes on it will not be noticed as they happen (%v); "+
				"they are found at the next full sync", abs, err)
		} else {
			d.w = w
		}
	}
	return d, nil
}

// Dir returns the folder's absolute path.
func (d *Device) Dir() string { return d.dir }

// Skipped returns how many objects listings have skipped so far because their names were unsafe.
func (d *Device) Skipped() int64 { return d.skipped.Load() }

// Info identifies the device: the file system UUID as serial when the folder is the mount point
// of a drive, else a stable hash of its absolute path; kind storage, transport "folder".
func (d *Device) Info() device.Info { return d.info }

// Storages reports the folder as storage 1, with free space and capacity of its file system.
func (d *Device) Storages(ctx context.Context) ([]device.Storage, error) {
	if err := d.usable(ctx); err != nil {
		return nil, fmt.Errorf("storages: %w", err)
	}
	var sf syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &sf); err != nil {
		return nil, fmt.Errorf("storages: statfs %s: %w", d.dir, d.mapErr(err))
	}
	bs := uint64(sf.Bsize)
	if sf.Frsize > 0 {
		bs = uint64(sf.Frsize)
	}
	capacity := sf.Blocks * bs
	free := sf.Bavail * bs
	if free > capacity {
		free = capacity
	}
	const stRdonly = 1 // ST_RDONLY in statfs flags
	return []device.Storage{{
		ID:          Storage,
		Description: d.info.Model,
		Free:        free,
		Capacity:    capacity,
		ReadOnly:    sf.Flags&stRdonly != 0,
	}}, nil
}

// List returns the children of the folder dir, sorted by name, without symbolic links, special
// files, temporary files and unsafe names.
func (d *Device) List(ctx context.Context, s device.StorageID, dir string) ([]device.Object, error) {
	dir, r, err := d.prepare(ctx, s, dir)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", dir, err)
	}
	defer r.Close()
	objs, err := d.readDir(r, dir)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", dir, err)
	}
	return objs, nil
}

// Stat returns the object at path ("" is the storage root, a folder).
func (d *Device) Stat(ctx context.Context, s device.StorageID, path string) (device.Object, error) {
	path, r, err := d.prepare(ctx, s, path)
	if err != nil {
		return device.Object{}, fmt.Errorf("stat %q: %w", path, err)
	}
	defer r.Close()
	o, err := d.stat(r, path)
	if err != nil {
		return device.Object{}, fmt.Errorf("stat %q: %w", path, err)
	}
	return o, nil
}

// Walk calls fn for every object below dir, parents before children, each folder's children in
// name order. fn returning filepath.SkipDir skips a folder's contents; fs.SkipAll ends the walk
// without error; any other error ends it and is returned.
func (d *Device) Walk(ctx context.Context, s device.StorageID, dir string, fn func(device.Object) error) error {
	dir, r, err := d.prepare(ctx, s, dir)
	if err != nil {
		return fmt.Errorf("walk %q: %w", dir, err)
	}
	defer r.Close()
	err = d.walk(ctx, r, dir, fn)
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

func (d *Device) walk(ctx context.Context, r *os.Root, dir string, fn func(device.Object) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("walk %q: %w", dir, err)
	}
	objs, err := d.readDir(r, dir)
	if err != nil {
		return fmt.Errorf("walk %q: %w", dir, err)
	}
	for _, o := range objs {
		err := fn(o)
		if errors.Is(err, filepath.SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if o.Dir {
			if err := d.walk(ctx, r, o.Path, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Open returns the object's content from offset on.
func (d *Device) Open(ctx context.Context, s device.StorageID, path string, offset int64) (io.ReadCloser, error) {
	path, r, err := d.prepare(ctx, s, path)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	defer r.Close()
	if offset < 0 {
		return nil, fmt.Errorf("open %q: negative offset %d", path, offset)
	}
	f, err := r.Open(osName(path))
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, d.mapErr(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %q: %w", path, d.mapErr(err))
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %q: not a file", path)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("open %q at %d: %w", path, offset, d.mapErr(err))
		}
	}
	return &reader{d: d, f: f, path: path}, nil
}

// reader maps read errors of an open object to the device's errors (an unplugged drive gives
// ErrDisconnected, not a bare EIO).
type reader struct {
	d    *Device
	f    *os.File
	path string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %q: %w", r.path, r.d.mapErr(err))
	}
	return n, err
}

func (r *reader) Close() error { return r.f.Close() }

// Create writes a new object of size bytes from r (size < 0: until r ends), creating missing
// parent folders, and sets its modification time to modTime (unless zero). The content goes to a
// hidden temporary file that is synced and renamed into place; if anything fails, or ctx is
// cancelled, the temporary file is removed and nothing appears at path. An existing object at
// path is ErrExists. A reader that ends before size bytes, or holds more, is an error.
func (d *Device) Create(ctx context.Context, s device.StorageID, path string, size int64, modTime time.Time, data io.Reader) (device.Object, error) {
	path, r, err := d.prepare(ctx, s, path)
	if err != nil {
		return device.Object{}, fmt.Errorf("create %q: %w", path, err)
	}
	defer r.Close()
	if path == "" {
		return device.Object{}, fmt.Errorf("create: the storage root already exists: %w", device.ErrExists)
	}
	o, err := d.create(ctx, r, path, size, modTime, data)
	if err != nil {
		return device.Object{}, fmt.Errorf("create %q: %w", path, err)
	}
	return o, nil
}

func (d *Device) create(ctx context.Context, r *os.Root, path string, size int64, modTime time.Time, data io.Reader) (device.Object, error) {
	if _, err := r.Lstat(path); err == nil {
		return device.Object{}, device.ErrExists
	} else if !errors.Is(err, fs.ErrNotExist) {
		return device.Object{}, d.mapErr(err)
	}
	dir := parent(path)
	if dir != "" {
		if err := r.MkdirAll(dir, 0o755); err != nil {
			return device.Object{}, d.mapErr(err)
		}
	}
	tmp := join(dir, tempPrefix+randomName())
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return device.Object{}, d.mapErr(err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			_ = r.Remove(tmp) // best effort: a leftover is hidden and removed later
		}
	}()
	src := fsutil.ContextReader(ctx, data)
	buf := make([]byte, 1<<20)
	if size >= 0 {
		n, err := io.CopyBuffer(fsutil.WriterOnly{W: f}, io.LimitReader(src, size), buf)
		if err != nil {
			return device.Object{}, d.copyErr(ctx, err)
		}
		if n < size {
			return device.Object{}, fmt.Errorf("content ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		var one [1]byte
		if m, err := io.ReadFull(src, one[:]); m > 0 {
			return device.Object{}, fmt.Errorf("content is longer than the declared %d bytes", size)
		} else if err != nil && err != io.EOF {
			return device.Object{}, d.copyErr(ctx, err)
		}
	} else if _, err := io.CopyBuffer(fsutil.WriterOnly{W: f}, src, buf); err != nil {
		return device.Object{}, d.copyErr(ctx, err)
	}
	if err := f.Sync(); err != nil {
		return device.Object{}, d.mapErr(err)
	}
	if err := f.Close(); err != nil {
		return device.Object{}, d.mapErr(err)
	}
	if !modTime.IsZero() {
		if err := r.Chtimes(tmp, modTime, modTime); err != nil {
			return device.Object{}, d.mapErr(err)
		}
	}
	if err := ctx.Err(); err != nil {
		return device.Object{}, err
	}
	if _, err := r.Lstat(path); err == nil {
		return device.Object{}, device.ErrExists
	}
	if err := r.Rename(tmp, path); err != nil {
		return device.Object{}, d.mapErr(err)
	}
	done = true
	d.syncDir(r, dir)
	return d.stat(r, path)
}

// copyErr reports a failed copy: the context's error when it was cancelled, else the mapped
// file system error.
func (d *Device) copyErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return d.mapErr(err)
}

// Mkdir creates the folder path and missing parents. An existing folder is not an error; an
// existing file is ErrExists.
func (d *Device) Mkdir(ctx context.Context, s device.StorageID, path string) (device.Object, error) {
	path, r, err := d.prepare(ctx, s, path)
	if err != nil {
		return device.Object{}, fmt.Errorf("mkdir %q: %w", path, err)
	}
	defer r.Close()
	if err := r.MkdirAll(osName(path), 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return device.Object{}, fmt.Errorf("mkdir %q: a file is in the way: %w", path, device.ErrExists)
		}
		return device.Object{}, fmt.Errorf("mkdir %q: %w", path, d.mapErr(err))
	}
	d.syncDir(r, parent(path))
	o, err := d.stat(r, path)
	if err != nil {
		return device.Object{}, fmt.Errorf("mkdir %q: %w", path, err)
	}
	return o, nil
}

// Delete removes a file or an empty folder; a folder with contents is ErrNotEmpty.
func (d *Device) Delete(ctx context.Context, s device.StorageID, path string) error {
	path, r, err := d.prepare(ctx, s, path)
	if err != nil {
		return fmt.Errorf("delete %q: %w", path, err)
	}
	defer r.Close()
	if path == "" {
		return fmt.Errorf("delete: the storage root cannot be deleted: %w", device.ErrPermission)
	}
	if err := r.Remove(path); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("delete %q: %w", path, device.ErrNotEmpty)
		}
		return fmt.Errorf("delete %q: %w", path, d.mapErr(err))
	}
	d.syncDir(r, parent(path))
	return nil
}

// Rename moves or renames an object, creating missing parent folders of to. An existing object
// at to is ErrExists: Rename never replaces anything.
func (d *Device) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	from, r, err := d.prepare(ctx, s, from)
	if err != nil {
		return fmt.Errorf("rename %q: %w", from, err)
	}
	defer r.Close()
	to, err = cleanPath(to)
	if err != nil {
		return fmt.Errorf("rename %q: %w", from, err)
	}
	if from == "" || to == "" {
		return fmt.Errorf("rename %q to %q: the storage root cannot be moved: %w", from, to, device.ErrPermission)
	}
	if _, err := r.Lstat(from); err != nil {
		return fmt.Errorf("rename %q: %w", from, d.mapErr(err))
	}
	if _, err := r.Lstat(to); err == nil {
		return fmt.Errorf("rename %q to %q: %w", from, to, device.ErrExists)
	}
	if dir := parent(to); dir != "" {
		if err := r.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("rename %q to %q: %w", from, to, d.mapErr(err))
		}
	}
	if err := r.Rename(from, to); err != nil {
		return fmt.Errorf("rename %q to %q: %w", from, to, d.mapErr(err))
	}
	d.syncDir(r, parent(to))
	if parent(to) != parent(from) {
		d.syncDir(r, parent(from))
	}
	return nil
}

// Events reports changes in the folder. It is closed when the device is closed or gone (after a
// DeviceGone event in the latter case).
func (d *Device) Events() <-chan device.Event { return d.events }

// Close stops the watcher and releases the folder. It is safe to call more than once.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	if d.w != nil {
		d.w.stop()
	}
	d.mu.Lock()
	if !d.chClosed {
		d.chClosed = true
		close(d.events)
	}
	d.mu.Unlock()
	return nil
}

// Gone marks the device as gone (its drive was unmounted or unplugged): a DeviceGone event is
// sent, Events is closed and every later call returns an error wrapping ErrDisconnected. The
// Monitor calls it; it is safe to call more than once and after Close.
func (d *Device) Gone(reason error) {
	if reason == nil {
		reason = errors.New("the folder is no longer there")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.goneErr == nil {
		d.goneErr = reason
	}
	if d.chClosed {
		return
	}
	ev := device.Event{Kind: device.DeviceGone, Storage: Storage}
	select {
	case d.events <- ev:
	default:
		// The reader is behind: make room, the departure matters more than any change.
		select {
		case <-d.events:
		default:
		}
		select {
		case d.events <- ev:
		default:
		}
	}
	d.chClosed = true
	close(d.events)
}

// emit sends an event without blocking. A full channel loses the event (counted) and owes the
// reader an EventOverflow, delivered as soon as there is room.
func (d *Device) emit(ev device.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.chClosed {
		return
	}
	if d.overflow {
		select {
		case d.events <- device.Event{Kind: device.EventOverflow, Storage: Storage}:
			d.overflow = false
		default:
			d.dropped++
			return
		}
	}
	select {
	case d.events <- ev:
	default:
		d.dropped++
		d.overflow = true
	}
}

// flushOverflow delivers an owed EventOverflow if there is room now; the watcher calls it
// periodically while one is owed.
func (d *Device) flushOverflow() (owed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.chClosed || !d.overflow {
		return false
	}
	select {
	case d.events <- device.Event{Kind: device.EventOverflow, Storage: Storage}:
		d.overflow = false
	default:
	}
	return d.overflow
}

// Dropped returns how many events were lost because the reader of Events fell behind.
func (d *Device) Dropped() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}

// usable returns an error when the device cannot be used: closed, gone, or ctx done.
func (d *Device) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.goneErr != nil {
		return fmt.Errorf("%s: %v: %w", d.dir, d.goneErr, device.ErrDisconnected)
	}
	if d.closed {
		return fmt.Errorf("%s: the device was closed: %w", d.dir, device.ErrDisconnected)
	}
	return nil
}

// prepare checks the device, the storage and the path, and returns the clean path and the
// folder opened as an os.Root, which the caller closes. The folder is opened for each operation
// rather than held open, so that the user can unmount (eject) the drive whenever Cradle is idle.
func (d *Device) prepare(ctx context.Context, s device.StorageID, path string) (string, *os.Root, error) {
	if err := d.usable(ctx); err != nil {
		return path, nil, err
	}
	if s != Storage {
		return path, nil, fmt.Errorf("storage %d: a folder device has only storage %d: %w", s, Storage, device.ErrNotFound)
	}
	clean, err := cleanPath(path)
	if err != nil {
		return path, nil, err
	}
	r, err := os.OpenRoot(d.dir)
	if err != nil {
		if !d.present() {
			d.Gone(fmt.Errorf("%s was removed or unmounted", d.dir))
			return clean, nil, fmt.Errorf("%s is no longer there: %w", d.dir, device.ErrDisconnected)
		}
		return clean, nil, d.mapErr(err)
	}
	return clean, r, nil
}

// stat returns the object at a clean path.
func (d *Device) stat(r *os.Root, path string) (device.Object, error) {
	fi, err := r.Lstat(osName(path))
	if err != nil {
		return device.Object{}, d.mapErr(err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return device.Object{}, fmt.Errorf("%s is a %v, not a file or folder: %w", path, fi.Mode().Type(), device.ErrNotFound)
	}
	return object(path, fi), nil
}

func object(path string, fi fs.FileInfo) device.Object {
	o := device.Object{
		Storage: Storage,
		Path:    path,
		Name:    base(path),
		Dir:     fi.IsDir(),
		ModTime: fi.ModTime(),
	}
	if !o.Dir {
		o.Size = fi.Size()
	}
	return o
}

// readDir lists a clean folder path: sorted, filtered, with sizes and times.
func (d *Device) readDir(r *os.Root, dir string) ([]device.Object, error) {
	f, err := r.Open(osName(dir))
	if err != nil {
		return nil, d.mapErr(err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("not a folder: %w", device.ErrNotFound)
		}
		return nil, d.mapErr(err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int {
		switch {
		case a.Name() < b.Name():
			return -1
		case a.Name() > b.Name():
			return 1
		}
		return 0
	})
	objs := make([]device.Object, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if IsTempName(name) {
			d.removeStaleTemp(r, join(dir, name))
			continue
		}
		if err := device.CheckName(name); err != nil {
			d.skipped.Add(1)
			d.logf("folder device %s: skipping %q in %q: %v", d.dir, name, dir, err)
			continue
		}
		t := e.Type()
		if t&fs.ModeSymlink != 0 || (t != 0 && !e.IsDir()) {
			continue // symbolic links and special files are not objects
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while listing
		}
		if err != nil {
			return nil, d.mapErr(err)
		}
		objs = append(objs, object(join(dir, name), fi))
	}
	return objs, nil
}

// removeStaleTemp removes a temporary file that a crashed Create left behind, once it is old.
func (d *Device) removeStaleTemp(r *os.Root, path string) {
	fi, err := r.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	changed := time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	if time.Since(changed) > staleTemp {
		if err := r.Remove(path); err == nil {
			d.logf("folder device %s: removed %q, left by an interrupted copy", d.dir, path)
		}
	}
}

// syncDir flushes a folder's entries to disk, so a rename or a new file survives a power cut or
// a drive pulled right after. A failure is logged, not returned: the operation itself succeeded.
func (d *Device) syncDir(r *os.Root, dir string) {
	f, err := r.Open(osName(dir))
	if err != nil {
		return
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		d.logf("folder device %s: flushing folder %q: %v", d.dir, dir, err)
	}
}

// present tells whether the folder is still there and still on the file system it was on at open.
func (d *Device) present() bool {
	var st syscall.Stat_t
	if err := syscall.Stat(d.dir, &st); err != nil {
		return false
	}
	return uint64(st.Dev) == d.dev
}

// mapErr maps a file system error to the device's errors; an I/O error on a folder that is no
// longer there marks the device gone.
func (d *Device) mapErr(err error) error {
	if errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO) {
		if !d.present() {
			d.Gone(fmt.Errorf("%s was removed or unmounted", d.dir))
			return fmt.Errorf("%w: %w", err, device.ErrDisconnected)
		}
	}
	return mapErr(err)
}

// mapErr wraps err with the device error it means, keeping the original for the message.
func mapErr(err error) error {
	var target error
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		target = device.ErrNotFound
	case errors.Is(err, fs.ErrExist):
		target = device.ErrExists
	case errors.Is(err, syscall.ENOTEMPTY):
		target = device.ErrNotEmpty
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		target = device.ErrNoSpace
	case errors.Is(err, syscall.EROFS):
		target = device.ErrReadOnly
	case errors.Is(err, fs.ErrPermission):
		target = device.ErrPermission
	case errors.Is(err, syscall.EBUSY):
		target = device.ErrBusy
	default:
		return err
	}
	return fmt.Errorf("%w: %w", err, target)
}

// randomName returns a random, file-name-safe string for temporary files.
func randomName() string { return rand.Text()[:16] }
