package repl

import (
	"context"
	"errors"
	"fmt"
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
	// For a full pass, what enumerate found, and how many items it looked at.
	scanned *found
	seen    int
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
	var unchanged []Entry // notified entries whose stamp did not change (see checkUnchanged)
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
			case rec.Missing:
				unchanged = append(unchanged, e)
			case (rec.Racy && e.Kind == KindFile) || ChangeMoved(rec.Stamp, e):
				f.verify = append(f.verify, e)
			case rec.Stamp.Change == 0 && e.Change != 0 && e.Kind == KindFile:
				f.refreshed = append(f.refreshed, e)
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
	checkUnchanged(&f, unchanged)
	if err := hf.record(ctx, side, &f, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}
