package repl

import (
	"context"
	"errors"
	"slices"
	"time"
)

// mergeCandidate finds a live destination item that is the same item as the new c under another
// global ID: same natural key, and never seen by the source (the source would otherwise have
// sent it as the separate item it is). That happens on a first sync, and after a rebuild.
func (a *applier) mergeCandidate(c *record) (*record, error) {
	cands, err := a.rd.byKey(c.Key)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cands, func(x, y *record) int { return x.GID.Compare(y.GID) })
	for _, m := range cands {
		if m.GID == c.GID || m.Missing {
			continue
		}
		seen, err := a.sourceSaw(m.GID)
		if err != nil {
			return nil, err
		}
		if !seen {
			return m, nil
		}
	}
	return nil, nil
}

// sameAtName returns the live destination item at c's name when it is another item than c but
// holds c's content: what an interrupted write of c left (a rename that wrote the new name and
// never removed the old one), or the same file made on both sides. When the destination still
// holds c's item under its old name (l), that name is removed first, as the interrupted rename
// would have: it holds the same content. It returns nil when the name holds anything else, or
// when the old name changed since (then the usual clash settles it).
func (a *applier) sameAtName(ctx context.Context, c, l *record) (*record, error) {
	if c.live() && c.Stamp.Kind == KindFolder && !l.live() {
		// A folder of that name is the same folder: folders have no content of their own.
		m, err := a.rd.byHandle(c.Name)
		if err != nil || m == nil || m.GID == c.GID || !m.live() || m.Stamp.Kind != KindFolder {
			return nil, err
		}
		return m, nil
	}
	if !c.live() || c.Stamp.Kind != KindFile {
		return nil, nil
	}
	m, err := a.rd.byHandle(c.Name)
	if err != nil || m == nil || m.GID == c.GID || !m.live() || m.Stamp.Kind != KindFile || m.Stamp.Size != c.Stamp.Size {
		return nil, err
	}
	same, err := a.sameContent(ctx, c, m)
	if err != nil || !same {
		return nil, err
	}
	if l.live() && l.Handle != m.Handle {
		if l.Stamp.Kind != KindFile || l.Stamp.Size != c.Stamp.Size {
			return nil, nil
		}
		if same, err := a.sameLocal(ctx, l, m); err != nil || !same {
			return nil, err
		}
		if err := a.dst().Store.Delete(ctx, l.Handle, l.Stamp); err != nil {
			if errors.Is(err, ErrChanged) {
				return nil, nil // edited meanwhile: two items after all
			}
			if !errors.Is(err, ErrNotFound) {
				return nil, a.dstErr("remove the old name", l.Handle, err)
			}
		}
	}
	return m, nil
}

// sameLocal reports whether two destination items hold the same content.
func (a *applier) sameLocal(ctx context.Context, x, y *record) (bool, error) {
	if x.hasSum() && y.hasSum() {
		return x.Sum == y.Sum, nil
	}
	sx, okx, err := readSum(ctx, a.dst().Store, entryOf(x))
	if err != nil || !okx {
		return false, err
	}
	sy, oky, err := readSum(ctx, a.dst().Store, entryOf(y))
	if err != nil || !oky {
		return false, err
	}
	return sx == sy, nil
}

// entryOf is the entry a live record describes.
func entryOf(r *record) Entry {
	e := Entry{Handle: r.Handle, Kind: r.Stamp.Kind, Size: r.Stamp.Size, Hash: r.Stamp.Hash}
	if r.Stamp.ModTime != 0 {
		e.ModTime = time.Unix(0, r.Stamp.ModTime)
	}
	return e
}

// sourceSaw tells whether the source has a record of the item gid, under that ID or under one
// that was merged into it here.
func (a *applier) sourceSaw(gid Version) (bool, error) {
	for _, id := range append([]Version{gid}, a.rd.mergedInto(gid)...) {
		rec, err := a.rs.byGID(id)
		if err != nil {
			return false, err
		}
		if rec != nil {
			return true, nil
		}
	}
	return false, nil
}

