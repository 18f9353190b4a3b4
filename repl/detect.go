package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Side is one replica of a session: its name in the handle file and its store.
type Side struct {
	// Name is the replica's name in the handle file ("desktop", "device"); it is created on
	// first use. Conflict records and policies name sides by it.
	Name  string
	Store Store
	// Changes, when set, holds what a Notifier reported since the last session: detection then
	// checks only those handles (if the Store is a Stater), or runs a full pass when the
	// notifications overflowed. Nil means a full pass.
	Changes *ChangeSet
}

// ChangeSet collects a Notifier's notifications between sessions. Its Notify method is the
// callback to give Watch. It is safe for concurrent use. A new ChangeSet asks for a full pass
// (changes made before watching started are unknown).
type ChangeSet struct {
	mu      sync.Mutex
	handles map[string]struct{}
	full    bool
	gone    error
}

// NewChangeSet returns a ChangeSet that asks for a full pass first.
func NewChangeSet() *ChangeSet {
	return &ChangeSet{handles: map[string]struct{}{}, full: true}
}

// maxPendingHandles bounds a ChangeSet: past it, a full pass is cheaper than remembering.
const maxPendingHandles = 100_000

// Notify records one notification.
func (c *ChangeSet) Notify(n Notification) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch n.Kind {
	case Overflow:
		c.full = true
		clear(c.handles)
	case Shutdown:
		c.gone = n.Err
		if c.gone == nil {
			c.gone = ErrGone
		}
	default:
		if c.full || n.Handle == "" {
			return
		}
		c.handles[n.Handle] = struct{}{}
		if len(c.handles) > maxPendingHandles {
			c.full = true
			clear(c.handles)
		}
	}
}

// Pending reports whether a session has something to look at: a full pass is due, or handles
// were notified.
func (c *ChangeSet) Pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.full || len(c.handles) > 0
}

// Gone returns the error of a Shutdown notification, if one came.
func (c *ChangeSet) Gone() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// take empties the set and returns what it held.
func (c *ChangeSet) take() (handles []string, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	full = c.full
	if !full {
		handles = make([]string, 0, len(c.handles))
		for h := range c.handles {
			handles = append(handles, h)
		}
	}
	c.full = false
	clear(c.handles)
	return handles, full
}

// putBack restores what take returned, after a detection that failed.
func (c *ChangeSet) putBack(handles []string, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if full {
		c.full = true
		clear(c.handles)
		return
	}
	if c.full {
		return
	}
	for _, h := range handles {
		c.handles[h] = struct{}{}
	}
}

// DetectReport says what change detection found in one store.
type DetectReport struct {
	Side     string
	Full     bool // a full enumeration (else only notified handles)
	Seen     int  // items looked at
	Created  int
	Changed  int
	Deleted  int
	Renamed  int
	Duration time.Duration
}

// Changes returns how many changes detection recorded.
func (d DetectReport) Changes() int { return d.Created + d.Changed + d.Deleted + d.Renamed }

// Detect runs change detection on one side and records what changed in the handle file (new
// versions, tombstones), without syncing. Sync runs it itself; the manager may call it to show
// pending changes.
//
// Items an interrupted session may have left half-written in a store that is not atomic are left
// out until the next Sync has checked them.
func (hf *HandleFile) Detect(ctx context.Context, side Side) (DetectReport, error) {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	return hf.detect(ctx, side, true)
}

// intentNames returns the names with a pending intent in side's replica.
func (hf *HandleFile) intentNames(side Side) (map[string]struct{}, error) {
	var names map[string]struct{}
	err := hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if errors.Is(err, ErrUnknownReplica) {
			return nil
		}
		if err != nil {
			return err
		}
		return r.i.ForEach(func(k, _ []byte) error {
			if names == nil {
				names = map[string]struct{}{}
			}
			names[string(k)] = struct{}{}
			return nil
		})
	})
	return names, err
}

// detect runs a full or incremental pass; allowIncremental lets it use side.Changes.
func (hf *HandleFile) detect(ctx context.Context, side Side, allowIncremental bool) (DetectReport, error) {
	reps, err := hf.detectSides(ctx, []Side{side}, allowIncremental)
	if err != nil {
		return DetectReport{}, err
	}
	return reps[0], nil
}

// detection is one side's change detection, from taking its notifications to recording what it
// found.
type detection struct {
	side    Side
	start   time.Time
	taken   time.Time     // the store's time before it was looked at
	g       time.Duration // the store's time granularity
	full    bool
	handles []string // for an incremental pass: the notified handles
	// For a full pass, what enumerate gathered.
	entries []Entry
	ignored map[string]struct{}
}

