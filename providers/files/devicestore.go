package files

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/internal/devwatch"
	"github.com/cradle-sync/cradle/repl"
)

// DeviceOptions tune a DeviceStore.
type DeviceOptions struct {
	// Ignore holds the user's ignore patterns; the built-in rules always apply.
	Ignore []string
	// StateDir is the partnership's state folder on this computer. It holds the journal of
	// device updates in progress and, with KeepDeleted, the set of items seen. Empty: neither.
	StateDir string
	// KeepDeleted makes deletions on the device invisible to the engine (ignore-device-deletes:
	// the device is a cache). An item the store has seen and that is gone from the device is
	// still reported, with its last stamp, until the engine deletes it through the store. Needs
	// StateDir.
	KeepDeleted bool
	// CreateBase lets the store treat a missing base folder as empty and create it on the first
	// write. Without it, a missing base folder is an error (a card not inserted must not look
	// like everything was deleted).
	CreateBase bool
	// Logf receives warnings (skipped names); default log.Printf.
	Logf func(format string, args ...any)
}

// DeviceStore is a folder on a device as a repl.Store (and repl.Notifier, repl.Stater,
// repl.Atomicity).
//
// Handles are paths relative to the base folder, '/'-separated, as the device names them; names
// a device reports pass device.CheckName (the device layer skips the others; the store checks
// again and skips, counts and logs any that slip through), so a handle never becomes an unsafe
// desktop path. NaturalKey is the NFC form of the handle (see DesktopStore).
//
// Writes: a new file is created with device.Create. An existing file is replaced, where the
// device can rename, by uploading the new content under a temporary name beside it, then
// deleting the old object and renaming the new one into place; a journal in StateDir finishes
// that swap after an interruption, so the item is never seen as deleted. Where the device cannot
// rename (QEMU's usb-mtp), the old object is deleted and the new one created: WritesAtomic then
// reports false and the engine keeps an intent record for each write. Modification times are
// kept as far as the device keeps them (MTP: seconds).
//
// Concurrency: safe for use from several goroutines; the device serialises its own operations.
type DeviceStore struct {
	dev     device.Device
	storage device.StorageID
	base    string // clean device path of the partnership's folder ("" = storage root)
	ig      *Ignorer
	logf    func(string, ...any)
	opts    DeviceOptions
	journal swapJournal
	seen    *SeenSet // nil unless KeepDeleted

	skipped atomic.Int64
	// skippedMu guards skippedNames, the names the last enumeration left out.
	skippedMu    sync.Mutex
	skippedNames []providers.SkippedName

	probeMu  sync.Mutex
	probed   bool
	renameOK bool
}

var (
	_ repl.Store     = (*DeviceStore)(nil)
	_ repl.Notifier  = (*DeviceStore)(nil)
	_ repl.Stater    = (*DeviceStore)(nil)
	_ repl.Atomicity = (*DeviceStore)(nil)
)

// ParseDevicePath reads a device-path option: "PATH" (on the device's first storage) or
// "STORAGE:PATH", where STORAGE is a storage ID (decimal or 0x hex) or a storage's description
// ("SD card", compared without case). A prefix before ':' that names no storage is part of the
// path. The path is checked with device.CheckPath.
func ParseDevicePath(ctx context.Context, dev device.Device, spec string) (device.StorageID, string, error) {
	storages, err := dev.Storages(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("device path %q: %w", spec, MapDeviceError(err))
	}
	if len(storages) == 0 {
		return 0, "", fmt.Errorf("device path %q: the device shows no storage (unlock it and choose "+
			"File transfer): %w", spec, repl.ErrGone)
	}
	id, p := storages[0].ID, spec
	if prefix, rest, ok := strings.Cut(spec, ":"); ok {
		if sid, found := findStorage(storages, prefix); found {
			id, p = sid, rest
		}
	}
	clean, err := device.CheckPath(p)
	if err != nil {
		return 0, "", fmt.Errorf("device path %q: %w", spec, errors.Join(err, repl.ErrInvalidName))
	}
	return id, clean, nil
}

func findStorage(storages []device.Storage, s string) (device.StorageID, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 0, 32); err == nil {
		for _, st := range storages {
			if st.ID == device.StorageID(n) {
				return st.ID, true
			}
		}
	}
	for _, st := range storages {
		if st.Description != "" && strings.EqualFold(st.Description, s) {
			return st.ID, true
		}
	}
	return 0, false
}

