package repl

import (
	"context"
	"io"
	"time"
)

// Collisions: two different items that took one name, one on each side, with no history joining
// them (made apart between two syncs, or found after the metadata was lost): different files, or
// a file and a folder. They are two items, and stay two: both are kept under every policy, and
// the policy only decides which keeps the name (Wins its winner; the others, Ask included, the
// newer; a folder always, since it holds other items). The other moves aside under a conflict
// name, "plan (conflict 2026-11-21 device).txt", as a rename of that item, so a later edit of it
// on either side follows it there. (Merging the two into one item and settling their contents as
// concurrent versions made a copy that was a new item: an edit of the original on the other side
// met the merge again, and each such meeting made another copy.)

// ReasonCollision is the Decision.Reason of a collision: both kept, no version dropped.
const ReasonCollision = "two different items with one name"

// collidable tells whether the source's c and the destination's m, found under one natural key,
// are two items rather than one: different files (contents that merge field by field are one
// item's), or a file and a folder.
func (a *applier) collidable(ctx context.Context, c, m *record) (bool, error) {
	if c.Stamp.Kind != m.Stamp.Kind {
		return true, nil
	}
	if c.Stamp.Kind == KindFolder {
		return false, nil
	}
	if c.Units != nil && m.Units != nil {
		if _, ok := a.src().Store.(UnitStore); ok {
			if _, ok := a.dst().Store.(UnitStore); ok {
				return false, nil
			}
		}
	}
	same, err := a.sameContent(ctx, c, m)
	return !same, err
}

// collideApart settles the collision of the source's new item c with the destination's m (l is
// the destination's record of c's ID: nil, a tombstone, or removed data).
func (a *applier) collideApart(ctx context.Context, c, m, l *record) error {
	srcKeeps := a.srcKeepsName(c, m)
	a.trace("  collision of %v and local %v on %q: source keeps the name %v", c.GID, m.GID, m.Name, srcKeeps)
	now := a.now()
	if srcKeeps {
		// Ours moves aside, then theirs takes the name.
		cn, err := a.moveAside(ctx, m, now)
		if err != nil {
			return err
		}
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: c.Name, Rule: a.keptRule(), Kept: a.src().Name,
			Lost: a.dst().Name, Copy: cn, Reason: ReasonCollision})
		return a.settle(ctx, c, l)
	}
	// Theirs comes in beside ours, renamed: the rename goes back to the source.
	name, e, err := writeCopy(c.Name, a.src().Name, now, func(n string) (Entry, error) { return a.write(ctx, c, n, nil, CauseNone) })
	if err != nil {
		return err
	}
	v := a.rd.mint()
	rec := &record{GID: c.GID, Ver: v, CVer: c.CVer, NVer: v, V: c.V.With(v), Name: name, When: c.When}
	if err := a.fill(ctx, rec, e, c.Units); err != nil {
		return err
	}
	a.counts().Created++
	a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: m.Name, Rule: a.keptRule(), Kept: a.dst().Name,
		Lost: a.src().Name, Copy: name, Reason: ReasonCollision})
	return a.rd.put(l, rec)
}

// srcKeepsName tells which of two colliding items keeps the name: a folder; else the winner of
// Wins; else the newer (ties: the smaller global ID, the same answer everywhere).
func (a *applier) srcKeepsName(c, m *record) bool {
	switch {
	case c.Stamp.Kind != m.Stamp.Kind:
		return c.Stamp.Kind == KindFolder
	case a.p.s.cfg.Policy.Rule == Wins:
		return a.p.s.cfg.Policy.Winner == a.src().Name
	case c.Stamp.ModTime != m.Stamp.ModTime:
		return c.Stamp.ModTime > m.Stamp.ModTime
	}
	return c.GID.Compare(m.GID) < 0
}

// moveAside renames the destination's file m to a conflict name, with a new version whose name
// change goes back to the source, and returns the name.
func (a *applier) moveAside(ctx context.Context, m *record, now time.Time) (string, error) {
	sp, err := a.spool(ctx, m)
	if err != nil {
		return "", err
	}
	defer sp.close()
	var units func() (Units, error)
	if du, ok := a.dst().Store.(UnitStore); ok && m.Units != nil {
		u, err := du.ReadUnits(ctx, m.Handle)
		if err != nil {
			return "", a.dstErr("read units of", m.Handle, err)
		}
		units = func() (Units, error) { return u, nil }
	}
	name, e, err := writeCopy(m.Name, a.dst().Name, now, func(n string) (Entry, error) {
		return a.writeFrom(ctx, m, nil, n, m, CauseNone, func() (io.ReadCloser, error) { return sp.open() }, units)
	})
	if err != nil {
		return "", err
	}
	v := a.rd.mint()
	rec := *m
	rec.Ver, rec.NVer, rec.V, rec.Name = v, v, m.V.With(v), name
	if err := a.fill(ctx, &rec, e, m.Units); err != nil {
		return "", err
	}
	a.counts().Renamed++
	return name, a.rd.put(m, &rec)
}
