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
			if err := sweep(side, ignored, k, v, f); err != nil {
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
			if err := sweep(side, ignored, k, v, f); err != nil {
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
func sweep(side Side, ignored map[string]struct{}, k, v []byte, f *found) error {
	if _, skip := ignored[string(k)]; skip {
		return nil
	}
	rec, err := decodeRecord(v)
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
