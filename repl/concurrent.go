package repl

import (
	"context"
	"io"
	"time"
)

// reassert: the content that survives a delete (an edit beats a delete) gets a new content
// version. The survivor claims the delete's version, and a version vector cannot claim one
// version of a replica without the ones before it: a replica that kept its own content over the
// same delete claims them too, and would take the survivor's old content version for one it has
// replaced, and write over the survivor without a conflict. The deleter may also have replaced
// the surviving content before deleting its own (then a replica holding that replacement would
// take it for newer). With a new content version the survivor meets such content as a
// concurrent edit: a conflict, or the policy's decision; a replica that did not touch the item
// since simply takes it.

// keepLocal keeps the destination's version and gives it a new version that includes c, so it
// propagates back over c.
func (a *applier) keepLocal(c, l *record, reason string) error {
	v := a.rd.mint()
	rec := *l
	rec.Ver, rec.V = v, a.joinV(c, l).With(v)
	if c.Tomb && !a.across {
		// An edit that beats a delete goes over the delete only: the deleter's history may
		// hold content this edit never saw, and claiming it would let this edit overwrite
		// that content where it still lives.
		rec.V = l.V.With(c.Ver).With(v)
		rec.CVer = v // see reassert
	}
	if reason != "" {
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: l.Name, Rule: a.p.s.cfg.Policy.Rule,
			Kept: a.dst().Name, Lost: a.src().Name, Reason: reason})
	}
	return a.rd.put(l, &rec)
}

// concurrent settles changes made without knowledge of each other.
func (a *applier) concurrent(ctx context.Context, c, l *record) error {
	switch {
	case c.Tomb && l.Tomb:
		v := a.rd.mint()
		rec := *l
		rec.Ver, rec.V = v, a.joinV(c, l).With(v)
		if rec.Merged.IsZero() {
			rec.Merged = c.Merged
		}
		return a.rd.put(l, &rec)
	case c.Tomb:
		if !c.Merged.IsZero() {
			return a.mergedTomb(ctx, c, l, false)
		}
		if c.V.Contains(l.CVer) && c.V.Contains(l.NVer) && l.Stamp.Kind != KindFolder || sawContent(c, l) {
			// What changed here since is versions only: the deleter saw this content under
			// this name, so the delete stands (and carries both histories back).
			return a.deleteOver(ctx, c, l)
		}
		return a.keepLocal(c, l, "an edit beats a delete")
	case l.Tomb:
		if l.V.Contains(c.CVer) && l.V.Contains(c.NVer) && c.Stamp.Kind != KindFolder || sawContent(l, c) {
			// The source changed versions only, on content and a name the deletion here saw:
			// the delete stands, and goes back over the source's item.
			v := a.rd.mint()
			rec := *l
			rec.Ver, rec.V = v, a.joinV(c, l).With(v)
			return a.rd.put(l, &rec)
		}
		v := a.rd.mint()
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: c.Name, Rule: a.p.s.cfg.Policy.Rule,
			Kept: a.src().Name, Lost: a.dst().Name, Reason: "an edit beats a delete"})
		// The edit goes over the delete only, not over content the deleter had seen.
		cv := c.V.With(l.Ver).With(v)
		cver := c.CVer
		if a.across {
			cv = a.joinV(c, l).With(v)
		} else {
			cver = v // see reassert
		}
		return a.create(ctx, c, l, cv, v, cver)
	}
	if c.Stamp.Kind != l.Stamp.Kind {
		// A file and a folder: no content to choose between, and the folder may hold items.
		return a.keepBothAs(ctx, c, l, l.Stamp.Kind == KindFolder, ReasonKindClash)
	}
	// Content and name are settled apart: an edit on one side and a rename on the other merge.
	// Across two merged items nothing is known of a common past: both count as edited.
	cEdited := a.across || !l.V.Contains(c.CVer) || c.Stamp.Kind != l.Stamp.Kind
	lEdited := a.across || !c.V.Contains(l.CVer) || c.Stamp.Kind != l.Stamp.Kind
	contentFromSrc, identical := false, false
	switch {
	case cEdited && lEdited, !cEdited && !lEdited:
		same, err := a.sameContent(ctx, c, l)
		if err != nil {
			return err
		}
		if !same {
			if c.Units != nil && l.Units != nil {
				if _, ok := a.src().Store.(UnitStore); ok {
					if _, ok := a.dst().Store.(UnitStore); ok {
						return a.mergeUnits(ctx, c, l)
					}
				}
			}
			if a.across && c.Stamp.Kind == KindFile && l.Stamp.Kind == KindFile {
				return a.collide(ctx, c, l)
			}
			return a.byPolicy(ctx, c, l)
		}
		identical = true
	case cEdited:
		contentFromSrc = true
	}
	nameFromSrc := false
	if c.Name != l.Name && !a.across {
		cRenamed := !l.V.Contains(c.NVer)
		lRenamed := !c.V.Contains(l.NVer)
		switch {
		case cRenamed && lRenamed:
			nameFromSrc = c.NVer.Compare(l.NVer) > 0 // two renames: the same pick everywhere
		case cRenamed:
			nameFromSrc = true
		}
	}
	a.trace("  concurrent: content from source %v (identical %v), name from source %v", contentFromSrc, identical, nameFromSrc)
	return a.merge(ctx, c, l, contentFromSrc, identical, nameFromSrc)
}