// mergeIdentity makes the new c and the local m one item. The smaller global ID survives, so every
// replica that meets the pair picks the same one; the other becomes a tombstone that says what it
// was merged into (applying it never deletes data). Then the two contents are settled as
// concurrent versions of one item.
//
// A made-with vector says which versions of one item a version includes; one replica's ticks on
// two different items say nothing about each other. So the two histories are never compared or
// mixed: the contents meet as concurrent versions, and the result carries only the surviving
// ID's history. The local item, when it is the one that joins the other's ID, enters with a
// history of one new version of this replica (which the other side cannot have seen).
func (a *applier) mergeIdentity(ctx context.Context, c, m, l *record) error {
	now := a.now().UnixNano()
	a.across = true
	defer func() { a.across, a.lineage = false, nil }()
	if m.GID.Compare(c.GID) < 0 {
		a.lineage = m.V
		if err := a.concurrent(ctx, c, m); err != nil {
			return err
		}
		// c's ID becomes a tombstone merged into m's. It includes c's version only if the
		// survivor took c in (or a policy settled it): a conflict left to the user must not
		// make c's holders drop their copy.
		if a.asked && l != nil && l.Tomb && l.Merged == m.GID {
			return nil // already recorded as merged; the conflict waits for the user
		}
		v := a.rd.mint()
		hist := Vector{}
		if !a.asked {
			hist = c.V
		}
		if l != nil {
			hist = hist.Merge(l.V)
		}
		t := &record{GID: c.GID, Ver: v, CVer: c.CVer, NVer: c.NVer, V: hist.With(v), Tomb: true, Merged: m.GID,
			Handle: m.Handle, Name: c.Name, Key: c.Key, Stamp: c.Stamp, When: now}
		return a.rd.put(l, t)
	}
	if l != nil {
		// The local record of c's ID (a tombstone, or data the engine removed) gives way.
		if err := a.rd.remove(l); err != nil {
			return err
		}
	}
	rk := a.freshLineage(m, c.GID, false)
	if err := a.rd.remove(m); err != nil {
		return err
	}
	if err := a.rd.put(nil, rk); err != nil {
		return err
	}
	v := a.rd.mint()
	t := &record{GID: m.GID, Ver: v, CVer: m.CVer, NVer: m.NVer, V: m.V.With(v), Tomb: true, Merged: c.GID,
		Handle: m.Handle, Name: m.Name, Key: m.Key, Stamp: m.Stamp, When: now}
	if err := a.rd.put(nil, t); err != nil {
		return err
	}
	a.lineage = c.V
	return a.concurrent(ctx, c, rk)
}

// survivor follows a merged tombstone's chain to the record of the item it was merged into here
// (nil when that item is unknown here).
func (a *applier) survivor(t *record) (*record, error) {
	id := t.Merged
	for range 64 {
		w, err := a.rd.byGID(id)
		if err != nil || w == nil || !w.Tomb || w.Merged.IsZero() || w.Merged == t.GID {
			return w, err
		}
		id = w.Merged
	}
	return nil, nil
}

// freshLineage returns r under the global ID gid with a history of one new version of this
// replica. That version is newer than anything another replica can have seen of this one, and
// the item joining gid was never seen by the other side, so neither history seems to include the
// other. keepLabel keeps the content version as a label (equal labels prove equal content, which
// spares copying content both sides already have); otherwise it is the new version too.
func (a *applier) freshLineage(r *record, gid Version, keepLabel bool) *record {
	v := a.rd.mint()
	f := *r
	f.GID, f.Ver, f.CVer, f.NVer, f.V = gid, v, v, v, Vector{v}
	if keepLabel {
		f.CVer = r.CVer
	}
	if r.Units != nil {
		f.Units = slices.Clone(r.Units)
		for i := range f.Units {
			f.Units[i].Ver = v
		}
	}
	return &f
}

// mergedTomb applies the tombstone of an item merged into another (c.Merged) to the live l:
// the data stays and l carries on under the surviving ID with a fresh lineage (it then meets the
// survivor's versions as a concurrent version), unless the destination already holds the
// survivor (then l is a duplicate and an ordinary delete applies, or an edit beats it).
func (a *applier) mergedTomb(ctx context.Context, c, l *record, dominated bool) error {
	// The survivor may itself have been merged into another since: follow the chain.
	survivor := c.Merged
	var w *record
	for range 64 {
		var err error
		if w, err = a.rd.byGID(survivor); err != nil {
			return err
		}
		if w == nil || !w.Tomb || w.Merged.IsZero() || w.Merged == l.GID {
			break
		}
		survivor = w.Merged
	}
	if w != nil {
		// The survivor is here (or was deleted here): l is a duplicate of it.
		if dominated {
			return a.delete(ctx, c, l)
		}
		return a.keepLocal(c, l, "an edit beats a delete")
	}
	rk := a.freshLineage(l, survivor, true)
	if err := a.rd.remove(l); err != nil {
		return err
	}
	if err := a.rd.put(nil, rk); err != nil {
		return err
	}
	return a.rd.put(nil, tombFrom(c, l))
}
