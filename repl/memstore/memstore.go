// Package memstore is an in-memory repl.Store: a faithful store (expected-stamp checks, ErrChanged,
// ErrNotFound, ErrExists, ErrNotEmpty, folders, modification times kept, change notifications)
// whose whole state lives in one Go value. Tests and benchmarks of the engine use it as a replica,
// and it is the reference the conformance suite (repl/repltest) is checked against.
//
// Besides the repl.Store methods, a Store has hooks that change it "behind the engine's back", the
// way a user or another program would: Put, Mkdir, Remove, Rename, Touch. They notify watchers
// like Write and Delete do. SetFault injects failures (a device unplugged mid-file, a full disk)
// into any operation, and Shutdown makes the store go away. RewriteOnRead makes a user save a
// file while the engine is reading it.
//
// A Store implements repl.Store, repl.Stater, repl.Notifier, repl.Hasher and repl.Atomicity;
// UnitStore adds repl.UnitStore. Bare hides every optional ability, to test the engine's
// fallbacks.
//
// All methods are safe for concurrent use.
package memstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

// Options configure a Store. The zero value is a writable, atomic store that keeps nanosecond
// modification times and reports no hashes in its entries.
type Options struct {
	// TimeGranularity truncates the modification times the store keeps (MTP keeps seconds).
	// Zero keeps them as given.
	TimeGranularity time.Duration
	// ReadOnly makes Write and Delete fail with repl.ErrReadOnly (a camera's card, say). The
	// hooks still change the store.
	ReadOnly bool
	// Hashes puts the content hash in every Entry (a store that knows hashes without reading).
	Hashes bool
	// NonAtomic makes Write non-atomic, like MTP without rename: a write that fails half-way
	// leaves the part written so far visible, and WritesAtomic reports false.
	NonAtomic bool
	// NaturalKey computes an item's natural key from its name and content; nil uses the name.
	NaturalKey func(name string, data []byte) string
	// Replicated filters which items take part in replication; nil replicates all of them.
	Replicated func(e repl.Entry) bool
	// Now gives the time of items written or put without a modification time; nil is time.Now.
	Now func() time.Time
	// Sorted makes Enumerate report items in handle order, like a folder walk (otherwise the
	// order is random).
	Sorted bool
	// NoTimes makes a store that keeps no modification times at all (some devices and plugins):
	// every Entry.ModTime is zero, whatever was written, put or touched.
	NoTimes bool
	// NoRename makes a store that cannot rename or move (an MTP device without MoveObject): a
	// Write that gives an item a new name copies it under the new name (a file with the
	// request's content, a folder with everything in it) and then removes the old name, two
	// steps like the device's copy and delete. The removal is an OpDelete of the old handle, so
	// a fault injected there leaves both names, as a session killed between the two steps does.
	// The Rename hook (a user's rename on the device itself) stays one step.
	NoRename bool
	// WriteChunk is how many bytes Write takes in at a time, each step an OpWriteData (so a
	// fault can stop a write part-way, and a NonAtomic store then keeps a partial item); 0 means
	// 32 kB. Tests with small contents set a few bytes.
	WriteChunk int
	// ChangeTimes puts a change time in every file's Entry, as a computer's file system reports
	// its inode change time: it moves at every write, touch and rename, and no writer sets it.
	ChangeTimes bool
}

// Op names an operation, for fault injection.
type Op string

// Operations a fault can be injected into.
const (
	OpEnumerate Op = "enumerate" // Enumerate
	OpNext      Op = "next"      // each Iterator.Next
	OpStat      Op = "stat"      // Stat
	OpOpen      Op = "open"      // Open
	OpRead      Op = "read"      // each Read of an opened item
	OpWrite     Op = "write"     // the start of a Write
	OpWriteData Op = "write-data"
	OpDelete    Op = "delete" // Delete
)

// Fault decides whether an operation fails: a non-nil error is returned (wrapped) by it.
type Fault func(op Op, handle string) error

