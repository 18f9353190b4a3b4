package photos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/providers/internal/devwatch"
	"github.com/cradle-sync/cradle/repl"
)

// SourceOptions tune a Source.
type SourceOptions struct {
	// Roots are the folders scanned on the storage ("DCIM", "Pictures/Screenshots"); a missing
	// root is simply empty (a phone without screenshots yet).
	Roots []string
	// StateDir holds the hash cache and the set of pictures offered for import. Required.
	StateDir string
	// KeepGone keeps reporting, with its last stamp, a picture offered once and gone from the
	// device since, so that freeing space on the device never deletes anything on the computer.
	// The provider sets it; without it a picture gone from the device is gone from the store.
	KeepGone bool
	// Logf receives warnings; default log.Printf.
	Logf func(format string, args ...any)
}

// Source is a device's camera roll as a read-only repl.Store (and repl.Stater, repl.Hasher,
// repl.Notifier): every picture, RAW file and video under the roots, with handles that are their
// paths on the storage ("DCIM/Camera/IMG_20240314_150926.jpg").
//
// Every item carries its content hash (SHA-256, read once and cached by path, size and time), which
// is its NaturalKey. A picture whose content was already offered under another name (a copy in
// another folder, the same shot in DCIM and Screenshots, a picture that came back after being
// deleted) is left out, so each picture is imported once. With KeepGone, a picture offered once
// stays offered, with its last stamp, after it is deleted from the device (by the user freeing
// space, or by the "delete from device after import" option): the engine never sees the
// deletion, so an import never deletes anything on the computer.
//
// Concurrency: safe for use from several goroutines.
type Source struct {
	dev     device.Device
	storage device.StorageID
	roots   []string
	keep    bool
	logf    func(string, ...any)
	hashes  *hashCache
	offered *fsstore.SeenSet // handles offered for import, with their stamps (and hashes)

	mu      sync.Mutex
	byHash  map[string]string        // hash -> offered handle
	present map[string]device.Object // handle -> object at the last enumeration or Stat
}

var (
	_ repl.Store    = (*Source)(nil)
	_ repl.Stater   = (*Source)(nil)
	_ repl.Hasher   = (*Source)(nil)
	_ repl.Notifier = (*Source)(nil)
)

// NewSource opens the camera roll of storage on dev.
func NewSource(dev device.Device, storage device.StorageID, opts SourceOptions) (*Source, error) {
	if opts.StateDir == "" {
		return nil, errors.New("photos: the device side needs a state folder")
	}
	var roots []string
	for _, r := range opts.Roots {
		c, err := device.CheckPath(r)
		if err != nil {
			return nil, fmt.Errorf("photos: folder %q on the device: %w", r, errors.Join(err, repl.ErrInvalidName))
		}
		roots = append(roots, c)
	}
	if len(roots) == 0 {
		roots = []string{"DCIM"}
	}
	logf := opts.Logf
	if logf == nil {
		logf = log.Printf
	}
	hc, err := openHashCache(filepath.Join(opts.StateDir, "device-hashes"))
	if err != nil {
		return nil, fmt.Errorf("photos: %w", err)
	}
	offered, err := fsstore.OpenSeenSet(filepath.Join(opts.StateDir, "device-offered"))
	if err != nil {
		return nil, fmt.Errorf("photos: %w", err)
	}
	s := &Source{dev: dev, storage: storage, roots: roots, keep: opts.KeepGone, logf: logf, hashes: hc, offered: offered,
		byHash: map[string]string{}, present: map[string]device.Object{}}
	for _, h := range offered.Handles() {
		if st, ok := offered.Get(h); ok && st.Hash != "" {
			s.byHash[st.Hash] = h
		}
	}
	return s, nil
}

// Close releases the state files.
func (s *Source) Close() error {
	err := s.hashes.close()
	if cerr := s.offered.Close(); err == nil {
		err = cerr
	}
	return err
}

