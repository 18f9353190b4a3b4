package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

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