// NewDeviceStore opens the folder base (a clean device path, see ParseDevicePath) of storage on
// dev as a store, and finishes any swap an earlier session left half-done.
func NewDeviceStore(ctx context.Context, dev device.Device, storage device.StorageID, base string, opts DeviceOptions) (*DeviceStore, error) {
	base, err := device.CheckPath(base)
	if err != nil {
		return nil, fmt.Errorf("device folder %q: %w", base, errors.Join(err, repl.ErrInvalidName))
	}
	ig, err := NewIgnorer(opts.Ignore)
	if err != nil {
		return nil, err
	}
	logf := opts.Logf
	if logf == nil {
		logf = log.Printf
	}
	s := &DeviceStore{dev: dev, storage: storage, base: base, ig: ig, logf: logf, opts: opts}
	if opts.StateDir != "" {
		if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("state folder %s: %w", opts.StateDir, err)
		}
		s.journal.path = filepath.Join(opts.StateDir, "device-swaps.json")
		if opts.KeepDeleted {
			if s.seen, err = OpenSeenSet(filepath.Join(opts.StateDir, "device-seen")); err != nil {
				return nil, err
			}
		}
	} else if opts.KeepDeleted {
		return nil, errors.New("ignore-device-deletes needs a state folder to remember what the device held")
	}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	// List the base folder once: some devices (QEMU's usb-mtp, the emulator in its likeness)
	// only raise events for folders listed in the session, and this one is the partnership's.
	if _, err := dev.List(ctx, storage, base); err != nil && !errors.Is(err, device.ErrNotFound) {
		return nil, fmt.Errorf("list %s: %w", s.describeBase(), MapDeviceError(err))
	}
	return s, nil
}

// Close releases the store's files (the seen set's log).
func (s *DeviceStore) Close() error {
	if s.seen != nil {
		return s.seen.Close()
	}
	return nil
}

// Skipped returns how many device objects were skipped for unsafe names.
func (s *DeviceStore) Skipped() int64 { return s.skipped.Load() }

// SkippedNames returns the device objects the last enumeration left out for their names, with
// why (providers.NameSkipper).
func (s *DeviceStore) SkippedNames() []providers.SkippedName {
	s.skippedMu.Lock()
	defer s.skippedMu.Unlock()
	return slices.Clone(s.skippedNames)
}

var _ providers.NameSkipper = (*DeviceStore)(nil)

// full turns a handle into a device path.
func (s *DeviceStore) full(handle string) string {
	if s.base == "" {
		return handle
	}
	return s.base + "/" + handle
}

// rel turns a device path under base into a handle.
func (s *DeviceStore) rel(p string) (string, bool) {
	if s.base == "" {
		return p, p != ""
	}
	if !strings.HasPrefix(p, s.base+"/") {
		return "", false
	}
	return p[len(s.base)+1:], true
}

// checkHandle refuses handles that are not clean device paths.
func checkHandle(h string) error {
	if h == "" {
		return fmt.Errorf("empty handle: %w", repl.ErrInvalidName)
	}
	c, err := device.CheckPath(h)
	if err != nil || c != h {
		return fmt.Errorf("name %q cannot be used on a device: %w", h, errors.Join(err, repl.ErrInvalidName))
	}
	return nil
}

// recover finishes the swaps an interrupted session left in the journal: when the final object is
// gone and the uploaded one is there, complete, the uploaded one takes its place; when the final
// object is still there, the upload is removed (the old content stands and the engine sends it
// again).
func (s *DeviceStore) recover(ctx context.Context) error {
	list, err := s.journal.load()
	if err != nil || len(list) == 0 {
		return err
	}
	for _, sw := range list {
		_, ferr := s.dev.Stat(ctx, s.storage, sw.Final)
		to, terr := s.dev.Stat(ctx, s.storage, sw.Tmp)
		switch {
		case errors.Is(terr, device.ErrNotFound):
			// Nothing uploaded is left: either the swap finished or never began.
		case terr != nil:
			return fmt.Errorf("finish an interrupted update of %s: %w", sw.Final, MapDeviceError(terr))
		case errors.Is(ferr, device.ErrNotFound) && sw.Sized && to.Size != sw.Size:
			// An upload cut off (a device that keeps what it got) and the old version deleted
			// on the device meanwhile: the upload is not a version of the file.
			if err := s.dev.Delete(ctx, s.storage, sw.Tmp); err != nil && !errors.Is(err, device.ErrNotFound) {
				return fmt.Errorf("remove an unfinished upload %s: %w", sw.Tmp, MapDeviceError(err))
			}
		case errors.Is(ferr, device.ErrNotFound):
			if err := s.dev.Rename(ctx, s.storage, sw.Tmp, sw.Final); err != nil {
				return fmt.Errorf("finish an interrupted update of %s: %w", sw.Final, MapDeviceError(err))
			}
			s.logf("files: finished an interrupted update of %s on the device", sw.Final)
		case ferr == nil:
			if err := s.dev.Delete(ctx, s.storage, sw.Tmp); err != nil && !errors.Is(err, device.ErrNotFound) {
				return fmt.Errorf("remove an unfinished upload %s: %w", sw.Tmp, MapDeviceError(err))
			}
		default:
			return fmt.Errorf("finish an interrupted update of %s: %w", sw.Final, MapDeviceError(ferr))
		}
		if err := s.journal.done(sw); err != nil {
			return err
		}
	}
	return nil
}

