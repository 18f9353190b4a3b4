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

// A full pass is a mark and sweep, merged with the store's enumeration as its entries come: a
// cursor walks the stored handles in order beside them, so an unchanged item costs a comparison
// and no memory, and what is kept is only what changed. An entry that comes in handle order
// advances the cursor; the stored handles it passes are set aside, to be taken as deleted unless
// an entry comes for them later (a store that walks folders does not always list in byte order:
// "a/b" comes before "a.txt" in a walk, after it in bytes). Deletions are inferred only when the
// enumeration finished.

// enumerate runs a full pass over side's store and keeps in d what it found. It only reads the
// handle file, in one read transaction for the whole enumeration.
func (hf *HandleFile) enumerate(ctx context.Context, d *detection) error {
	pending, err := hf.intentNames(d.side)
	if err != nil {
		return err
	}
	d.scanned = &found{taken: d.taken, g: d.g}
	d.seen = 0
	return hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, d.side.Name, false)
		switch {
		case errors.Is(err, ErrUnknownReplica):
			r = nil // everything is new
		case err != nil:
			return err
		}
		m := &merger{side: d.side, r: r, f: d.scanned, skip: pending}
		if r != nil {
			m.c = r.h.Cursor()
			m.k, m.v = m.c.First()
		}
		if err := m.run(ctx); err != nil {
			return err
		}
		d.seen = m.seen
		return m.finish()
	})
}

// merger matches one enumeration with the stored handles.
type merger struct {
	side Side
	r    *rtx // nil when the replica does not exist yet
	f    *found
	skip map[string]struct{} // handles with a pending intent: left for the next session

	c    *bolt.Cursor // over the stored handles; k and v are its current entry (nil past the end)
	k, v []byte
	// passed are the stored handles the cursor went past without an entry (the values point
	// into the transaction's pages): deleted, unless an entry comes for them later.
	passed map[string][]byte
	// ignored are handles the store holds and does not replicate: their records stay.
	ignored map[string]struct{}
	last    string // the greatest handle enumerated so far
	seen    int
}

func (m *merger) run(ctx context.Context) error {
	it, err := m.side.Store.Enumerate(ctx)
	if err != nil {
		return fmt.Errorf("enumerate %s: %w", m.side.Name, err)
	}
	defer it.Close()
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("enumerate %s (nothing is taken as deleted from an unfinished enumeration): %w", m.side.Name, err)
		}
		if _, pending := m.skip[e.Handle]; pending || !m.side.Store.IsItemReplicated(e) {
			if m.ignored == nil {
				m.ignored = map[string]struct{}{}
			}
			m.ignored[e.Handle] = struct{}{}
			continue
		}
		m.seen++
		if err := m.entry(ctx, &e); err != nil {
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("enumerate %s: %w", m.side.Name, err)
	}
	return nil
}

// entry matches one enumerated entry.
func (m *merger) entry(ctx context.Context, e *Entry) error {
	if m.r == nil {
		m.f.created = append(m.f.created, *e)
		return nil
	}
	defer func() { m.last = max(m.last, e.Handle) }()
	// In order: the stored handles before e were not enumerated (yet).
	for m.k != nil && string(m.k) < e.Handle {
		if m.passed == nil {
			m.passed = map[string][]byte{}
		}
		m.passed[string(m.k)] = m.v
		m.k, m.v = m.c.Next()
	}
	if m.k != nil && string(m.k) == e.Handle {
		k, v := m.k, m.v
		m.k, m.v = m.c.Next()
		return compare(ctx, m.side, e, k, v, m.f)
	}
	// e's record, if it has one, was passed by the cursor: e came out of order.
	if v, ok := m.passed[e.Handle]; ok {
		delete(m.passed, e.Handle)
		return compare(ctx, m.side, e, []byte(e.Handle), v, m.f)
	}
	if e.Handle <= m.last && m.r.h.Get([]byte(e.Handle)) != nil {
		// Out of order, with a record no longer passed: matched already, reported twice.
		return fmt.Errorf("enumerate %s: handle %q reported twice", m.side.Name, e.Handle)
	}
	m.f.created = append(m.f.created, *e)
	return nil
}

// finish sweeps what no entry matched, and refuses a handle reported twice as new.
func (m *merger) finish() error {
	slices.SortFunc(m.f.created, compareEntries)
	for i := 1; i < len(m.f.created); i++ {
		if m.f.created[i].Handle == m.f.created[i-1].Handle {
			return fmt.Errorf("enumerate %s: handle %q reported twice", m.side.Name, m.f.created[i].Handle)
		}
	}
	if m.r == nil {
		return nil
	}
	for ; m.k != nil; m.k, m.v = m.c.Next() {
		if err := m.sweep(m.k, m.v); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(m.passed) {
		if err := m.sweep([]byte(k), m.passed[k]); err != nil {
			return err
		}
	}
	m.passed = nil
	return checkOverwrites(m.r, m.f, m.ignored)
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sweep takes a stored handle that no entry matched as deleted, unless the store holds it but does
// not replicate it.
func (m *merger) sweep(k, v []byte) error {
	if _, skip := m.ignored[string(k)]; skip {
		return nil
	}
	rec, err := m.r.decode(v, string(k))
	if err != nil {
		return fmt.Errorf("replica %q, handle %q: %w", m.side.Name, k, err)
	}
	m.f.deleted = append(m.f.deleted, rec)
	return nil
}

// detectFull records what a full pass found.
func (hf *HandleFile) detectFull(ctx context.Context, d *detection) (DetectReport, error) {
	rep := DetectReport{Full: true, Seen: d.seen}
	f := d.scanned
	d.scanned = nil
	if err := hf.record(ctx, d.side, f, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// compare asks the store whether the item e changed against the stamp recorded in v. An item
// whose stamp is unchanged but was racily clean when recorded, or whose change time moved, goes
// to the content check; one recorded before change times were kept gets its change time.
func compare(ctx context.Context, side Side, e *Entry, k, v []byte, f *found) error {
	p, ok := peekStamp(v)
	if !ok {
		return fmt.Errorf("replica %q, handle %q: bad stamp: %w", side.Name, k, errMalformed)
	}
	stamp := Stamp{Kind: p.kind, Size: p.size, ModTime: p.mod, Change: p.change}
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
	case p.missing:
	case (p.racy && e.Kind == KindFile) || ChangeMoved(stamp, *e):
		f.verify = append(f.verify, *e)
	case p.change == 0 && e.Change != 0 && e.Kind == KindFile:
		f.refreshed = append(f.refreshed, *e)
	}
	return nil
}

func compareEntries(a, b Entry) int { return strings.Compare(a.Handle, b.Handle) }