// detectSides detects changes on each side and records them, one side after the other, but
// with the full enumerations run at once: they are independent (a folder walk, a device's
// listing over USB), and the slower one sets the time. Each Store is still called from one
// goroutine at a time. An enumeration that fails fails the detection of every side, with
// nothing recorded, so the outcome does not depend on which of them finished first.
func (hf *HandleFile) detectSides(ctx context.Context, sides []Side, allowIncremental bool) (_ []DetectReport, err error) {
	var ds []*detection
	done := 0
	defer func() {
		if err == nil {
			return
		}
		for _, d := range ds[done:] {
			if d.side.Changes != nil {
				d.side.Changes.putBack(d.handles, d.full)
			}
		}
	}()
	for _, side := range sides {
		if side.Changes != nil {
			if err := side.Changes.Gone(); err != nil {
				return nil, &sideError{name: side.Name, err: fmt.Errorf("detect changes in %s: the store went away (%v): %w", side.Name, err, ErrGone)}
			}
		}
		d := &detection{side: side, start: time.Now(), full: true}
		d.g, d.taken = clockOf(side.Store)
		_, canStat := side.Store.(Stater)
		if allowIncremental && side.Changes != nil && canStat {
			d.handles, d.full = side.Changes.take()
		} else if side.Changes != nil {
			side.Changes.take()
		}
		ds = append(ds, d)
	}
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		if d.full {
			wg.Go(func() { errs[i] = hf.enumerate(ctx, d) })
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, onSide(ds[i].side, err)
		}
	}
	reps := make([]DetectReport, len(ds))
	for i, d := range ds {
		rep, err := hf.finishDetect(ctx, d)
		if err != nil {
			return nil, onSide(d.side, err)
		}
		rep.Side = d.side.Name
		rep.Duration = time.Since(d.start)
		reps[i] = rep
		done++
	}
	return reps, nil
}

// onSide says which side an error of detection came from, unless it already does.
func onSide(side Side, err error) error {
	if ErrorSide(err) == "" {
		return &sideError{name: side.Name, err: err}
	}
	return err
}

// finishDetect matches what a full pass enumerated with the stored handles, or checks the
// notified handles, and records the changes found.
func (hf *HandleFile) finishDetect(ctx context.Context, d *detection) (DetectReport, error) {
	if !d.full {
		rep, err := hf.detectHandles(ctx, d)
		if !errors.Is(err, errNeedFull) {
			return rep, err
		}
		if err := hf.enumerate(ctx, d); err != nil {
			return DetectReport{}, err
		}
	}
	return hf.detectFull(ctx, d)
}

var errNeedFull = errors.New("a full pass is needed")

// found is the outcome of looking at the store: what to change in the replica.
type found struct {
	created []Entry
	changed []Entry    // at handles that have a record, with another stamp
	verify  []Entry    // at handles whose record is racily clean: the content decides
	deleted []*record  // live records whose item is gone
	renamed []renaming // deleted records paired with created entries
	// overwrote are deleted records whose content is now at another item's handle: moved over
	// it (mv -f, a save through a temporary name): the moved item is renamed, the other deleted.
	overwrote []renaming
	// refreshed are items whose stamp changed (or was racy) over the same content: the record
	// takes the new stamp, and no version is minted (a touch is no edit).
	refreshed []Entry
	taken     time.Time     // the store's time when it was looked at
	g         time.Duration // the store's time granularity
}

type renaming struct {
	old *record
	e   Entry
}

// enumerate lists everything side's store holds, for a full pass. It only reads the handle file.
func (hf *HandleFile) enumerate(ctx context.Context, d *detection) error {
	pending, err := hf.intentNames(d.side)
	if err != nil {
		return err
	}
	sizeHint := 0
	if err := hf.view(func(tx *bolt.Tx) error {
		if r, err := hf.openReplica(tx, d.side.Name, false); err == nil {
			sizeHint = int(r.count)
		}
		return nil
	}); err != nil {
		return err
	}
	d.entries, d.ignored, err = enumerateAll(ctx, d.side, pending, sizeHint)
	return err
}