type item struct {
	kind repl.Kind
	data []byte // never changed in place: a write installs a new slice
	mod  time.Time
	hash string // content hash, computed on demand
	// change is the store's change counter when the item was last written, touched or moved
	// (Options.ChangeTimes).
	change int64
}

// Store is an in-memory repl.Store. Its handles are the items' names.
type Store struct {
	opts Options

	mu    sync.Mutex
	items map[string]*item
	fault Fault
	gone  error // non-nil once Shutdown was called
	ops   map[Op]int
	// rewrites are the saves RewriteOnRead armed, by handle, for the next Open.
	rewrites map[string]*Rewrite

	changes int64 // the change counter (Options.ChangeTimes)

	watchMu  sync.Mutex // serialises delivery, so watchers see changes in order
	watchers map[int]*watcher
	nextW    int
}

type watcher struct {
	notify func(repl.Notification)
	done   chan struct{}
}

var (
	_ repl.Store     = (*Store)(nil)
	_ repl.Stater    = (*Store)(nil)
	_ repl.Notifier  = (*Store)(nil)
	_ repl.Hasher    = (*Store)(nil)
	_ repl.Atomicity = (*Store)(nil)
	_ repl.Clock     = (*Store)(nil)
)

// New returns an empty store.
func New(opts Options) *Store {
	return &Store{opts: opts, items: map[string]*item{}, watchers: map[int]*watcher{}, ops: map[Op]int{}}
}

// Options returns the options the store was made with.
func (s *Store) Options() Options { return s.opts }

// Bare returns s with only the repl.Store methods: no Stater, Notifier, Hasher, Atomicity or
// UnitStore, whatever s implements. Tests use it to exercise the engine's fallbacks.
func Bare(s repl.Store) repl.Store {
	return struct{ repl.Store }{s}
}

func (s *Store) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

func (s *Store) truncate(t time.Time) time.Time {
	if s.opts.NoTimes {
		return time.Time{}
	}
	if t.IsZero() {
		t = s.now()
	}
	if g := s.opts.TimeGranularity; g > 0 {
		return t.Truncate(g)
	}
	return t
}

// SetFault installs f (nil removes it). It is consulted before every operation.
func (s *Store) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// FailAfter makes the store fail every operation in ops (all operations when ops is empty) with err
// once n of them have succeeded. FailAfter(-1, nil) clears the fault.
func (s *Store) FailAfter(n int, err error, ops ...Op) {
	if n < 0 {
		s.SetFault(nil)
		return
	}
	var (
		mu    sync.Mutex
		count int
	)
	s.SetFault(func(op Op, _ string) error {
		if len(ops) > 0 && !containsOp(ops, op) {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if count >= n {
			return err
		}
		count++
		return nil
	})
}

func containsOp(ops []Op, op Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// Count returns how many times op was attempted.
func (s *Store) Count(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[op]
}

// check counts op and returns the store's shutdown error or the injected fault. The fault runs
// without the store's lock, so it may change the store (a user editing an item just as the
// engine writes it).
func (s *Store) check(op Op, handle string) error {
	s.mu.Lock()
	s.ops[op]++
	gone, fault := s.gone, s.fault
	s.mu.Unlock()
	if gone != nil {
		return fmt.Errorf("%s %q: %w", op, handle, gone)
	}
	if fault != nil {
		if err := fault(op, handle); err != nil {
			return fmt.Errorf("%s %q: %w", op, handle, err)
		}
	}
	return nil
}

// install puts it under name as a new change of the item (a copy: items are never changed in
// place once installed).
func (s *Store) install(name string, it *item) {
	cp := *it
	s.changes++
	cp.change = s.changes
	s.items[name] = &cp
}

func (s *Store) entryLocked(name string, it *item) repl.Entry {
	e := repl.Entry{Handle: name, Kind: it.kind, ModTime: it.mod}
	if s.opts.ChangeTimes && it.kind == repl.KindFile {
		e.Change = it.change
	}
	if s.opts.NoTimes {
		e.ModTime = time.Time{}
	}
	if it.kind == repl.KindFile {
		e.Size = int64(len(it.data))
		if s.opts.Hashes {
			e.Hash = it.contentHash()
		}
	}
	return e
}

func (it *item) contentHash() string {
	if it.hash == "" && it.kind == repl.KindFile {
		sum := sha256.Sum256(it.data)
		it.hash = hex.EncodeToString(sum[:])
	}
	return it.hash
}

// Enumerate lists the items as they are now, in no particular order.
func (s *Store) Enumerate(ctx context.Context) (repl.Iterator, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("enumerate: %w", err)
	}
	if err := s.check(OpEnumerate, ""); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	entries := make([]repl.Entry, 0, len(s.items))
	for name, it := range s.items {
		entries = append(entries, s.entryLocked(name, it))
	}
	if s.opts.Sorted {
		slices.SortFunc(entries, func(a, b repl.Entry) int { return strings.Compare(a.Handle, b.Handle) })
	}
	return &iterator{s: s, entries: entries}, nil
}

type iterator struct {
	s       *Store
	entries []repl.Entry
	i       int
}

func (it *iterator) Next(ctx context.Context) (repl.Entry, error) {
	if it.i >= len(it.entries) {
		return repl.Entry{}, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, fmt.Errorf("enumerate: %w", err)
	}
	if err := it.s.check(OpNext, it.entries[it.i].Handle); err != nil {
		return repl.Entry{}, err
	}
	e := it.entries[it.i]
	it.i++
	return e, nil
}

func (it *iterator) Close() error {
	it.i = len(it.entries)
	return nil
}

// Stat returns the item at handle.
func (s *Store) Stat(ctx context.Context, handle string) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, fmt.Errorf("stat %q: %w", handle, err)
	}
	if err := s.check(OpStat, handle); err != nil {
		return repl.Entry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[handle]
	if !ok {
		return repl.Entry{}, fmt.Errorf("stat %q: %w", handle, repl.ErrNotFound)
	}
	return s.entryLocked(handle, it), nil
}

