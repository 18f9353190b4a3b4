package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// The stores of a dry run (Forecast): a session runs as it would, on a scratch copy of the handle
// file, against stores that read from the real ones but record writes and deletes instead of
// making them. What the session wrote or deleted is kept in a view of each store in memory, so
// that the rest of the session (a name taken, a folder not empty, a later pass reading what an
// earlier one wrote) meets the store as the real session would.

// dryLog collects what a dry run's stores were asked to do, in order.
type dryLog struct {
	actions   []PlannedAction
	conflicts map[Version]bool
	// tmp holds content the dry run had to keep (a conflict copy's content spooled by the
	// session), removed by close.
	tmp string
}

// close removes what the dry run kept.
func (l *dryLog) close() {
	if l.tmp != "" {
		os.RemoveAll(l.tmp)
	}
}

// keep copies r to a temporary file and returns its path.
func (l *dryLog) keep(r io.Reader) (string, error) {
	if l.tmp == "" {
		dir, err := os.MkdirTemp("", "cradle-forecast-")
		if err != nil {
			return "", err
		}
		l.tmp = dir
	}
	f, err := os.CreateTemp(l.tmp, "content-")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// conflict records a conflict the session left to the user (once per item).
func (l *dryLog) conflict(from, to string, c *Conflict) {
	if l.conflicts == nil {
		l.conflicts = map[Version]bool{}
	}
	if l.conflicts[c.gid] {
		return
	}
	l.conflicts[c.gid] = true
	pa := PlannedAction{From: from, To: to, Action: ActConflict, Name: c.Name}
	if s, ok := c.Side(from); ok {
		pa.Kind, pa.Size = s.Kind, s.Size
	}
	l.actions = append(l.actions, pa)
}

// dryStore is one side of a dry run.
type dryStore struct {
	inner       Store
	name, other string // this side's name and the other side's
	log         *dryLog
	unitStore   bool

	// items is the store as the dry run left it, filled by the first enumeration (full); before
	// it, handles not met yet are looked up in the real store.
	items map[string]Entry
	full  bool
	// gone holds handles the dry run deleted or moved away; written those it wrote (their
	// content is not in the real store), with the units written (unit stores), and content how
	// to read what it wrote there: the source's item, or a copy kept in a temporary file.
	gone    map[string]bool
	written map[string]Units
	content map[string]func(context.Context) (io.ReadCloser, error)
	// key is the real store's NameKey (nil: every handle is its own); byKey maps the keys of
	// items known here to their handles, built at the first write after a full enumeration.
	key   func(string) string
	byKey map[string]string
}

// newDryStore wraps st for a dry run, with the optional abilities of st the engine asks for.
func newDryStore(st Store, name, other string, log *dryLog) Store {
	d := &dryStore{inner: st, name: name, other: other, log: log, items: map[string]Entry{},
		gone: map[string]bool{}, written: map[string]Units{}, content: map[string]func(context.Context) (io.ReadCloser, error){}}
	_, stater := st.(Stater)
	_, d.unitStore = st.(UnitStore)
	if nk, ok := st.(NameKeyer); ok {
		d.key = nk.NameKey
	}
	switch {
	case stater && d.unitStore:
		return dryStaterUnits{d}
	case stater:
		return dryStater{d}
	case d.unitStore:
		return dryUnits{d}
	}
	return d
}

type (
	dryStater      struct{ *dryStore }
	dryUnits       struct{ *dryStore }
	dryStaterUnits struct{ *dryStore }
)

func (d dryStater) Stat(ctx context.Context, h string) (Entry, error)      { return d.stat(ctx, h) }
func (d dryStaterUnits) Stat(ctx context.Context, h string) (Entry, error) { return d.stat(ctx, h) }
func (d dryUnits) ReadUnits(ctx context.Context, h string) (Units, error)  { return d.readUnits(ctx, h) }
func (d dryStaterUnits) ReadUnits(ctx context.Context, h string) (Units, error) {
	return d.readUnits(ctx, h)
}
func (d dryUnits) WriteUnits(ctx context.Context, req WriteRequest, u Units) (Entry, error) {
	return d.write(ctx, req, u)
}
func (d dryStaterUnits) WriteUnits(ctx context.Context, req WriteRequest, u Units) (Entry, error) {
	return d.write(ctx, req, u)
}

var (
	_ Stater       = dryStater{}
	_ UnitStore    = dryUnits{}
	_ UnitStore    = dryStaterUnits{}
	_ Stater       = dryStaterUnits{}
	_ CauseDeleter = (*dryStore)(nil)
	_ Atomicity    = (*dryStore)(nil)
	_ Clock        = (*dryStore)(nil)
)

// lookup returns the item at h as the dry run left it.
func (d *dryStore) lookup(ctx context.Context, h string) (Entry, bool, error) {
	if d.gone[h] {
		return Entry{}, false, nil
	}
	if e, ok := d.items[h]; ok {
		return e, true, nil
	}
	if d.full {
		return Entry{}, false, nil
	}
	st, ok := d.inner.(Stater)
	if !ok {
		return Entry{}, false, nil
	}
	e, err := st.Stat(ctx, h)
	switch {
	case err == nil:
		return e, true, nil
	case isNotFound(err):
		return Entry{}, false, nil
	}
	return Entry{}, false, err
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, ErrNotFound) }