// detectFull is the mark and sweep: with everything enumerated, match each entry with its stored
// handle, and only after an enumeration that finished infer deletions (what stayed unmatched). A
// store that enumerates in handle order (a folder walk, nearly) is merged with a cursor over the
// stored handles; another is matched through a hash of its handles, cheaper than sorting it.
func (hf *HandleFile) detectFull(ctx context.Context, d *detection) (DetectReport, error) {
	rep := DetectReport{Full: true}
	side, entries, ignored := d.side, d.entries, d.ignored
	d.entries, d.ignored = nil, nil // the found lists keep what they need
	rep.Seen = len(entries)
	f := found{taken: d.taken, g: d.g}
	err := hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if errors.Is(err, ErrUnknownReplica) {
			f.created = entries
			return nil
		}
		if err != nil {
			return err
		}
		if slices.IsSortedFunc(entries, compareEntries) {
			for i := 1; i < len(entries); i++ {
				if entries[i].Handle == entries[i-1].Handle {
					return fmt.Errorf("enumerate %s: handle %q reported twice", side.Name, entries[i].Handle)
				}
			}
			return mergeSorted(ctx, side, r, entries, ignored, &f)
		}
		return mergeHashed(ctx, side, r, entries, ignored, &f)
	})
	if err != nil {
		return rep, err
	}
	checkOverwrites(&f, entries)
	if err := hf.record(ctx, side, &f, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// checkOverwrites sends to the content check the unchanged entries whose stamp is a deleted file's:
// a file moved over another (mv -f, a save through a temporary file) with the same size and time
// (two files saved in one second) leaves the target's stamp as it was, and only its content shows
// that the deleted file's content is there now.
func checkOverwrites(f *found, entries []Entry) {
	type sig struct{ size, mod int64 }
	gone := map[sig]bool{}
	for _, d := range f.deleted {
		if d.Stamp.Kind == KindFile && d.Stamp.Size > 0 {
			gone[sig{d.Stamp.Size, d.Stamp.ModTime}] = true
		}
	}
	if len(gone) == 0 {
		return
	}
	looked := map[string]bool{}
	for _, list := range [][]Entry{f.created, f.changed, f.verify} {
		for _, e := range list {
			looked[e.Handle] = true
		}
	}
	for _, e := range entries {
		if e.Kind != KindFile || looked[e.Handle] {
			continue
		}
		if s := e.Stamp(); gone[sig{s.Size, s.ModTime}] {
			f.verify = append(f.verify, e)
		}
	}
}

// mergeSorted walks the sorted entries and the stored handles side by side.
func mergeSorted(ctx context.Context, side Side, r *rtx, entries []Entry, ignored map[string]struct{}, f *found) error {
	c := r.h.Cursor()
	k, v := c.First()
	i := 0
	for k != nil || i < len(entries) {
		var e *Entry
		if i < len(entries) {
			e = &entries[i]
		}
		switch {
		case k == nil || (e != nil && string(k) > e.Handle):
			f.created = append(f.created, *e)
			i++
			continue
		case e == nil || string(k) < e.Handle:
			if err := sweep(r, side, ignored, k, v, f); err != nil {
				return err
			}
			k, v = c.Next()
			continue
		}
		if err := compare(ctx, side, e, k, v, f); err != nil {
			return err
		}
		i++
		k, v = c.Next()
	}
	return nil
}

// mergeHashed matches the stored handles with entries through a map from handle to entry.
func mergeHashed(ctx context.Context, side Side, r *rtx, entries []Entry, ignored map[string]struct{}, f *found) error {
	at := make(map[string]int32, len(entries))
	for i := range entries {
		if _, dup := at[entries[i].Handle]; dup {
			return fmt.Errorf("enumerate %s: handle %q reported twice", side.Name, entries[i].Handle)
		}
		at[entries[i].Handle] = int32(i)
	}
	seen := make([]bool, len(entries))
	c := r.h.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		i, ok := at[string(k)]
		if !ok {
			if err := sweep(r, side, ignored, k, v, f); err != nil {
				return err
			}
			continue
		}
		seen[i] = true
		if err := compare(ctx, side, &entries[i], k, v, f); err != nil {
			return err
		}
	}
	for i := range entries {
		if !seen[i] {
			f.created = append(f.created, entries[i])
		}
	}
	return nil
}

// sweep takes a stored handle that no entry matched as deleted, unless the store holds it but does
// not replicate it.
func sweep(r *rtx, side Side, ignored map[string]struct{}, k, v []byte, f *found) error {
	if _, skip := ignored[string(k)]; skip {
		return nil
	}
	rec, err := r.decode(v, string(k))
	if err != nil {
		return fmt.Errorf("replica %q, handle %q: %w", side.Name, k, err)
	}
	f.deleted = append(f.deleted, rec)
	return nil
}