// IsItemChanged compares e with the recorded stamp (repl.StampChanged).
func (s *Store) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated applies Options.Replicated.
func (s *Store) IsItemReplicated(e repl.Entry) bool {
	return s.opts.Replicated == nil || s.opts.Replicated(e)
}

// NaturalKey is the item's name, or Options.NaturalKey.
func (s *Store) NaturalKey(ctx context.Context, e repl.Entry) (string, error) {
	if s.opts.NaturalKey == nil {
		return e.Handle, nil
	}
	s.mu.Lock()
	it, ok := s.items[e.Handle]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("natural key of %q: %w", e.Handle, repl.ErrNotFound)
	}
	return s.opts.NaturalKey(e.Handle, it.data), nil
}

// Hash returns the SHA-256 of the item's content, in hex ("" for a folder).
func (s *Store) Hash(ctx context.Context, handle string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("hash %q: %w", handle, err)
	}
	if err := s.check(OpStat, handle); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[handle]
	if !ok {
		return "", fmt.Errorf("hash %q: %w", handle, repl.ErrNotFound)
	}
	return it.contentHash(), nil
}

// TimeGranularity reports Options.TimeGranularity (repl.Clock).
func (s *Store) TimeGranularity() time.Duration { return s.opts.TimeGranularity }

// Now is the time on the store's clock: Options.Now, or the computer's (repl.Clock).
func (s *Store) Now() time.Time { return s.now() }

// WritesAtomic reports whether Options.NonAtomic and Options.NoRename are unset: a store that
// moves by copying and deleting leaves both names when it stops in between, as the files
// provider's device store says of a device that cannot rename.
func (s *Store) WritesAtomic() bool { return !s.opts.NonAtomic && !s.opts.NoRename }

// Open returns the item's content.
func (s *Store) Open(ctx context.Context, handle string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %q: %w", handle, err)
	}
	if err := s.check(OpOpen, handle); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[handle]
	if !ok {
		return nil, fmt.Errorf("open %q: %w", handle, repl.ErrNotFound)
	}
	if it.kind == repl.KindFolder {
		return nil, fmt.Errorf("open %q: is a folder", handle)
	}
	rw := s.rewrites[handle]
	delete(s.rewrites, handle)
	return &reader{s: s, handle: handle, r: bytes.NewReader(it.data), rw: rw}, nil
}