// merge settles two concurrent versions without a content conflict: the content of one and the
// name of one (maybe the other) make a version that includes both.
func (a *applier) merge(ctx context.Context, c, l *record, contentFromSrc, identical, nameFromSrc bool) error {
	v := a.rd.mint()
	rec := *l
	rec.Ver, rec.V = v, a.joinV(c, l).With(v)
	name, nver := l.Name, l.NVer
	if nameFromSrc {
		name, nver = c.Name, c.NVer
	}
	var (
		e   Entry
		err error
	)
	switch {
	case contentFromSrc:
		var clashed bool
		name, e, clashed, err = a.writeNamed(ctx, name, func(n string) (Entry, error) { return a.write(ctx, c, n, l, a.cause) })
		if clashed {
			nver = a.rd.mint()
			rec.Ver, rec.V = nver, rec.V.With(nver)
		}
		rec.CVer, rec.When = c.CVer, c.When
		a.counts().Updated++
	case name != l.Name:
		// Our content under their name: a move, written from a copy of our content.
		var sp *spooled
		if sp, err = a.spool(ctx, l); err != nil {
			return err
		}
		defer sp.close()
		var units func() (Units, error)
		if du, ok := a.dst().Store.(UnitStore); ok && l.Units != nil {
			u, err := du.ReadUnits(ctx, l.Handle)
			if err != nil {
				return a.dstErr("read units of", l.Handle, err)
			}
			units = func() (Units, error) { return u, nil }
		}
		var clashed bool
		name, e, clashed, err = a.writeNamed(ctx, name, func(n string) (Entry, error) { return a.writeFrom(ctx, l, nil, n, l, CauseNone, sp.open, units) })
		if clashed {
			nver = a.rd.mint()
			rec.Ver, rec.V = nver, rec.V.With(nver)
		}
		if identical {
			rec.CVer = c.CVer
		}
		a.counts().Renamed++
	default:
		// Our content and name: only the versions change.
		if identical {
			rec.CVer = c.CVer // equal content: take the source's label so it is not sent back
		}
		a.counts().VersionOnly++
		return a.rd.put(l, &rec)
	}
	if err != nil {
		return err
	}
	rec.Name, rec.NVer, rec.Missing = name, nver, false
	units := l.Units
	if contentFromSrc {
		units = c.Units
	}
	if err := a.fill(ctx, &rec, e, units); err != nil {
		return err
	}
	return a.rd.put(l, &rec)
}

// sameContent reports whether c's and l's items hold the same content: the same content
// version, the same hash, or the same bytes. Hashes read on the way are kept in the records.
func (a *applier) sameContent(ctx context.Context, c, l *record) (bool, error) {
	if c.Stamp.Kind != l.Stamp.Kind {
		return false, nil
	}
	if c.Stamp.Kind == KindFolder || c.CVer == l.CVer {
		return true, nil
	}
	if c.Stamp.Size != l.Stamp.Size {
		return false, nil
	}
	if c.Stamp.Hash != "" && c.Stamp.Hash == l.Stamp.Hash {
		return true, nil
	}
	if c.Units != nil && l.Units != nil && sameUnits(c.Units, l.Units) {
		return true, nil
	}
	if c.hasSum() && l.hasSum() {
		return c.Sum == l.Sum, nil
	}
	if c.Units == nil && l.Units == nil {
		// Read what is not known yet: the hashes are worth keeping.
		if err := a.learnContent(ctx, a.src().Store, a.rs, c, a.srcErr); err != nil {
			return false, err
		}
		if err := a.learnContent(ctx, a.dst().Store, a.rd, l, a.dstErr); err != nil {
			return false, err
		}
		if c.hasSum() && l.hasSum() {
			return c.Sum == l.Sum, nil
		}
	}
	rc, err := a.src().Store.Open(ctx, c.Handle)
	if err != nil {
		return false, a.srcErr("open", c.Handle, err)
	}
	defer rc.Close()
	rl, err := a.dst().Store.Open(ctx, l.Handle)
	if err != nil {
		return false, a.dstErr("open", l.Handle, err)
	}
	defer rl.Close()
	same, err := sameStreams(rc, rl)
	if err != nil {
		return false, &storeError{side: a.src().Name + " and " + a.dst().Name, op: "compare", name: l.Name, err: err}
	}
	return same, nil
}