// underRoots tells whether a storage path lies below one of the roots.
func (s *Source) underRoots(p string) bool {
	for _, r := range s.roots {
		if r == "" || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// hashOf returns the content hash of an object, from the cache or by reading it.
func (s *Source) hashOf(ctx context.Context, o device.Object) (string, error) {
	if h, ok := s.hashes.get(o.Path, o.Size, o.ModTime); ok {
		return h, nil
	}
	rc, err := s.dev.Open(ctx, s.storage, o.Path, 0)
	if err != nil {
		return "", fmt.Errorf("read %s on the device: %w", o.Path, providers.MapDeviceError(err))
	}
	defer rc.Close()
	h, n, err := hashReader(rc)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("read %s on the device: %w", o.Path, providers.MapDeviceError(err))
	}
	if n != o.Size {
		return "", fmt.Errorf("read %s on the device: %d bytes, %d expected (it changed while it was read): %w",
			o.Path, n, o.Size, repl.ErrChanged)
	}
	if err := s.hashes.put(o.Path, o.Size, o.ModTime, h); err != nil {
		return "", err
	}
	return h, nil
}

func objEntry(o device.Object, hash string) repl.Entry {
	return repl.Entry{Handle: o.Path, Kind: repl.KindFile, Size: o.Size, ModTime: o.ModTime, Hash: hash}
}

func stampEntry(h string, st repl.Stamp) repl.Entry {
	e := repl.Entry{Handle: h, Kind: st.Kind, Size: st.Size, Hash: st.Hash}
	if st.ModTime != 0 {
		e.ModTime = time.Unix(0, st.ModTime)
	}
	return e
}

// offer decides whether a present object is reported: it is when its handle was offered before
// (whatever it holds now), or when its content was never offered under any name. It records the
// offer. Old contents keep their place in byHash, so a picture offered once is never offered
// again under another name, even after the path it came from holds something else.
func (s *Source) offer(o device.Object, hash string) (bool, error) {
	s.mu.Lock()
	_, known := s.offered.Get(o.Path)
	_, dup := s.byHash[hash]
	if !known && dup {
		s.mu.Unlock()
		return false, nil
	}
	if !dup {
		s.byHash[hash] = o.Path
	}
	s.mu.Unlock()
	return true, s.offered.Add(o.Path, objEntry(o, hash).Stamp())
}

// Enumerate walks the roots (one device.Walk each), hashes what it has not hashed before, and
// reports the pictures as described on Source. A root that does not exist is empty.
func (s *Source) Enumerate(ctx context.Context) (repl.Iterator, error) {
	var objs []device.Object
	for _, root := range s.roots {
		err := s.dev.Walk(ctx, s.storage, root, func(o device.Object) error {
			if err := device.CheckName(o.Name); err != nil {
				s.logf("photos: skipping %q on the device: %v", device.SafeName(o.Name), err)
				if o.Dir {
					return filepath.SkipDir
				}
				return nil
			}
			if o.Dir {
				if strings.HasPrefix(o.Name, ".") {
					return filepath.SkipDir // .thumbnails, .trash and the like
				}
				return nil
			}
			if IsMedia(o.Name) {
				objs = append(objs, o)
			}
			return nil
		})
		if err != nil && !(errors.Is(err, device.ErrNotFound) && s.missing(ctx, root)) {
			return nil, fmt.Errorf("list %s on the device: %w", root, providers.MapDeviceError(err))
		}
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Path < objs[j].Path })
	var entries []repl.Entry
	present := make(map[string]device.Object, len(objs))
	hidden := 0
	for _, o := range objs {
		hash, err := s.hashOf(ctx, o)
		if err != nil {
			return nil, err
		}
		ok, err := s.offer(o, hash)
		if err != nil {
			return nil, err
		}
		if !ok {
			hidden++
			continue
		}
		present[o.Path] = o
		entries = append(entries, objEntry(o, hash))
	}
	// What was offered and is gone from the device stays, as it was.
	for _, h := range s.offered.Handles() {
		if _, ok := present[h]; ok || !s.keep {
			continue
		}
		st, _ := s.offered.Get(h)
		entries = append(entries, stampEntry(h, st))
	}
	s.mu.Lock()
	s.present = present
	s.mu.Unlock()
	if hidden > 0 {
		s.logf("photos: %d pictures on the device are copies of pictures imported already; they are not imported again", hidden)
	}
	if err := s.hashes.compact(); err != nil {
		return nil, err
	}
	if err := s.offered.Compact(); err != nil {
		return nil, err
	}
	return &listIter{entries: entries}, nil
}

func (s *Source) missing(ctx context.Context, root string) bool {
	_, err := s.dev.Stat(ctx, s.storage, root)
	return errors.Is(err, device.ErrNotFound)
}

type listIter struct {
	entries []repl.Entry
	i       int
}