// Enumerate lists the base folder's tree on the device (one device.Walk), without ignored items
// and unsafe names. With KeepDeleted, items seen before and gone now are reported as they were.
// A missing base folder is an error unless CreateBase is set (then it is empty).
func (s *DeviceStore) Enumerate(ctx context.Context) (repl.Iterator, error) {
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	var entries []repl.Entry
	var skipped []providers.SkippedName
	defer func() {
		s.skippedMu.Lock()
		s.skippedNames = skipped
		s.skippedMu.Unlock()
	}()
	err := s.dev.Walk(ctx, s.storage, s.base, func(o device.Object) error {
		rel, ok := s.rel(o.Path)
		if !ok {
			return nil
		}
		if err := device.CheckName(o.Name); err != nil || base(rel) != o.Name {
			s.skipped.Add(1)
			s.logf("files: skipping %q on the device: %v", device.SafeName(o.Name), err)
			why := "the name cannot be a file name on this computer"
			if err != nil {
				why = err.Error()
			}
			skipped = append(skipped, providers.SkippedName{Path: device.SafeName(o.Name), Reason: why})
			if o.Dir {
				return filepath.SkipDir
			}
			return nil
		}
		if s.ig.IgnoredName(parentOf(rel), o.Name, o.Dir) {
			if o.Dir {
				return filepath.SkipDir
			}
			return nil
		}
		entries = append(entries, entryOfObject(rel, o))
		return nil
	})
	if err != nil {
		if errors.Is(err, device.ErrNotFound) && s.baseMissing(ctx) {
			if !s.opts.CreateBase {
				return nil, fmt.Errorf("device folder %s does not exist (insert the card, or check the "+
					"partnership's device path): %w", s.describeBase(), repl.ErrNotFound)
			}
			err = nil
		} else {
			return nil, fmt.Errorf("list %s: %w", s.describeBase(), MapDeviceError(err))
		}
	}
	if s.seen != nil {
		entries, err = s.keepDeleted(entries)
		if err != nil {
			return nil, err
		}
	}
	return &sliceIter{entries: entries}, nil
}

// keepDeleted records what the device holds now and adds the items it held before and lost.
func (s *DeviceStore) keepDeleted(entries []repl.Entry) ([]repl.Entry, error) {
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e.Handle] = true
		if err := s.seen.Add(e.Handle, e.Stamp()); err != nil {
			return nil, err
		}
	}
	for _, h := range s.seen.Handles() {
		if present[h] {
			continue
		}
		st, _ := s.seen.Get(h)
		entries = append(entries, entryOfStamp(h, st))
	}
	if err := s.seen.Compact(); err != nil {
		return nil, err
	}
	return entries, nil
}

func entryOfStamp(h string, st repl.Stamp) repl.Entry {
	e := repl.Entry{Handle: h, Kind: st.Kind, Size: st.Size, Hash: st.Hash}
	if st.ModTime != 0 {
		e.ModTime = time.Unix(0, st.ModTime)
	}
	return e
}

func (s *DeviceStore) baseMissing(ctx context.Context) bool {
	if s.base == "" {
		return false
	}
	_, err := s.dev.Stat(ctx, s.storage, s.base)
	return errors.Is(err, device.ErrNotFound)
}

func (s *DeviceStore) describeBase() string {
	return fmt.Sprintf("%q (storage %d)", "/"+s.base, s.storage)
}

func entryOfObject(rel string, o device.Object) repl.Entry {
	if o.Dir {
		return repl.Entry{Handle: rel, Kind: repl.KindFolder, ModTime: o.ModTime}
	}
	return repl.Entry{Handle: rel, Kind: repl.KindFile, Size: o.Size, ModTime: o.ModTime}
}