// compare asks the store whether the item e changed against the stamp recorded in v. An item
// whose stamp is unchanged but was racily clean when recorded goes to the content check.
func compare(ctx context.Context, side Side, e *Entry, k, v []byte, f *found) error {
	p, ok := peekStamp(v)
	if !ok {
		return fmt.Errorf("replica %q, handle %q: bad stamp: %w", side.Name, k, errMalformed)
	}
	stamp := Stamp{Kind: p.kind, Size: p.size, ModTime: p.mod}
	if len(p.hash) > 0 {
		stamp.Hash = string(p.hash)
	}
	changed, err := side.Store.IsItemChanged(ctx, *e, stamp)
	if err != nil {
		return fmt.Errorf("detect changes in %s: %q: %w", side.Name, e.Handle, err)
	}
	switch {
	case changed:
		f.changed = append(f.changed, *e)
	case p.racy && e.Kind == KindFile && !p.missing:
		f.verify = append(f.verify, *e)
	}
	return nil
}

// enumerateAll lists the store's replicated items, and the handles of the items it does not
// replicate (their records are left alone), and those with a pending intent (left for the next
// session to check).
func enumerateAll(ctx context.Context, side Side, skip map[string]struct{}, sizeHint int) ([]Entry, map[string]struct{}, error) {
	it, err := side.Store.Enumerate(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("enumerate %s: %w", side.Name, err)
	}
	defer it.Close()
	entries := make([]Entry, 0, sizeHint+sizeHint/8+16)
	var ignored map[string]struct{}
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("enumerate %s (nothing is taken as deleted from an unfinished enumeration): %w", side.Name, err)
		}
		if _, pending := skip[e.Handle]; pending || !side.Store.IsItemReplicated(e) {
			if ignored == nil {
				ignored = map[string]struct{}{}
			}
			ignored[e.Handle] = struct{}{}
			continue
		}
		entries = append(entries, e)
	}
	if err := it.Close(); err != nil {
		return nil, nil, fmt.Errorf("enumerate %s: %w", side.Name, err)
	}
	return entries, ignored, nil
}

func compareEntries(a, b Entry) int { return strings.Compare(a.Handle, b.Handle) }