func (it *listIter) Next(ctx context.Context) (repl.Entry, error) {
	if it.i >= len(it.entries) {
		return repl.Entry{}, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	e := it.entries[it.i]
	it.i++
	return e, nil
}

func (it *listIter) Close() error { it.entries, it.i = nil, 0; return nil }

// IsItemChanged compares stamps; both carry the content hash, so a picture whose time changed but
// whose content did not is not changed.
func (s *Source) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated is true for pictures, RAW files and videos.
func (s *Source) IsItemReplicated(e repl.Entry) bool {
	return e.Kind == repl.KindFile && IsMedia(e.Handle)
}

// NaturalKey is the content hash.
func (s *Source) NaturalKey(ctx context.Context, e repl.Entry) (string, error) {
	if e.Hash != "" {
		return e.Hash, nil
	}
	return s.Hash(ctx, e.Handle)
}

// Stat returns the picture at handle as Enumerate reports it (repl.Stater).
func (s *Source) Stat(ctx context.Context, handle string) (repl.Entry, error) {
	if err := checkSourceHandle(handle); err != nil {
		return repl.Entry{}, err
	}
	o, err := s.dev.Stat(ctx, s.storage, handle)
	if err != nil {
		if errors.Is(err, device.ErrNotFound) && s.keep {
			if st, ok := s.offered.Get(handle); ok {
				return stampEntry(handle, st), nil
			}
		}
		return repl.Entry{}, fmt.Errorf("stat %s on the device: %w", handle, providers.MapDeviceError(err))
	}
	if o.Dir || !IsMedia(o.Name) || !s.underRoots(o.Path) {
		return repl.Entry{}, fmt.Errorf("stat %s on the device: not a picture in the camera roll: %w", handle, repl.ErrNotFound)
	}
	hash, err := s.hashOf(ctx, o)
	if err != nil {
		return repl.Entry{}, err
	}
	ok, err := s.offer(o, hash)
	if err != nil {
		return repl.Entry{}, err
	}
	if !ok {
		return repl.Entry{}, fmt.Errorf("stat %s on the device: a copy of a picture imported already: %w", handle, repl.ErrNotFound)
	}
	s.mu.Lock()
	s.present[o.Path] = o
	s.mu.Unlock()
	return objEntry(o, hash), nil
}

func checkSourceHandle(h string) error {
	c, err := device.CheckPath(h)
	if err != nil || c != h || h == "" {
		return fmt.Errorf("handle %q: %w", h, errors.Join(err, repl.ErrInvalidName))
	}
	return nil
}

// Hash returns the content hash of the picture at handle (repl.Hasher).
func (s *Source) Hash(ctx context.Context, handle string) (string, error) {
	if err := checkSourceHandle(handle); err != nil {
		return "", err
	}
	o, err := s.dev.Stat(ctx, s.storage, handle)
	if err != nil {
		return "", fmt.Errorf("hash %s on the device: %w", handle, providers.MapDeviceError(err))
	}
	if o.Dir {
		return "", fmt.Errorf("hash %s on the device: a folder: %w", handle, repl.ErrNotFound)
	}
	return s.hashOf(ctx, o)
}

// Open streams a picture from the device; ErrNotFound for one that is only remembered.
func (s *Source) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	if err := checkSourceHandle(handle); err != nil {
		return nil, err
	}
	rc, err := s.dev.Open(ctx, s.storage, handle, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s on the device: %w", handle, providers.MapDeviceError(err))
	}
	return rc, nil
}

// Write is refused: photos are imported from the device, never written to it.
func (s *Source) Write(context.Context, repl.WriteRequest) (repl.Entry, error) {
	return repl.Entry{}, fmt.Errorf("photos are only imported from the device: %w", repl.ErrReadOnly)
}

// Delete is refused: the engine never deletes pictures on the device (see Free).
func (s *Source) Delete(context.Context, string, repl.Stamp) error {
	return fmt.Errorf("photos are only imported from the device: %w", repl.ErrReadOnly)
}

// Free deletes from the device the picture whose content hash is hash, once it has been imported
// and verified: it must still be the object seen at the last enumeration (same size and time),
// so nothing the user changed since is deleted. The picture stays offered, so its deletion never
// reaches the computer.
func (s *Source) Free(ctx context.Context, hash string) error {
	s.mu.Lock()
	h, ok := s.byHash[hash]
	o, seen := s.present[h]
	s.mu.Unlock()
	if !ok || !seen {
		return fmt.Errorf("free a picture from the device: no picture with hash %.12s was seen there: %w", hash, repl.ErrNotFound)
	}
	now, err := s.dev.Stat(ctx, s.storage, o.Path)
	if err != nil {
		return fmt.Errorf("free %s from the device: %w", o.Path, providers.MapDeviceError(err))
	}
	if now.Size != o.Size || !now.ModTime.Equal(o.ModTime) {
		return fmt.Errorf("free %s from the device: it changed since it was imported: %w", o.Path, repl.ErrChanged)
	}
	if err := s.dev.Delete(ctx, s.storage, o.Path); err != nil {
		return fmt.Errorf("free %s from the device: %w", o.Path, providers.MapDeviceError(err))
	}
	s.mu.Lock()
	delete(s.present, o.Path)
	s.mu.Unlock()
	return nil
}

// Watch turns device events under the roots into notifications, until ctx is done or the device
// goes away (a Shutdown).
func (s *Source) Watch(ctx context.Context, notify func(repl.Notification)) error {
	events, stop := device.Subscribe(s.dev)
	defer stop()
	return devwatch.Run(ctx, events, s.storage, notify, func(ev device.Event) {
		if ev.Path == "" {
			notify(repl.Notification{Kind: repl.Overflow})
			return
		}
		if s.underRoots(ev.Path) && IsMedia(ev.Path) {
			notify(repl.Notification{Kind: devwatch.Kind(ev.Kind), Handle: ev.Path})
		}
	})
}