// sliceIter returns entries gathered beforehand. Enumerate gathers the whole walk first, so that
// no device operation is pending while the engine works between two Next calls.
type sliceIter struct {
	entries []repl.Entry
	i       int
}

func (it *sliceIter) Next(ctx context.Context) (repl.Entry, error) {
	if it.i >= len(it.entries) {
		return repl.Entry{}, io.EOF
	}
	if it.i&1023 == 0 {
		if err := ctx.Err(); err != nil {
			return repl.Entry{}, err
		}
	}
	e := it.entries[it.i]
	it.i++
	return e, nil
}

func (it *sliceIter) Close() error {
	it.entries, it.i = nil, 0
	return nil
}

// IsItemChanged compares size, modification time and kind (repl.StampChanged).
func (s *DeviceStore) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated is false for ignored items.
func (s *DeviceStore) IsItemReplicated(e repl.Entry) bool {
	return !s.ig.Ignored(e.Handle, e.Kind == repl.KindFolder)
}

// NaturalKey is the handle in Unicode NFC.
func (s *DeviceStore) NaturalKey(_ context.Context, e repl.Entry) (string, error) {
	return naturalKey(e.Handle), nil
}

// Stat returns the item at handle (repl.Stater); with KeepDeleted, an item seen before and gone
// from the device is reported as it was.
func (s *DeviceStore) Stat(ctx context.Context, handle string) (repl.Entry, error) {
	if err := checkHandle(handle); err != nil {
		return repl.Entry{}, err
	}
	o, err := s.statFresh(ctx, s.full(handle))
	if err != nil {
		if errors.Is(err, device.ErrNotFound) && s.seen != nil {
			if st, ok := s.seen.Get(handle); ok {
				return entryOfStamp(handle, st), nil
			}
		}
		return repl.Entry{}, fmt.Errorf("stat %s on the device: %w", s.full(handle), MapDeviceError(err))
	}
	e := entryOfObject(handle, o)
	if s.seen != nil {
		if err := s.seen.Add(handle, e.Stamp()); err != nil {
			return repl.Entry{}, err
		}
	}
	return e, nil
}

// statFresh is device.Stat, asked again after listing the parent folder when the object seems
// not to exist: a device that caches listings may not know yet of an object that appeared a
// moment ago (its event still on the way).
func (s *DeviceStore) statFresh(ctx context.Context, p string) (device.Object, error) {
	o, err := s.dev.Stat(ctx, s.storage, p)
	if errors.Is(err, device.ErrNotFound) {
		s.refresh(ctx, p)
		o, err = s.dev.Stat(ctx, s.storage, p)
	}
	return o, err
}

// refresh lists the parent folder of p, so that the device's cached listing is up to date.
func (s *DeviceStore) refresh(ctx context.Context, p string) {
	_, _ = s.dev.List(ctx, s.storage, parentOf(p)) // only a refresh: Stat or Open says what is wrong
}

// Open streams a file from the device.
func (s *DeviceStore) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	if err := checkHandle(handle); err != nil {
		return nil, err
	}
	rc, err := s.dev.Open(ctx, s.storage, s.full(handle), 0)
	if errors.Is(err, device.ErrNotFound) {
		s.refresh(ctx, s.full(handle))
		rc, err = s.dev.Open(ctx, s.storage, s.full(handle), 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s on the device: %w", s.full(handle), MapDeviceError(err))
	}
	return &devReader{rc: rc, path: s.full(handle)}, nil
}

// devReader maps the device's read errors to the engine's.
type devReader struct {
	rc   io.ReadCloser
	path string
}

func (r *devReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %s on the device: %w", r.path, MapDeviceError(err))
	}
	return n, err
}

func (r *devReader) Close() error { return r.rc.Close() }

// WritesAtomic reports whether the device can rename, which makes updates atomic (repl.Atomicity).
// The first call may probe the device (see canRename).
func (s *DeviceStore) WritesAtomic() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok, err := s.canRename(ctx)
	return err == nil && ok
}

