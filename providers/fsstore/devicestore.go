package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/internal/devwatch"
	"github.com/cradle-sync/cradle/providers/versions"
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
	// KeepOnDevice keeps the old content of a file the store replaces or deletes for the engine
	// (which says why) on the device, in the base folder's .cradle/versions, where the device can
	// rename and has room (a tenth of its storage free), with a listing cached in StateDir.
	KeepOnDevice bool
	// Versions, when set, keeps that content on this computer where the device cannot (the
	// content is copied from the device before it is replaced).
	Versions *versions.Dir
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
	// area is the versions area on the device (KeepOnDevice), versions the one on this
	// computer; either may be nil.
	area     *versions.DeviceDir
	versions *versions.Dir

	skipped atomic.Int64
	// skippedMu guards skippedNames, the names the last enumeration left out.
	skippedMu    sync.Mutex
	skippedNames []providers.SkippedName

	probeMu  sync.Mutex
	probed   bool
	renameOK bool

	// names are the storage's name rules (which names it takes for one).
	names device.NameRules
}

var (
	_ repl.Store     = (*DeviceStore)(nil)
	_ repl.Notifier  = (*DeviceStore)(nil)
	_ repl.Stater    = (*DeviceStore)(nil)
	_ repl.Atomicity = (*DeviceStore)(nil)
	_ repl.NameKeyer = (*DeviceStore)(nil)

	_ repl.CauseDeleter = (*DeviceStore)(nil)
)

// NewDeviceStore opens the folder base (a clean device path, see providers.ParseDevicePath) of
// storage on dev as a store, and finishes any swap an earlier session left half-done.
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
	s := &DeviceStore{dev: dev, storage: storage, base: base, ig: ig, logf: logf, opts: opts, versions: opts.Versions}
	if opts.KeepOnDevice {
		cache := ""
		if opts.StateDir != "" {
			cache = filepath.Join(opts.StateDir, "device-versions.json")
		}
		s.area = versions.NewDeviceDir(dev, storage, s.full(MetaDir+"/versions"), cache)
	}
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
	if sts, err := dev.Storages(ctx); err == nil {
		for _, st := range sts {
			if st.ID == storage {
				s.names = st.Names
			}
		}
	}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	// List the base folder once: some devices (QEMU's usb-mtp, the emulator in its likeness)
	// only raise events for folders listed in the session, and this one is the partnership's.
	if _, err := dev.List(ctx, storage, base); err != nil && !errors.Is(err, device.ErrNotFound) {
		return nil, fmt.Errorf("list %s: %w", s.describeBase(), providers.MapDeviceError(err))
	}
	return s, nil
}

// NameKey returns the form of handle under which the device's storage tells names apart
// (repl.NameKeyer): case-folded on a storage that folds case.
func (s *DeviceStore) NameKey(handle string) string {
	if !s.names.FoldCase {
		return handle
	}
	return s.names.Key(handle)
}

// Close releases the store's files (the seen set's log).
func (s *DeviceStore) Close() error {
	if s.seen != nil {
		return s.seen.Close()
	}
	return nil
}

// VersionsArea returns the versions area on the device (nil without KeepOnDevice).
func (s *DeviceStore) VersionsArea() *versions.DeviceDir { return s.area }

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

// Enumerate lists the base folder's tree on the device, folder by folder as the iterator goes, in
// the byte order of the handles, without ignored items and unsafe names. With KeepDeleted, items
// seen before and gone now are reported as they were (then the listing is held, to compare).
// A missing base folder is an error unless CreateBase is set (then it is empty).
func (s *DeviceStore) Enumerate(ctx context.Context) (repl.Iterator, error) {
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	it := &deviceIter{s: s}
	// The base folder is listed now, so that a missing one is an error of Enumerate.
	if err := it.push(ctx, s.base); err != nil {
		it.Close()
		return nil, err
	}
	if s.seen == nil {
		return it, nil
	}
	// Items kept after their deletion on the device (KeepDeleted) are listed with the others.
	var entries []repl.Entry
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			it.Close()
			return nil, err
		}
		entries = append(entries, e)
	}
	it.Close()
	entries, err := s.keepDeleted(entries)
	if err != nil {
		return nil, err
	}
	return &sliceIter{entries: entries}, nil
}