// Enumerate enumerates the real store once (the session's detection) and keeps what it found;
// later enumerations list the store as the dry run left it.
func (d *dryStore) Enumerate(ctx context.Context) (Iterator, error) {
	if !d.full {
		it, err := d.inner.Enumerate(ctx)
		if err != nil {
			return nil, err
		}
		defer it.Close()
		for {
			e, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			if _, ok := d.written[e.Handle]; ok || d.gone[e.Handle] {
				continue
			}
			d.items[e.Handle] = e
		}
		d.full = true
	}
	keys := slices.Sorted(maps.Keys(d.items))
	out := make([]Entry, len(keys))
	for i, k := range keys {
		out[i] = d.items[k]
	}
	return &entryIter{entries: out}, nil
}

// entryIter iterates over entries collected up front.
type entryIter struct {
	entries []Entry
	i       int
}

func (it *entryIter) Next(ctx context.Context) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	if it.i >= len(it.entries) {
		return Entry{}, io.EOF
	}
	it.i++
	return it.entries[it.i-1], nil
}

func (it *entryIter) Close() error { return nil }

func (d *dryStore) stat(ctx context.Context, h string) (Entry, error) {
	e, ok, err := d.lookup(ctx, h)
	if err != nil {
		return Entry{}, err
	}
	if !ok {
		return Entry{}, fmt.Errorf("dry run: %q: %w", h, ErrNotFound)
	}
	return e, nil
}

func (d *dryStore) IsItemChanged(ctx context.Context, e Entry, recorded Stamp) (bool, error) {
	if _, ok := d.written[e.Handle]; ok {
		return StampChanged(recorded, e), nil
	}
	return d.inner.IsItemChanged(ctx, e, recorded)
}

func (d *dryStore) IsItemReplicated(e Entry) bool { return d.inner.IsItemReplicated(e) }

func (d *dryStore) NaturalKey(ctx context.Context, e Entry) (string, error) {
	k, err := d.inner.NaturalKey(ctx, e)
	if _, ok := d.written[e.Handle]; ok && err != nil {
		return e.Handle, nil // not in the real store: its name will do
	}
	return k, err
}