type reader struct {
	s      *Store
	handle string
	r      *bytes.Reader
	rw     *Rewrite // a save to make while this stream is read
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.s.check(OpRead, r.handle); err != nil {
		return 0, err
	}
	if rw := r.rw; rw != nil {
		pos := r.r.Size() - int64(r.r.Len())
		if pos >= int64(rw.After) || r.r.Len() == 0 {
			r.rw = nil
			if data := r.s.save(r.handle, rw); data != nil && rw.InPlace {
				r.r = bytes.NewReader(data)
				r.r.Seek(pos, io.SeekStart)
			}
		} else if rest := int64(rw.After) - pos; int64(len(p)) > rest {
			p = p[:rest]
		}
	}
	return r.r.Read(p)
}

func (r *reader) Close() error { return nil }

// Write creates, updates, renames or moves an item (repl.Store.Write). Missing parent folders are
// created. A folder moves with everything it holds.
func (s *Store) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	target := req.Name
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, fmt.Errorf("write %q: %w", target, err)
	}
	if s.opts.ReadOnly {
		return repl.Entry{}, fmt.Errorf("write %q: %w", target, repl.ErrReadOnly)
	}
	if err := repl.CheckName(target); err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	if err := s.check(OpWrite, target); err != nil {
		return repl.Entry{}, err
	}
	s.mu.Lock()
	err := s.precheckLocked(req)
	s.mu.Unlock()
	if err != nil {
		return repl.Entry{}, err
	}

	var data []byte
	if req.Kind == repl.KindFile {
		var rerr error
		data, rerr = s.readData(ctx, req)
		if rerr != nil {
			if s.opts.NonAtomic && len(data) > 0 {
				var notes []repl.Notification
				s.mu.Lock()
				if s.precheckLocked(req) == nil {
					if s.copiesMove(req) {
						notes = s.copyLocked(req, data)
					} else {
						notes = s.installLocked(req, data)
					}
				}
				s.mu.Unlock()
				s.deliver(notes)
			}
			return repl.Entry{}, fmt.Errorf("write %q: %w", target, rerr)
		}
	}

	s.mu.Lock()
	if err := s.precheckLocked(req); err != nil {
		s.mu.Unlock()
		return repl.Entry{}, err
	}
	if s.copiesMove(req) {
		// Copy, then delete: killed in between, the store holds both names.
		notes := s.copyLocked(req, data)
		e := s.entryLocked(target, s.items[target])
		s.mu.Unlock()
		s.deliver(notes)
		if err := s.check(OpDelete, req.Handle); err != nil {
			return repl.Entry{}, fmt.Errorf("move %q to %q: remove the old name: %w", req.Handle, target, err)
		}
		s.mu.Lock()
		notes = s.removeLocked(req.Handle)
		s.mu.Unlock()
		s.deliver(notes)
		return e, nil
	}
	notes := s.installLocked(req, data)
	e := s.entryLocked(target, s.items[target])
	s.mu.Unlock()
	s.deliver(notes)
	return e, nil
}

// copiesMove tells whether req moves an item in a store that cannot rename (Options.NoRename).
func (s *Store) copiesMove(req repl.WriteRequest) bool {
	return s.opts.NoRename && req.Handle != "" && req.Handle != req.Name
}

// copyLocked is the first step of a move in a store that cannot rename: req's item is written
// under its new name (a folder with copies of everything in it); the old name stays.
func (s *Store) copyLocked(req repl.WriteRequest, data []byte) []repl.Notification {
	notes := s.mkdirAllLocked(parentOf(req.Name))
	prefix := req.Handle + "/"
	var under []string
	for name := range s.items {
		if strings.HasPrefix(name, prefix) {
			under = append(under, name)
		}
	}
	sort.Strings(under)
	it := &item{kind: req.Kind, mod: s.truncate(req.ModTime)}
	if req.Kind == repl.KindFile {
		it.data = data
	}
	s.install(req.Name, it)
	notes = append(notes, repl.Notification{Kind: repl.ItemCreated, Handle: req.Name})
	for _, name := range under {
		cp := *s.items[name]
		nn := req.Name + name[len(req.Handle):]
		s.install(nn, &cp)
		notes = append(notes, repl.Notification{Kind: repl.ItemCreated, Handle: nn})
	}
	return notes
}