// deviceIter lists the device folder one folder at a time, depth first, in the byte order of the
// handles (as the desktop's walk does: a folder's steps sorted, its descent keyed by its name and
// a '/'), without holding the whole listing.
type deviceIter struct {
	s     *DeviceStore
	stack []deviceFrame
	n     int
	// skipped are the objects left out for their names so far: the store's SkippedNames once
	// the listing ends or is closed.
	skipped   []providers.SkippedName
	published bool
}

// publish makes what the listing skipped the store's SkippedNames, once.
func (it *deviceIter) publish() {
	if it.published {
		return
	}
	it.published = true
	it.s.skippedMu.Lock()
	it.s.skippedNames = it.skipped
	it.s.skippedMu.Unlock()
}

type deviceFrame struct {
	steps []deviceStep
	i     int
}

type deviceStep struct {
	key     string
	obj     device.Object
	rel     string
	descend bool
}

// push lists the folder p (a device path) and makes it the one being returned. A base folder that
// does not exist lists as empty when the store may create it.
func (it *deviceIter) push(ctx context.Context, p string) error {
	s := it.s
	objs, err := s.dev.List(ctx, s.storage, p)
	if err != nil {
		if p == s.base && errors.Is(err, device.ErrNotFound) && s.baseMissing(ctx) {
			if !s.opts.CreateBase {
				return fmt.Errorf("device folder %s does not exist (insert the card, or check the "+
					"partnership's device path): %w", s.describeBase(), repl.ErrNotFound)
			}
			return nil
		}
		return fmt.Errorf("list %s: %w", s.describeBase(), providers.MapDeviceError(err))
	}
	fr := deviceFrame{steps: make([]deviceStep, 0, len(objs)+len(objs)/4)}
	for _, o := range objs {
		rel, ok := s.rel(o.Path)
		if !ok {
			continue
		}
		if err := device.CheckName(o.Name); err != nil || base(rel) != o.Name {
			s.skipped.Add(1)
			s.logf("files: skipping %q on the device: %v", device.SafeName(o.Name), err)
			why := "the name cannot be a file name on this computer"
			if err != nil {
				why = err.Error()
			}
			it.skipped = append(it.skipped, providers.SkippedName{Path: device.SafeName(o.Name), Reason: why})
			continue
		}
		if s.ig.IgnoredName(parentOf(rel), o.Name, o.Dir) {
			continue
		}
		fr.steps = append(fr.steps, deviceStep{key: o.Name, obj: o, rel: rel})
		if o.Dir {
			fr.steps = append(fr.steps, deviceStep{key: o.Name + "/", obj: o, descend: true})
		}
	}
	slices.SortFunc(fr.steps, func(a, b deviceStep) int { return strings.Compare(a.key, b.key) })
	it.stack = append(it.stack, fr)
	return nil
}

func (it *deviceIter) Next(ctx context.Context) (repl.Entry, error) {
	for len(it.stack) > 0 {
		fr := &it.stack[len(it.stack)-1]
		if fr.i >= len(fr.steps) {
			it.stack = it.stack[:len(it.stack)-1]
			continue
		}
		st := fr.steps[fr.i]
		fr.steps[fr.i] = deviceStep{}
		fr.i++
		if st.descend {
			if err := ctx.Err(); err != nil {
				return repl.Entry{}, err
			}
			if err := it.push(ctx, st.obj.Path); err != nil {
				it.publish()
				return repl.Entry{}, err
			}
			continue
		}
		it.n++
		if it.n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return repl.Entry{}, err
			}
		}
		return entryOfObject(st.rel, st.obj), nil
	}
	it.publish()
	return repl.Entry{}, io.EOF
}

func (it *deviceIter) Close() error {
	it.publish()
	it.stack = nil
	return nil
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
		return repl.Entry{}, fmt.Errorf("stat %s on the device: %w", s.full(handle), providers.MapDeviceError(err))
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
		return nil, fmt.Errorf("open %s on the device: %w", s.full(handle), providers.MapDeviceError(err))
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
		err = fmt.Errorf("read %s on the device: %w", r.path, providers.MapDeviceError(err))
	}
	return n, err
}

func (r *devReader) Close() error { return r.rc.Close() }

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

// parentOf returns the folder part of a relative path ("" at the top).
func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// base returns the last component of a relative path.
func base(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