// Open reads the real item, from its first Read on (a write of the dry run never reads it). An
// item the dry run wrote reads as what was written (the source's item, read when it is read);
// one written from change units reads as zeros of its size.
func (d *dryStore) Open(ctx context.Context, h string) (io.ReadCloser, error) {
	if open, ok := d.content[h]; ok {
		return &lazyReader{open: func() (io.ReadCloser, error) { return open(ctx) }}, nil
	}
	if _, ok := d.written[h]; ok {
		return io.NopCloser(io.LimitReader(zeros{}, d.items[h].Size)), nil
	}
	if d.gone[h] {
		return nil, fmt.Errorf("dry run: %q: %w", h, ErrNotFound)
	}
	return &lazyReader{open: func() (io.ReadCloser, error) { return d.inner.Open(ctx, h) }}, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// lazyReader opens its source at the first Read.
type lazyReader struct {
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser
}

func (r *lazyReader) Read(p []byte) (int, error) {
	if r.rc == nil {
		rc, err := r.open()
		if err != nil {
			return 0, err
		}
		r.rc = rc
	}
	return r.rc.Read(p)
}

func (r *lazyReader) Close() error {
	if r.rc == nil {
		return nil
	}
	return r.rc.Close()
}

func (d *dryStore) readUnits(ctx context.Context, h string) (Units, error) {
	if u, ok := d.written[h]; ok {
		if u == nil {
			u = Units{}
		}
		return u, nil
	}
	return d.inner.(UnitStore).ReadUnits(ctx, h)
}

func (d *dryStore) Write(ctx context.Context, req WriteRequest) (Entry, error) {
	return d.write(ctx, req, nil)
}

// write checks the request as a store would and records it.
func (d *dryStore) write(ctx context.Context, req WriteRequest, units Units) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	handle := req.Name
	var cur Entry
	if req.Handle != "" {
		c, ok, err := d.lookup(ctx, req.Handle)
		if err != nil {
			return Entry{}, err
		}
		if !ok {
			return Entry{}, fmt.Errorf("dry run: %q is gone: %w", req.Handle, ErrNotFound)
		}
		if req.Expected != nil && StampChanged(*req.Expected, c) {
			return Entry{}, fmt.Errorf("dry run: %q changed: %w", req.Handle, ErrChanged)
		}
		cur = c
		if d.unitStore {
			handle = req.Handle // cards keep their handle (their UID); only a new one is named
		}
	}
	moving := req.Handle != "" && handle != req.Handle
	if req.Handle == "" || moving {
		if _, ok, err := d.lookup(ctx, handle); err != nil {
			return Entry{}, err
		} else if ok {
			return Entry{}, fmt.Errorf("dry run: %q: %w", handle, ErrExists)
		}
	}
	if req.Handle == "" || moving {
		if o := d.takenBy(handle, req.Handle); o != "" {
			return Entry{}, fmt.Errorf("dry run: %q: the store takes it for %q: %w", handle, o, ErrExists)
		}
	}
	var parents []string // missing folders the store makes on the way, as stores do
	for p := parentName(handle); p != ""; p = parentName(p) {
		if p == req.Handle {
			continue
		}
		if e, ok, err := d.lookup(ctx, p); err != nil {
			return Entry{}, err
		} else if ok && e.Kind != KindFolder {
			return Entry{}, fmt.Errorf("dry run: a file is in the way of %q: %w", handle, ErrExists)
		} else if !ok {
			if o := d.takenBy(p, req.Handle); o != "" {
				return Entry{}, fmt.Errorf("dry run: %q: the store takes it for %q: %w", p, o, ErrExists)
			}
			parents = append(parents, p)
		}
	}
	if req.Handle != "" && !moving && cur.Kind == KindFolder && req.Kind != KindFolder && d.hasChildren(req.Handle) {
		return Entry{}, fmt.Errorf("dry run: %q holds items: %w", req.Handle, ErrNotEmpty)
	}
	e := Entry{Handle: handle, Kind: req.Kind, Size: req.Size, ModTime: req.ModTime}
	switch {
	case req.Kind == KindFolder:
		e.Size = 0
	case e.Size < 0:
		e.Size = 0
		for _, v := range units {
			e.Size += int64(len(v))
		}
	}
	if moving {
		d.move(req.Handle, handle)
	}
	for _, p := range parents {
		d.items[p] = Entry{Handle: p, Kind: KindFolder, ModTime: d.Now()}
		delete(d.gone, p)
		d.written[p] = nil
	}
	delete(d.content, handle)
	if sr, ok := req.Data.(*sourceReader); ok && req.Kind == KindFile {
		if lr, ok := sr.r.(*lazyReader); ok {
			// Another item's content, not read: reading this one reads that one.
			open := lr.open
			d.content[handle] = func(context.Context) (io.ReadCloser, error) { return open() }
		} else {
			// Content the session made itself (a copy it spooled): keep it, for a later
			// step that compares it.
			p, err := d.log.keep(req.Data)
			if err != nil {
				return Entry{}, fmt.Errorf("dry run: keep %q: %w", handle, err)
			}
			d.content[handle] = func(context.Context) (io.ReadCloser, error) { return os.Open(p) }
		}
	}
	d.items[handle] = e
	delete(d.gone, handle)
	d.written[handle] = units
	d.keyed(handle)
	for _, p := range parents {
		d.keyed(p)
	}
	pa := PlannedAction{From: d.other, To: d.name, Name: req.Name, Kind: e.Kind, Size: e.Size, Cause: req.Cause}
	switch {
	case req.Handle == "":
		pa.Action = ActCreate
	case req.Cause == CauseNone && moving:
		pa.Action = ActRename
	default:
		pa.Action = ActUpdate
	}
	if moving {
		pa.OldName = req.Handle
	}
	if pa.Kind == KindFolder || pa.Action == ActRename {
		pa.Size = 0
	}
	d.log.actions = append(d.log.actions, pa)
	return e, nil
}