// removeLocked removes name and everything under it.
func (s *Store) removeLocked(name string) []repl.Notification {
	var gone []string
	for n := range s.items {
		if n == name || strings.HasPrefix(n, name+"/") {
			gone = append(gone, n)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(gone)))
	notes := make([]repl.Notification, 0, len(gone))
	for _, n := range gone {
		delete(s.items, n)
		notes = append(notes, repl.Notification{Kind: repl.ItemDeleted, Handle: n})
	}
	return notes
}

// readData reads the request's content in chunks (Options.WriteChunk, 32 kB by default),
// honouring ctx, faults and the announced size.
func (s *Store) readData(ctx context.Context, req repl.WriteRequest) ([]byte, error) {
	if req.Data == nil {
		if req.Size > 0 {
			return nil, fmt.Errorf("no data for %d bytes", req.Size)
		}
		return []byte{}, nil
	}
	chunk := 32 << 10
	if s.opts.WriteChunk > 0 {
		chunk = s.opts.WriteChunk
	}
	capacity := chunk
	if req.Size >= 0 && req.Size < 1<<30 {
		capacity = int(req.Size) + 1 // one more byte shows data running past the announced size
	}
	buf := make([]byte, 0, capacity)
	for {
		if err := ctx.Err(); err != nil {
			return buf, err
		}
		if err := s.check(OpWriteData, req.Name); err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, chunk)
		}
		n, err := req.Data.Read(buf[len(buf):min(cap(buf), len(buf)+chunk)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, err
		}
	}
	if err := ctx.Err(); err != nil {
		return buf, err
	}
	if req.Size >= 0 && int64(len(buf)) != req.Size {
		return buf, fmt.Errorf("content is %d bytes, %d were announced", len(buf), req.Size)
	}
	return buf, nil
}

// precheckLocked checks that req can be applied to the store as it is now.
func (s *Store) precheckLocked(req repl.WriteRequest) error {
	target := req.Name
	if req.Handle == "" {
		if _, ok := s.items[target]; ok {
			return fmt.Errorf("create %q: %w", target, repl.ErrExists)
		}
	} else {
		cur, ok := s.items[req.Handle]
		if !ok {
			return fmt.Errorf("update %q: %w", req.Handle, repl.ErrNotFound)
		}
		if req.Expected != nil && repl.StampChanged(*req.Expected, s.entryLocked(req.Handle, cur)) {
			return fmt.Errorf("update %q: %w", req.Handle, repl.ErrChanged)
		}
		if target != req.Handle {
			if _, ok := s.items[target]; ok {
				return fmt.Errorf("move %q to %q: %w", req.Handle, target, repl.ErrExists)
			}
			if strings.HasPrefix(target, req.Handle+"/") {
				return fmt.Errorf("move %q into itself (%q): %w", req.Handle, target, repl.ErrInvalidName)
			}
		}
		if cur.kind == repl.KindFolder && req.Kind == repl.KindFile && s.hasChildrenLocked(req.Handle) {
			return fmt.Errorf("replace folder %q with a file: %w", req.Handle, repl.ErrNotEmpty)
		}
	}
	// Every parent must be a folder or missing (then it is created).
	for p := parentOf(target); p != ""; p = parentOf(p) {
		if it, ok := s.items[p]; ok {
			if it.kind != repl.KindFolder {
				return fmt.Errorf("create %q: %q is a file: %w", target, p, repl.ErrExists)
			}
			break
		}
	}
	return nil
}