// detectHandles checks only the notified handles (and what a vanished folder held).
func (hf *HandleFile) detectHandles(ctx context.Context, d *detection) (DetectReport, error) {
	side, handles := d.side, d.handles
	rep := DetectReport{}
	st := side.Store.(Stater)
	pending, err := hf.intentNames(side)
	if err != nil {
		return rep, err
	}
	sort.Strings(handles)
	handles = slices.DeleteFunc(slices.Compact(handles), func(h string) bool { _, p := pending[h]; return p })
	f := found{taken: d.taken, g: d.g}
	var unchanged []Entry // notified entries whose stamp did not change (see checkOverwrites)
	seen := map[string]bool{}
	err = hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if errors.Is(err, ErrUnknownReplica) {
			return errNeedFull
		}
		if err != nil {
			return err
		}
		var check func(h string) error
		check = func(h string) error {
			if seen[h] {
				return nil
			}
			seen[h] = true
			rep.Seen++
			rec, err := r.byHandle(h)
			if err != nil {
				return err
			}
			e, err := st.Stat(ctx, h)
			switch {
			case errors.Is(err, ErrNotFound):
				if rec == nil {
					return nil
				}
				f.deleted = append(f.deleted, rec)
				if rec.Stamp.Kind == KindFolder {
					// What the folder held went with it (or moved with it).
					prefix := []byte(h + "/")
					c := r.h.Cursor()
					var under []string
					for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
						under = append(under, string(k))
					}
					for _, u := range under {
						if err := check(u); err != nil {
							return err
						}
					}
				}
				return nil
			case err != nil:
				return fmt.Errorf("detect changes in %s: %q: %w", side.Name, h, err)
			}
			if !side.Store.IsItemReplicated(e) {
				return nil
			}
			if rec == nil {
				if e.Kind == KindFolder {
					return errNeedFull // a folder moved in: its content was not notified item by item
				}
				f.created = append(f.created, e)
				return nil
			}
			changed, err := side.Store.IsItemChanged(ctx, e, rec.Stamp)
			if err != nil {
				return fmt.Errorf("detect changes in %s: %q: %w", side.Name, h, err)
			}
			switch {
			case changed:
				f.changed = append(f.changed, e)
			case rec.Racy && e.Kind == KindFile && !rec.Missing:
				f.verify = append(f.verify, e)
			default:
				unchanged = append(unchanged, e)
			}
			return nil
		}
		for _, h := range handles {
			if err := check(h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	checkOverwrites(&f, unchanged)
	if err := hf.record(ctx, side, &f, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// contentOf is what detection learned of a new or changed item's content: its hash, when read
// and vouched for (readSum).
type contentOf struct {
	sum [32]byte
	ok  bool
}

// pairRenames turns a deleted record and a created entry that hold the same content into a
// rename, so the item keeps its identity (an edit made meanwhile on the other side follows it to
// its new name). Content is the only proof: the created item's hash (read now, or the store's own
// hash) must be the deleted record's, and the pairing unique on both sides. A size and a time
// prove nothing: an unrelated file of the same size and time is a new file. The hashes read are
// kept in sums for the created items' records.
func pairRenames(ctx context.Context, side Side, f *found, sums map[string]contentOf) error {
	if len(f.deleted) == 0 || len(f.created)+len(f.changed) == 0 {
		return nil
	}
	sizes := map[int64]bool{}
	for _, rec := range f.deleted {
		if rec.Stamp.Kind == KindFile && rec.Stamp.Size > 0 && (rec.hasSum() || rec.Stamp.Hash != "") {
			sizes[rec.Stamp.Size] = true
		}
	}
	if len(sizes) == 0 {
		return nil
	}
	// The content of each deleted record, and of each created entry of a size some deleted one
	// had: "s" and the engine's hash, or "h" and the store's own.
	gone := map[string][]int{}
	for i, rec := range f.deleted {
		if rec.Stamp.Kind != KindFile || rec.Stamp.Size <= 0 {
			continue
		}
		if rec.hasSum() {
			gone["s"+string(rec.Sum[:])] = append(gone["s"+string(rec.Sum[:])], i)
		}
		if rec.Stamp.Hash != "" {
			gone["h"+rec.Stamp.Hash] = append(gone["h"+rec.Stamp.Hash], i)
		}
	}
	born := map[string][]int{}
	for i, e := range f.created {
		if e.Kind != KindFile || !sizes[e.Size] {
			continue
		}
		if e.Hash != "" {
			born["h"+e.Hash] = append(born["h"+e.Hash], i)
		}
		sum, ok, err := readSum(ctx, side.Store, e)
		if errors.Is(err, ErrNotFound) {
			continue // gone again already: the next pass sees it
		}
		if err != nil {
			return fmt.Errorf("detect changes in %s: read %q: %w", side.Name, e.Handle, err)
		}
		if ok {
			sums[e.Handle] = contentOf{sum: sum, ok: true}
			born["s"+string(sum[:])] = append(born["s"+string(sum[:])], i)
		}
	}
	pairedDel := map[int]bool{}
	pairedNew := map[int]bool{}
	for k, bi := range born {
		di := gone[k]
		if len(bi) != 1 || len(di) != 1 || pairedDel[di[0]] || pairedNew[bi[0]] {
			continue // none, or ambiguous (a copy of one file, two files alike): a delete and a create
		}
		rec, e := f.deleted[di[0]], f.created[bi[0]]
		if rec.Stamp.Size != e.Size {
			continue
		}
		f.renamed = append(f.renamed, renaming{old: rec, e: e})
		pairedDel[di[0]] = true
		pairedNew[bi[0]] = true
	}
	// A changed file whose content is a deleted file's (and no other's): that file was moved
	// over it.
	over := map[string][]int{}
	for i, e := range f.changed {
		if e.Kind != KindFile || !sizes[e.Size] {
			continue
		}
		if e.Hash != "" {
			over["h"+e.Hash] = append(over["h"+e.Hash], i)
			continue
		}
		sum, ok, err := readSum(ctx, side.Store, e)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("detect changes in %s: read %q: %w", side.Name, e.Handle, err)
		}
		if ok {
			sums[e.Handle] = contentOf{sum: sum, ok: true}
			over["s"+string(sum[:])] = append(over["s"+string(sum[:])], i)
		}
	}
	pairedChanged := map[int]bool{}
	for k, ci := range over {
		di := gone[k]
		if len(ci) != 1 || len(di) != 1 || pairedDel[di[0]] || len(born[k]) > 0 {
			continue
		}
		rec, e := f.deleted[di[0]], f.changed[ci[0]]
		if rec.Stamp.Size != e.Size {
			continue
		}
		f.overwrote = append(f.overwrote, renaming{old: rec, e: e})
		pairedDel[di[0]] = true
		pairedChanged[ci[0]] = true
	}
	if len(pairedChanged) > 0 {
		ch := f.changed[:0]
		for i, e := range f.changed {
			if !pairedChanged[i] {
				ch = append(ch, e)
			}
		}
		f.changed = ch
	}
	if len(f.renamed) == 0 && len(f.overwrote) == 0 {
		return nil
	}
	del := f.deleted[:0]
	for i, rec := range f.deleted {
		if !pairedDel[i] {
			del = append(del, rec)
		}
	}
	f.deleted = del
	cre := f.created[:0]
	for i, e := range f.created {
		if !pairedNew[i] {
			cre = append(cre, e)
		}
	}
	f.created = cre
	return nil
}

// checkContent asks the content of the items whose stamp changed over the same size, and of the
// racily clean ones: a stamp that changed over the same content (a touch, a copy with the same
// bytes) is no edit, and a racy item whose content changed is one even though its stamp did not.
// Items found unchanged move to f.refreshed; hashes read are kept in sums.
func (hf *HandleFile) checkContent(ctx context.Context, side Side, f *found, sums map[string]contentOf) error {
	if len(f.changed) == 0 && len(f.verify) == 0 {
		return nil
	}
	olds := map[string]*record{}
	err := hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if err != nil {
			return err
		}
		for _, list := range [][]Entry{f.changed, f.verify} {
			for _, e := range list {
				rec, err := r.byHandle(e.Handle)
				if err != nil {
					return err
				}
				if rec != nil {
					olds[e.Handle] = rec
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	read := func(e Entry) (contentOf, bool, error) {
		sum, ok, err := readSum(ctx, side.Store, e)
		if errors.Is(err, ErrNotFound) {
			return contentOf{}, false, nil
		}
		if err != nil {
			return contentOf{}, false, fmt.Errorf("detect changes in %s: read %q: %w", side.Name, e.Handle, err)
		}
		return contentOf{sum: sum, ok: ok}, true, nil
	}
	movedHere := map[[32]byte]bool{} // contents of deleted files: one found under another name moved there
	for _, d := range f.deleted {
		if d.hasSum() {
			movedHere[d.Sum] = true
		}
	}
	changed := f.changed[:0]
	for _, e := range f.changed {
		old := olds[e.Handle]
		if old == nil || e.Hash != "" || e.Kind != KindFile || old.Stamp.Kind != KindFile || e.Size != old.Stamp.Size || !old.hasSum() {
			changed = append(changed, e)
			continue
		}
		c, found, err := read(e)
		if err != nil {
			return err
		}
		if found && c.ok {
			sums[e.Handle] = c
			if c.sum == old.Sum {
				f.refreshed = append(f.refreshed, e)
				continue
			}
		}
		changed = append(changed, e)
	}
	f.changed = changed
	for _, e := range f.verify {
		old := olds[e.Handle]
		if old == nil {
			continue
		}
		if e.Hash != "" && e.Hash == old.Stamp.Hash {
			f.refreshed = append(f.refreshed, e) // the store's own hash vouches for the content
			continue
		}
		c, found, err := read(e)
		if err != nil {
			return err
		}
		if !found {
			continue // gone: the next pass sees it
		}
		if c.ok {
			sums[e.Handle] = c
		}
		if c.ok && (c.sum == old.Sum || !old.hasSum() && !movedHere[c.sum]) {
			// The same content; or no hash was ever known, which means its bytes never left
			// this store (a transfer, a comparison would have kept one): whatever it holds now
			// is what a transfer will send, unless it is a deleted file's, moved over it.
			f.refreshed = append(f.refreshed, e)
			continue
		}
		// Another content under the same stamp, or a content that cannot be vouched for (it
		// is changing now): an edit.
		f.changed = append(f.changed, e)
	}
	f.verify = nil
	return nil
}

// prepared is what record needs from the store for a new or changed item, fetched before the
// write transaction so no store call runs inside it.
type prepared struct {
	key   string
	units Units
}

func prepare(ctx context.Context, side Side, e Entry) (prepared, error) {
	var p prepared
	k, err := side.Store.NaturalKey(ctx, e)
	if err != nil {
		return p, fmt.Errorf("natural key of %q in %s: %w", e.Handle, side.Name, err)
	}
	p.key = k
	if us, ok := side.Store.(UnitStore); ok && e.Kind == KindFile {
		if p.units, err = us.ReadUnits(ctx, e.Handle); err != nil {
			return p, fmt.Errorf("read units of %q in %s: %w", e.Handle, side.Name, err)
		}
		if p.units == nil {
			p.units = Units{}
		}
	}
	return p, nil
}

// record writes what detection found: new versions, renames and tombstones, in one transaction.
// It first asks the content where the stamps cannot tell (renames, touches, racy items).
func (hf *HandleFile) record(ctx context.Context, side Side, f *found, rep *DetectReport) error {
	rc := &recorder{sums: map[string]contentOf{}, prep: map[string]prepared{}, taken: f.taken, g: f.g, rep: rep,
		now: time.Now().UnixNano()}
	if err := pairRenames(ctx, side, f, rc.sums); err != nil {
		return err
	}
	if err := hf.checkContent(ctx, side, f, rc.sums); err != nil {
		return err
	}
	// Versions are minted in handle order: a pass sends live items in name order, so the
	// destination learns them in tick order and its knowledge stays a plain vector.
	slices.SortFunc(f.created, compareEntries)
	slices.SortFunc(f.changed, compareEntries)
	if len(f.created)+len(f.changed)+len(f.deleted)+len(f.renamed)+len(f.overwrote)+len(f.refreshed) == 0 {
		return nil
	}
	for _, list := range [][]Entry{f.created, f.changed} {
		for _, e := range list {
			p, err := prepare(ctx, side, e)
			if errors.Is(err, ErrNotFound) {
				continue // gone again already: the next pass sees it
			}
			if err != nil {
				return err
			}
			rc.prep[e.Handle] = p
		}
	}
	for _, rn := range append(slices.Clone(f.renamed), f.overwrote...) {
		p, err := prepare(ctx, side, rn.e)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err == nil {
			rc.prep[rn.e.Handle] = p
		}
	}
	type op struct {
		created, changed, refreshed *Entry
		renamed, overwrote          *renaming
		deleted                     *record
	}
	ops := make([]op, 0, len(f.created)+len(f.changed)+len(f.renamed)+len(f.deleted)+len(f.refreshed))
	for i := range f.created {
		ops = append(ops, op{created: &f.created[i]})
	}
	for i := range f.changed {
		ops = append(ops, op{changed: &f.changed[i]})
	}
	for i := range f.refreshed {
		ops = append(ops, op{refreshed: &f.refreshed[i]})
	}
	for i := range f.renamed {
		ops = append(ops, op{renamed: &f.renamed[i]})
	}
	for i := range f.overwrote {
		ops = append(ops, op{overwrote: &f.overwrote[i]})
	}
	for _, d := range f.deleted {
		ops = append(ops, op{deleted: d})
	}
	// Committed in chunks: a transaction that grows without bound makes bbolt slow, and every
	// chunk is consistent on its own (deletions were inferred before the first one).
	const chunk = 5000
	for start := 0; start < len(ops); start += chunk {
		part := ops[start:min(start+chunk, len(ops))]
		err := hf.update(func(tx *bolt.Tx) error {
			r, err := hf.openReplica(tx, side.Name, true)
			if err != nil {
				return err
			}
			for _, o := range part {
				var err error
				switch {
				case o.created != nil:
					err = rc.created(r, *o.created)
				case o.changed != nil:
					err = rc.changed(r, *o.changed)
				case o.refreshed != nil:
					err = rc.refreshed(r, *o.refreshed)
				case o.renamed != nil:
					err = rc.renamed(r, *o.renamed)
				case o.overwrote != nil:
					err = rc.overwrote(r, *o.overwrote)
				default:
					err = recordDeleted(r, o.deleted, rc.now, rep)
				}
				if err != nil {
					return err
				}
			}
			return r.save()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// recorder records one detection's findings.
type recorder struct {
	prep  map[string]prepared
	sums  map[string]contentOf
	now   int64         // Unix nanoseconds, the time of the changes
	taken time.Time     // the store's time when it was looked at
	g     time.Duration // the store's time granularity
	rep   *DetectReport
}

// content sets what is known of e's content in rec: its hash, when it was read, and whether the
// stamp is racily clean.
func (rc *recorder) content(rec *record, e Entry) {
	rec.Stamp = e.Stamp()
	rec.Sum = [32]byte{}
	if c := rc.sums[e.Handle]; c.ok {
		rec.Sum = c.sum
	}
	rec.Racy = racyAt(e, rc.taken, rc.g)
}

func (rc *recorder) created(r *rtx, e Entry) error {
	p, ok := rc.prep[e.Handle]
	if !ok {
		return nil
	}
	if old, err := r.byHandle(e.Handle); err != nil {
		return err
	} else if old != nil {
		return fmt.Errorf("replica %q: new item %q already has a record: %w", r.name, e.Handle, errMalformed)
	}
	v := r.mint()
	rec := &record{GID: v, Ver: v, CVer: v, NVer: v, V: Vector{v}, Handle: e.Handle, Name: e.Handle, Key: p.key,
		When: rc.now, Units: unitsFrom(nil, p.units, v)}
	rc.content(rec, e)
	if err := r.put(nil, rec); err != nil {
		return err
	}
	rc.rep.Created++
	return nil
}

func (rc *recorder) changed(r *rtx, e Entry) error {
	p, ok := rc.prep[e.Handle]
	if !ok {
		return nil
	}
	old, err := r.byHandle(e.Handle)
	if err != nil || old == nil {
		return err
	}
	v := r.mint()
	rec := *old
	rec.Ver, rec.V, rec.When = v, old.V.With(v), rc.now
	s := e.Stamp()
	sameContent := s.Kind == old.Stamp.Kind && s.Hash != "" && s.Hash == old.Stamp.Hash
	if p.units != nil && old.Units != nil && s.Kind == old.Stamp.Kind {
		u := unitsFrom(old.Units, p.units, v)
		sameContent = sameUnits(old.Units, u)
		rec.Units = u
	} else {
		rec.Units = unitsFrom(nil, p.units, v)
	}
	if !sameContent {
		rec.CVer = v
	}
	rec.Key = p.key
	rc.content(&rec, e)
	if err := r.put(old, &rec); err != nil {
		return err
	}
	rc.rep.Changed++
	return nil
}

// refreshed records a new stamp over the same content: no version, nothing to send.
func (rc *recorder) refreshed(r *rtx, e Entry) error {
	old, err := r.byHandle(e.Handle)
	if err != nil || old == nil || old.Tomb || old.Missing {
		return err
	}
	rec := *old
	rc.content(&rec, e)
	if !rec.hasSum() {
		rec.Sum = old.Sum
	}
	if rec.Stamp == old.Stamp && rec.Sum == old.Sum && rec.Racy == old.Racy {
		return nil
	}
	return r.put(old, &rec)
}

func (rc *recorder) renamed(r *rtx, rn renaming) error {
	old, err := r.byGID(rn.old.GID)
	if err != nil {
		return err
	}
	if old == nil || old.Tomb || old.Missing || old.Handle != rn.old.Handle {
		return nil
	}
	p, ok := rc.prep[rn.e.Handle]
	if !ok {
		return recordDeleted(r, old, rc.now, rc.rep) // the new name vanished too: an ordinary delete
	}
	v := r.mint()
	rec := *old
	rec.Ver, rec.NVer, rec.V, rec.When = v, v, old.V.With(v), rc.now
	rec.Handle, rec.Name, rec.Key = rn.e.Handle, rn.e.Handle, p.key
	rc.content(&rec, rn.e)
	if !rec.hasSum() {
		rec.Sum = old.Sum // the same content, proved by the store's hash
	}
	if p.units != nil {
		rec.Units = unitsFrom(old.Units, p.units, v)
	}
	if err := r.put(old, &rec); err != nil {
		return err
	}
	rc.rep.Renamed++
	return nil
}

// overwrote records a file moved over another: the other (at rn.e's handle) is deleted, and the
// moved one renamed there.
func (rc *recorder) overwrote(r *rtx, rn renaming) error {
	target, err := r.byHandle(rn.e.Handle)
	if err != nil {
		return err
	}
	if target != nil {
		if err := recordDeleted(r, target, rc.now, rc.rep); err != nil {
			return err
		}
	}
	return rc.renamed(r, rn)
}

func recordDeleted(r *rtx, d *record, now int64, rep *DetectReport) error {
	old, err := r.byGID(d.GID)
	if err != nil {
		return err
	}
	if old == nil || old.Tomb || old.Missing || old.Handle != d.Handle {
		return nil
	}
	v := r.mint()
	rec := *old
	rec.Tomb, rec.Ver, rec.V, rec.When = true, v, old.V.With(v), now
	if err := r.put(old, &rec); err != nil {
		return err
	}
	rep.Deleted++
	return nil
}

// unitsFrom returns unit records for the values now in an item: units whose value is unchanged
// keep their record, changed or new ones get version v, and units that disappeared stay as
// deleted markers with version v. old is nil for an item seen for the first time; now nil means
// the store has no units.
func unitsFrom(old []unitRec, now Units, v Version) []unitRec {
	if now == nil {
		return nil
	}
	out := make([]unitRec, 0, len(now))
	for name, val := range now {
		h := unitHash(val)
		u := unitRec{Name: name, Ver: v, Hash: h}
		if i, ok := slices.BinarySearchFunc(old, name, func(u unitRec, n string) int { return strings.Compare(u.Name, n) }); ok {
			if o := old[i]; !o.Deleted && o.Hash == h {
				u = o
			}
		}
		out = append(out, u)
	}
	for _, o := range old {
		if _, ok := now[o.Name]; !ok {
			if !o.Deleted {
				o = unitRec{Name: o.Name, Ver: v, Deleted: true}
			}
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b unitRec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func sameUnits(a, b []unitRec) bool {
	return slices.EqualFunc(a, b, func(x, y unitRec) bool {
		return x.Name == y.Name && x.Deleted == y.Deleted && (x.Deleted || x.Hash == y.Hash)
	})
}