// takenBy returns the item whose name the real store would take h for (a case-folding device
// takes "Notes.txt" for "notes.txt"), other than h itself and what moves there from self: "" when
// none, or when the store has no name key or the dry run has not seen all its items.
func (d *dryStore) takenBy(h, self string) string {
	if d.key == nil || !d.full {
		return ""
	}
	if d.byKey == nil {
		d.byKey = make(map[string]string, len(d.items))
		for k := range d.items {
			d.byKey[d.key(k)] = k
		}
	}
	k := d.key(h)
	o, ok := d.byKey[k]
	if !ok || o == h || self != "" && (o == self || strings.HasPrefix(o, self+"/")) {
		return ""
	}
	if _, live := d.items[o]; !live {
		delete(d.byKey, k) // moved or deleted since
		return ""
	}
	return o
}

// keyed notes h under its name key, once the key index exists.
func (d *dryStore) keyed(h string) {
	if d.byKey != nil {
		d.byKey[d.key(h)] = h
	}
}

// move re-keys an item the dry run moves, with everything below it.
func (d *dryStore) move(from, to string) {
	for h, e := range d.items {
		if !strings.HasPrefix(h, from+"/") {
			continue
		}
		nh := to + h[len(from):]
		e.Handle = nh
		delete(d.items, h)
		d.gone[h] = true
		d.items[nh] = e
		d.keyed(nh)
		delete(d.gone, nh)
		if u, ok := d.written[h]; ok {
			delete(d.written, h)
			d.written[nh] = u
		}
		if c, ok := d.content[h]; ok {
			delete(d.content, h)
			d.content[nh] = c
		} else if _, ok := d.written[nh]; !ok {
			// A real item moved: it reads as the real one at its old name.
			old := h
			d.content[nh] = func(ctx context.Context) (io.ReadCloser, error) { return d.inner.Open(ctx, old) }
		}
	}
	if c, ok := d.content[from]; ok {
		d.content[to] = c
	}
	delete(d.items, from)
	delete(d.written, from)
	delete(d.content, from)
	d.gone[from] = true
}

// hasChildren tells whether the folder h holds items in the dry run's view (after a full
// enumeration; before it, nothing is known to be there).
func (d *dryStore) hasChildren(h string) bool {
	for k := range d.items {
		if strings.HasPrefix(k, h+"/") {
			return true
		}
	}
	return false
}

func parentName(h string) string {
	if i := strings.LastIndexByte(h, '/'); i > 0 {
		return h[:i]
	}
	return ""
}

func (d *dryStore) Delete(ctx context.Context, h string, expected Stamp) error {
	return d.DeleteFor(ctx, h, expected, CauseNone)
}

func (d *dryStore) DeleteFor(ctx context.Context, h string, expected Stamp, cause Cause) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cur, ok, err := d.lookup(ctx, h)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("dry run: %q is gone: %w", h, ErrNotFound)
	case StampChanged(expected, cur):
		return fmt.Errorf("dry run: %q changed: %w", h, ErrChanged)
	case cur.Kind == KindFolder && d.hasChildren(h):
		return fmt.Errorf("dry run: %q holds items: %w", h, ErrNotEmpty)
	}
	delete(d.items, h)
	delete(d.written, h)
	delete(d.content, h)
	d.gone[h] = true
	d.log.actions = append(d.log.actions, PlannedAction{From: d.other, To: d.name, Action: ActDelete, Name: h, Kind: cur.Kind,
		Size: 0, Cause: cause})
	return nil
}

// WritesAtomic is true: the dry run writes nothing, so no write can be left half-done.
func (d *dryStore) WritesAtomic() bool { return true }

func (d *dryStore) TimeGranularity() time.Duration {
	g, _ := clockOf(d.inner)
	return g
}

func (d *dryStore) Now() time.Time {
	_, now := clockOf(d.inner)
	return now
}