// learnContent reads rec's content from st and keeps its hash in rec (replica r), unless known.
func (a *applier) learnContent(ctx context.Context, st Store, r *rtx, rec *record, blame func(op, name string, err error) error) error {
	if rec.hasSum() || !rec.live() || rec.Stamp.Kind != KindFile {
		return nil
	}
	sum, ok, err := readSum(ctx, st, entryOf(rec))
	if err != nil {
		return blame("read", rec.Handle, err)
	}
	if !ok {
		return nil
	}
	return a.learnSum(r, rec, sum)
}

func sameStreams(x, y io.Reader) (bool, error) {
	bx, by := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		nx, ex := io.ReadFull(x, bx)
		ny, ey := io.ReadFull(y, by)
		if nx != ny || string(bx[:nx]) != string(by[:ny]) {
			return false, nil
		}
		xEnd := ex == io.EOF || ex == io.ErrUnexpectedEOF
		yEnd := ey == io.EOF || ey == io.ErrUnexpectedEOF
		if ex != nil && !xEnd {
			return false, ex
		}
		if ey != nil && !yEnd {
			return false, ey
		}
		if xEnd || yEnd {
			return xEnd == yEnd, nil
		}
	}
}

// localWins tells which version a deciding rule keeps: true for the destination's.
func (a *applier) localWins(c, l *record) bool {
	pol := a.p.s.cfg.Policy
	if pol.Rule == Wins {
		return pol.Winner == a.dst().Name
	}
	if l.Stamp.ModTime != c.Stamp.ModTime {
		return l.Stamp.ModTime > c.Stamp.ModTime
	}
	return l.Ver.Compare(c.Ver) > 0
}

func state(r *record) ItemState {
	s := ItemState{Exists: r.live(), Kind: r.Stamp.Kind, Size: r.Stamp.Size, Handle: r.Handle}
	if r.Stamp.ModTime != 0 {
		s.ModTime = time.Unix(0, r.Stamp.ModTime)
	}
	return s
}

// collide settles two different files met as one item with no history joining them (an item
// merged before content decided such matches): both are kept under every policy, the policy only
// deciding which keeps the name (see collision.go).
func (a *applier) collide(ctx context.Context, c, l *record) error {
	a.trace("  collision: two different items named %q", l.Name)
	return a.keepBoth(ctx, c, l, ReasonCollision)
}

// byPolicy settles two different versions of a live item.
func (a *applier) byPolicy(ctx context.Context, c, l *record) error {
	pol := a.p.s.cfg.Policy
	a.trace("  by policy %v: local wins %v", pol.Rule, a.localWins(c, l))
	switch pol.Rule {
	case Ask:
		return a.recordConflict(c, l)
	case KeepBoth:
		return a.keepBoth(ctx, c, l, "policy")
	}
	if a.localWins(c, l) {
		if err := a.keepLocal(c, l, ""); err != nil {
			return err
		}
		// The version kept here goes over the other side's in a later pass: by policy.
		a.p.s.setCause(l.GID, CausePolicy)
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: l.Name, Rule: pol.Rule, Kept: a.dst().Name,
			Lost: a.src().Name, Reason: "policy", Dropped: state(c)})
		return nil
	}
	// Reported before the write: if the write stops half-way in a store that cannot write
	// atomically, the version it replaces is gone all the same.
	a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: c.Name, Rule: pol.Rule, Kept: a.src().Name,
		Lost: a.dst().Name, Reason: "policy", Dropped: state(l)})
	a.cause = a.p.s.causeOf(c.GID, CausePolicy)
	v := a.rd.mint()
	return a.update(ctx, c, l, a.joinV(c, l).With(v), v)
}

// sawContent tells whether the deleter whose tombstone is t had the very content the live x holds,
// under x's name: then x is no edit that could beat the delete, whatever its versions say (a copy
// one replica kept, or took again, of what the deleter deleted).
func sawContent(t, x *record) bool {
	return t.Tomb && x.live() && x.Stamp.Kind == KindFile && t.Stamp.Kind == KindFile &&
		t.hasSum() && x.hasSum() && t.Sum == x.Sum && t.Name == x.Name
}