// canRename tells whether the device renames objects, finding out once. A device that cannot
// says so when asked to rename an object that does not exist (device/mtp checks what the device
// offers first), which leaves nothing on it. One that may be able to is probed: an empty
// temporary object is created, renamed and deleted. A probe that fails for any reason but an
// unplug or the end of ctx counts as "cannot rename" (updates are then made without a swap,
// which is safe) and is not tried again, so that a device which does not show what is created
// (QEMU hides names starting with a dot) does not collect a probe object at every write.
func (s *DeviceStore) canRename(ctx context.Context) (bool, error) {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if s.probed {
		return s.renameOK, nil
	}
	if s.dev.Info().Transport == "folder" {
		s.probed, s.renameOK = true, true
		return true, nil
	}
	a := s.full(TempPrefix + "probe-" + rand.Text()[:12])
	b := s.full(TempPrefix + "probe-" + rand.Text()[:12])
	err := s.dev.Rename(ctx, s.storage, a, b)
	switch {
	case errors.Is(err, device.ErrUnsupported):
		s.probed, s.renameOK = true, false
		return false, nil
	case err != nil && !errors.Is(err, device.ErrNotFound):
		if transient(ctx, err) {
			return false, fmt.Errorf("check whether the device can rename: %w", MapDeviceError(err))
		}
		s.logf("files: the device's answer to a rename is unclear; updating without renames: %v", err)
		s.probed, s.renameOK = true, false
		return false, nil
	}
	if s.base != "" {
		if _, err := s.dev.Mkdir(ctx, s.storage, s.base); err != nil {
			return false, fmt.Errorf("create %s on the device: %w", s.describeBase(), MapDeviceError(err))
		}
	}
	if _, err := s.dev.Create(ctx, s.storage, a, 0, time.Now(), strings.NewReader("")); err != nil {
		s.removeProbe(a)
		if transient(ctx, err) {
			return false, fmt.Errorf("check whether the device can rename: %w", MapDeviceError(err))
		}
		s.logf("files: could not create an object to check whether the device can rename; updating without renames: %v", err)
		s.probed, s.renameOK = true, false
		return false, nil
	}
	err = s.dev.Rename(ctx, s.storage, a, b)
	left := a
	if err == nil {
		left = b
	}
	s.removeProbe(left)
	switch {
	case err == nil:
		s.probed, s.renameOK = true, true
	case transient(ctx, err):
		return false, fmt.Errorf("check whether the device can rename: %w", MapDeviceError(err))
	default:
		if !errors.Is(err, device.ErrUnsupported) {
			s.logf("files: the device could not rename a new object; updating without renames: %v", err)
		}
		s.probed, s.renameOK = true, false
	}
	return s.renameOK, nil
}

// removeProbe deletes the rename probe at p, if the device shows it. It has its own time limit:
// the probe goes even when the caller's ctx ended.
func (s *DeviceStore) removeProbe(p string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.dev.Delete(ctx, s.storage, p); err != nil && !errors.Is(err, device.ErrNotFound) {
		s.logf("files: could not remove the probe %s from the device: %v", p, err)
	}
}

// transient tells whether err may not happen again: the device went away, or ctx ended.
func transient(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, device.ErrDisconnected) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, device.ErrBusy)
}

// current returns the item at handle: the device's object, or a kept item (KeepDeleted), and
// whether it is only kept.
func (s *DeviceStore) current(ctx context.Context, handle string) (repl.Entry, bool, error) {
	o, err := s.statFresh(ctx, s.full(handle))
	if err == nil {
		return entryOfObject(handle, o), false, nil
	}
	if errors.Is(err, device.ErrNotFound) && s.seen != nil {
		if st, ok := s.seen.Get(handle); ok {
			return entryOfStamp(handle, st), true, nil
		}
	}
	return repl.Entry{}, false, fmt.Errorf("%s on the device: %w", s.full(handle), MapDeviceError(err))
}

// Write creates, updates, renames or moves an item on the device (see DeviceStore).
func (s *DeviceStore) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if err := repl.CheckName(req.Name); err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	name := req.Name
	if err := checkHandle(name); err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	if req.Handle != "" {
		if err := checkHandle(req.Handle); err != nil {
			return repl.Entry{}, fmt.Errorf("write: %w", err)
		}
	}
	var (
		e   repl.Entry
		err error
	)
	if req.Kind == repl.KindFolder {
		e, err = s.writeFolder(ctx, req, name)
	} else {
		e, err = s.writeFile(ctx, req, name)
	}
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write %s on the device: %w", s.full(name), err)
	}
	if s.seen != nil {
		if req.Handle != "" && req.Handle != name {
			if err := s.seen.Remove(req.Handle); err != nil {
				return repl.Entry{}, err
			}
		}
		if err := s.seen.Add(name, e.Stamp()); err != nil {
			return repl.Entry{}, err
		}
	}
	return e, nil
}