// installLocked applies a prechecked request and returns the notifications to deliver.
func (s *Store) installLocked(req repl.WriteRequest, data []byte) []repl.Notification {
	var notes []repl.Notification
	target := req.Name
	notes = append(notes, s.mkdirAllLocked(parentOf(target))...)
	if req.Handle != "" && req.Handle != target {
		notes = append(notes, s.moveLocked(req.Handle, target)...)
	}
	kind := repl.ItemModified
	if _, ok := s.items[target]; !ok {
		kind = repl.ItemCreated
	}
	// A partial item keeps the modification time the write announced, as an MTP object does
	// (its dates travel in the object info sent before the data).
	it := &item{kind: req.Kind, mod: s.truncate(req.ModTime)}
	if req.Kind == repl.KindFile {
		it.data = data
	}
	s.install(target, it)
	return append(notes, repl.Notification{Kind: kind, Handle: target})
}

func (s *Store) mkdirAllLocked(dir string) []repl.Notification {
	if dir == "" {
		return nil
	}
	if _, ok := s.items[dir]; ok {
		return nil
	}
	notes := s.mkdirAllLocked(parentOf(dir))
	s.install(dir, &item{kind: repl.KindFolder, mod: s.truncate(s.now())})
	return append(notes, repl.Notification{Kind: repl.ItemCreated, Handle: dir})
}

// moveLocked renames from to to, with everything under from.
func (s *Store) moveLocked(from, to string) []repl.Notification {
	var notes []repl.Notification
	prefix := from + "/"
	var moved []string
	for name := range s.items {
		if name == from || strings.HasPrefix(name, prefix) {
			moved = append(moved, name)
		}
	}
	sort.Strings(moved)
	for _, name := range moved {
		it := s.items[name]
		delete(s.items, name)
		nn := to + name[len(from):]
		s.install(nn, it)
		notes = append(notes,
			repl.Notification{Kind: repl.ItemDeleted, Handle: name},
			repl.Notification{Kind: repl.ItemCreated, Handle: nn})
	}
	return notes
}

func (s *Store) hasChildrenLocked(dir string) bool {
	prefix := dir + "/"
	for name := range s.items {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// Delete removes the item at handle if it still matches expected.
func (s *Store) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %q: %w", handle, err)
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("delete %q: %w", handle, repl.ErrReadOnly)
	}
	if err := s.check(OpDelete, handle); err != nil {
		return err
	}
	s.mu.Lock()
	it, ok := s.items[handle]
	switch {
	case !ok:
		s.mu.Unlock()
		return fmt.Errorf("delete %q: %w", handle, repl.ErrNotFound)
	case repl.StampChanged(expected, s.entryLocked(handle, it)):
		s.mu.Unlock()
		return fmt.Errorf("delete %q: %w", handle, repl.ErrChanged)
	case it.kind == repl.KindFolder && s.hasChildrenLocked(handle):
		s.mu.Unlock()
		return fmt.Errorf("delete %q: %w", handle, repl.ErrNotEmpty)
	}
	delete(s.items, handle)
	s.mu.Unlock()
	s.deliver([]repl.Notification{{Kind: repl.ItemDeleted, Handle: handle}})
	return nil
}

// Watch reports every change (including the engine's own writes) until ctx is done or Shutdown is
// called; then it returns nil.
func (s *Store) Watch(ctx context.Context, notify func(repl.Notification)) error {
	s.mu.Lock()
	if s.gone != nil {
		s.mu.Unlock()
		return fmt.Errorf("watch: %w", s.gone)
	}
	s.mu.Unlock()
	w := &watcher{notify: notify, done: make(chan struct{})}
	s.watchMu.Lock()
	id := s.nextW
	s.nextW++
	s.watchers[id] = w
	s.watchMu.Unlock()
	select {
	case <-ctx.Done():
	case <-w.done:
	}
	s.watchMu.Lock()
	delete(s.watchers, id)
	s.watchMu.Unlock()
	return nil
}

func (s *Store) deliver(notes []repl.Notification) {
	if len(notes) == 0 {
		return
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for _, n := range notes {
		for _, w := range s.watchers {
			w.notify(n)
		}
	}
}

// ---- hooks: changes made behind the engine's back ----

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}