// checkExpected returns the current item at req.Handle after checking it against req.Expected.
func (s *DeviceStore) checkExpected(ctx context.Context, req repl.WriteRequest) (repl.Entry, bool, error) {
	cur, kept, err := s.current(ctx, req.Handle)
	if err != nil {
		return repl.Entry{}, false, err
	}
	if req.Expected != nil && repl.StampChanged(*req.Expected, cur) {
		return repl.Entry{}, false, fmt.Errorf("%s was modified on the device since it was last seen: %w",
			s.full(req.Handle), repl.ErrChanged)
	}
	return cur, kept, nil
}

func (s *DeviceStore) exists(ctx context.Context, p string) (bool, error) {
	_, err := s.dev.Stat(ctx, s.storage, p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, device.ErrNotFound) {
		return false, nil
	}
	return false, MapDeviceError(err)
}

func (s *DeviceStore) writeFolder(ctx context.Context, req repl.WriteRequest, name string) (repl.Entry, error) {
	target := s.full(name)
	if req.Handle == "" {
		if ok, err := s.exists(ctx, target); err != nil {
			return repl.Entry{}, err
		} else if ok {
			return repl.Entry{}, repl.ErrExists
		}
		return s.mkdir(ctx, name)
	}
	cur, kept, err := s.checkExpected(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	if req.Handle != name {
		if strings.HasPrefix(name, req.Handle+"/") {
			return repl.Entry{}, fmt.Errorf("cannot move a folder into itself: %w", repl.ErrInvalidName)
		}
		if ok, err := s.exists(ctx, target); err != nil {
			return repl.Entry{}, err
		} else if ok {
			return repl.Entry{}, repl.ErrExists
		}
		if kept {
			return s.mkdir(ctx, name)
		}
		if err := s.move(ctx, req.Handle, name, cur.Kind == repl.KindFolder); err != nil {
			return repl.Entry{}, err
		}
		return s.stat(ctx, name)
	}
	if cur.Kind == repl.KindFile && !kept {
		if err := s.dev.Delete(ctx, s.storage, target); err != nil {
			return repl.Entry{}, MapDeviceError(err)
		}
	}
	return s.mkdir(ctx, name)
}

func (s *DeviceStore) mkdir(ctx context.Context, name string) (repl.Entry, error) {
	o, err := s.dev.Mkdir(ctx, s.storage, s.full(name))
	if err != nil {
		return repl.Entry{}, MapDeviceError(err)
	}
	return entryOfObject(name, o), nil
}

func (s *DeviceStore) stat(ctx context.Context, name string) (repl.Entry, error) {
	o, err := s.dev.Stat(ctx, s.storage, s.full(name))
	if err != nil {
		return repl.Entry{}, MapDeviceError(err)
	}
	return entryOfObject(name, o), nil
}

// move renames an object, or, where the device cannot rename, copies it (a folder with its whole
// tree) through the computer and deletes the original.
func (s *DeviceStore) move(ctx context.Context, from, to string, folder bool) error {
	ok, err := s.canRename(ctx)
	if err != nil {
		return err
	}
	if ok {
		err := s.dev.Rename(ctx, s.storage, s.full(from), s.full(to))
		if err == nil {
			return nil
		}
		if !errors.Is(err, device.ErrUnsupported) {
			return MapDeviceError(err)
		}
		// Some devices rename in place but cannot move between folders: copy.
	}
	if !folder {
		return s.copyDelete(ctx, s.full(from), s.full(to))
	}
	var objs []device.Object
	err = s.dev.Walk(ctx, s.storage, s.full(from), func(o device.Object) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return MapDeviceError(err)
	}
	if _, err := s.dev.Mkdir(ctx, s.storage, s.full(to)); err != nil {
		return MapDeviceError(err)
	}
	for _, o := range objs {
		dst := s.full(to) + o.Path[len(s.full(from)):]
		if o.Dir {
			if _, err := s.dev.Mkdir(ctx, s.storage, dst); err != nil {
				return MapDeviceError(err)
			}
			continue
		}
		if err := s.copyDelete(ctx, o.Path, dst); err != nil {
			return err
		}
	}
	for i := len(objs) - 1; i >= 0; i-- {
		if objs[i].Dir {
			if err := s.dev.Delete(ctx, s.storage, objs[i].Path); err != nil && !errors.Is(err, device.ErrNotFound) {
				return MapDeviceError(err)
			}
		}
	}
	if err := s.dev.Delete(ctx, s.storage, s.full(from)); err != nil && !errors.Is(err, device.ErrNotFound) {
		return MapDeviceError(err)
	}
	return nil
}

// copyDelete copies one object through the computer, then deletes the original.
func (s *DeviceStore) copyDelete(ctx context.Context, from, to string) error {
	o, err := s.dev.Stat(ctx, s.storage, from)
	if err != nil {
		return MapDeviceError(err)
	}
	rc, err := s.dev.Open(ctx, s.storage, from, 0)
	if err != nil {
		return MapDeviceError(err)
	}
	_, err = s.dev.Create(ctx, s.storage, to, o.Size, o.ModTime, rc)
	rc.Close()
	if err != nil {
		return MapDeviceError(err)
	}
	if err := s.dev.Delete(ctx, s.storage, from); err != nil {
		return MapDeviceError(err)
	}
	return nil
}

func (s *DeviceStore) writeFile(ctx context.Context, req repl.WriteRequest, name string) (repl.Entry, error) {
	target := s.full(name)
	data, size, cleanup, err := sized(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	defer cleanup()

	if req.Handle == "" {
		if ok, err := s.exists(ctx, target); err != nil {
			return repl.Entry{}, err
		} else if ok {
			return repl.Entry{}, repl.ErrExists
		}
		return s.create(ctx, name, size, req.ModTime, data)
	}

	cur, kept, err := s.checkExpected(ctx, req)
	if err != nil {
		return repl.Entry{}, err
	}
	old := s.full(req.Handle)
	if cur.Kind == repl.KindFolder && !kept {
		// A folder becomes a file: only an empty one may go.
		if err := s.dev.Delete(ctx, s.storage, old); err != nil {
			return repl.Entry{}, MapDeviceError(err)
		}
		kept = true // nothing of the old item is left
	}
	if req.Handle != name {
		if ok, err := s.exists(ctx, target); err != nil {
			return repl.Entry{}, err
		} else if ok {
			return repl.Entry{}, repl.ErrExists
		}
		// Create the new name first, then remove the old one: an interruption leaves both,
		// never neither.
		e, err := s.create(ctx, name, size, req.ModTime, data)
		if err != nil {
			return repl.Entry{}, err
		}
		if !kept {
			if err := s.dev.Delete(ctx, s.storage, old); err != nil && !errors.Is(err, device.ErrNotFound) {
				return repl.Entry{}, fmt.Errorf("remove the old name %s: %w", old, MapDeviceError(err))
			}
		}
		return e, nil
	}
	if kept {
		return s.create(ctx, name, size, req.ModTime, data)
	}

	canRename, err := s.canRename(ctx)
	if err != nil {
		return repl.Entry{}, err
	}
	if !canRename {
		// Not atomic (the engine knows: WritesAtomic is false and it keeps an intent).
		if err := s.dev.Delete(ctx, s.storage, old); err != nil && !errors.Is(err, device.ErrNotFound) {
			return repl.Entry{}, MapDeviceError(err)
		}
		return s.create(ctx, name, size, req.ModTime, data)
	}

	tmpName := parentOf(name)
	if tmpName != "" {
		tmpName += "/"
	}
	tmpName += TempPrefix + rand.Text()[:16]
	tmp := s.full(tmpName)
	// Journaled before the upload begins: a device pulled out at any point from here on leaves
	// no upload behind that the next session does not finish or remove (recover).
	sw := swap{Tmp: tmp, Final: old, Size: size, Sized: true}
	if err := s.journal.add(sw); err != nil {
		return repl.Entry{}, err
	}
	committed := false
	defer func() {
		if !committed {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := s.dev.Delete(dctx, s.storage, tmp)
			cancel()
			if err == nil || errors.Is(err, device.ErrNotFound) {
				_ = s.journal.done(sw) // else the next session removes it
			}
		}
	}()
	if _, err := s.dev.Create(ctx, s.storage, tmp, size, req.ModTime, data); err != nil {
		return repl.Entry{}, MapDeviceError(err)
	}
	// The last look before the swap: the user may have changed the file meanwhile.
	if _, _, err := s.checkExpected(ctx, req); err != nil {
		return repl.Entry{}, err
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if err := s.dev.Delete(ctx, s.storage, old); err != nil && !errors.Is(err, device.ErrNotFound) {
		return repl.Entry{}, MapDeviceError(err)
	}
	committed = true // from here on the upload is the item: never delete it
	if err := s.dev.Rename(ctx, s.storage, tmp, old); err != nil {
		return repl.Entry{}, fmt.Errorf("put the new content in place (it is kept as %s and moved "+
			"into place at the next sync): %w", tmp, MapDeviceError(err))
	}
	if err := s.journal.done(sw); err != nil {
		return repl.Entry{}, err
	}
	return s.stat(ctx, name)
}

func (s *DeviceStore) create(ctx context.Context, name string, size int64, mt time.Time, data io.Reader) (repl.Entry, error) {
	o, err := s.dev.Create(ctx, s.storage, s.full(name), size, mt, data)
	if err != nil {
		if ctx.Err() != nil {
			return repl.Entry{}, ctx.Err()
		}
		return repl.Entry{}, MapDeviceError(err)
	}
	return entryOfObject(name, o), nil
}

// sized returns the request's content with its size known: a device must be told the size
// before the data (MTP's SendObjectInfo). Content of unknown size is spooled to a temporary file.
func sized(ctx context.Context, req repl.WriteRequest) (io.Reader, int64, func(), error) {
	data := req.Data
	if data == nil {
		data = eofReader{}
	}
	data = &ctxReader{ctx: ctx, r: data}
	if req.Size >= 0 {
		return data, req.Size, func() {}, nil
	}
	f, err := os.CreateTemp("", "cradle-upload-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool content of unknown size: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, data)
	if err != nil {
		cleanup()
		if ctx.Err() != nil {
			return nil, 0, nil, ctx.Err()
		}
		return nil, 0, nil, fmt.Errorf("spool content of unknown size: %w", MapFSError(err))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("spool content of unknown size: %w", err)
	}
	return &ctxReader{ctx: ctx, r: f}, n, cleanup, nil
}

// Delete removes an item from the device if it still matches expected; a folder must be empty.
// With KeepDeleted, a kept item (already gone from the device) is simply forgotten.
func (s *DeviceStore) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkHandle(handle); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	cur, kept, err := s.current(ctx, handle)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if repl.StampChanged(expected, cur) {
		return fmt.Errorf("delete %s: modified on the device since it was last seen: %w", s.full(handle), repl.ErrChanged)
	}
	if !kept {
		if err := s.dev.Delete(ctx, s.storage, s.full(handle)); err != nil {
			return fmt.Errorf("delete %s on the device: %w", s.full(handle), MapDeviceError(err))
		}
	}
	if s.seen != nil {
		return s.seen.Remove(handle)
	}
	return nil
}

// Watch turns the device's events under the base folder into notifications, until ctx is done or
// the device goes (a Shutdown). Events without a path, and lost events, are an Overflow.
func (s *DeviceStore) Watch(ctx context.Context, notify func(repl.Notification)) error {
	events, stop := device.Subscribe(s.dev)
	defer stop()
	return devwatch.Run(ctx, events, s.storage, notify, func(ev device.Event) {
		if ev.Path == "" {
			notify(repl.Notification{Kind: repl.Overflow})
			return
		}
		rel, ok := s.rel(ev.Path)
		if !ok || s.ig.Ignored(rel, false) && s.ig.Ignored(rel, true) {
			return
		}
		notify(repl.Notification{Kind: devwatch.Kind(ev.Kind), Handle: rel})
	})
}

// MapDeviceError wraps a device error with the repl sentinel it means (device.ErrNotFound ->
// repl.ErrNotFound, ErrDisconnected and ErrNotAnswering -> ErrGone, ErrUnsafeName and
// ErrNameNotAllowed -> ErrInvalidName, ...), keeping the device's message.
func MapDeviceError(err error) error {
	var target error
	switch {
	case errors.Is(err, device.ErrNotFound):
		target = repl.ErrNotFound
	case errors.Is(err, device.ErrExists):
		target = repl.ErrExists
	case errors.Is(err, device.ErrNotEmpty):
		target = repl.ErrNotEmpty
	case errors.Is(err, device.ErrNoSpace):
		target = repl.ErrNoSpace
	case errors.Is(err, device.ErrReadOnly):
		target = repl.ErrReadOnly
	case errors.Is(err, device.ErrPermission):
		target = repl.ErrPermission
	case errors.Is(err, device.ErrDisconnected), errors.Is(err, device.ErrNotAnswering):
		// A phone that stopped answering ends the session: its message says what to do.
		target = repl.ErrGone
	case errors.Is(err, device.ErrUnsafeName), errors.Is(err, device.ErrNameNotAllowed):
		target = repl.ErrInvalidName
	default:
		return err
	}
	return repl.Classify(err, target)
}

// parentOf returns the folder part of a relative path ("" at the top).
func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// base returns the last component of a relative path.
func base(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
