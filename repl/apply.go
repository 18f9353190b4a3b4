package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// applier applies one pass's changes inside a batch transaction. Every store call happens with the
// transaction open; its metadata is committed with the batch, after the data is written.
type applier struct {
	p      *pass
	rs, rd *rtx
	tx     *bolt.Tx
	retry  bool
	asked  bool // the last settle recorded a conflict under Ask
	// written is what the last write streamed (fill records it).
	written writing
	// across is set while two items found to be one (mergeIdentity) are settled: their
	// histories are not comparable, so they meet as concurrent versions and the result
	// carries lineage, the surviving ID's own history, instead of a union of both.
	across  bool
	lineage Vector
	// cause is why the change being applied replaces what the destination holds (set by apply
	// for each change; the policy's decisions change it).
	cause Cause
	// movingSame is set while a file is renamed or moved with its content unchanged: the
	// destination store may move its own file (WriteRequest.SameContent).
	movingSame bool
}

// joinV is the made-with knowledge of a version settling c and l: both histories, or across
// two merged items the survivor's own.
func (a *applier) joinV(c, l *record) Vector {
	if a.across {
		return slices.Clone(a.lineage)
	}
	return l.V.Merge(c.V)
}

func (a *applier) src() Side       { return a.p.src }
func (a *applier) dst() Side       { return a.p.dst }
func (a *applier) counts() *Counts { return a.p.s.rep.counts(a.p.dst.Name) }
func (a *applier) now() time.Time  { return a.p.s.cfg.Now() }

// tracef, when set (by tests), is told each decision the applier takes.
var tracef func(format string, args ...any)

func (a *applier) trace(format string, args ...any) {
	if tracef != nil {
		tracef("%s->%s: "+format, append([]any{a.src().Name, a.dst().Name}, args...)...)
	}
}

// apply brings one source change to the destination.
func (a *applier) apply(ctx context.Context, ref changeRef) error {
	if ref.forgotten {
		return a.applyForgotten(ctx, ref)
	}
	c, err := a.rs.byGID(ref.gid)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("replica %q lost item %v during the session: %w", a.rs.name, ref.gid, errMalformed)
	}
	l, err := a.rd.byGID(ref.gid)
	if err != nil {
		return err
	}
	a.asked = false
	a.cause = a.p.s.causeOf(c.GID, CauseUpdate)
	a.trace("apply %v %q ver %v tomb %v merged %v; local %s", c.GID, c.Name, c.Ver, c.Tomb, c.Merged, describe(l))
	if c.live() && l != nil && l.Tomb && !l.Merged.IsZero() && !l.V.Contains(c.Ver) && !c.V.Contains(l.Ver) {
		// A change of an item merged here into another, made before the source knew: it is a
		// change of the survivor. (A source that knew of the merge and still has the item
		// kept it as an item of its own: that is settled as usual.)
		w, err := a.survivor(l)
		if err != nil {
			return err
		}
		if w.live() && w.GID.Compare(c.GID) < 0 {
			a.trace("  change of an item merged into %v", w.GID)
			if err := a.mergeIdentity(ctx, c, w, l); err != nil {
				return err
			}
			return a.settled(c)
		}
	}
	if a.retry {
		// The change was refused because its name is taken here: by the same content, an
		// earlier write of this item that was interrupted (a rename whose old name was never
		// removed) or the same file made on both sides; then the two are one item.
		if m, err := a.sameAtName(ctx, c, l); err != nil || m != nil {
			if err != nil {
				return err
			}
			a.trace("  name taken by the same content: one item with local %v %q", m.GID, m.Name)
			if err := a.mergeIdentity(ctx, c, m, l); err != nil {
				return err
			}
			return a.settled(c)
		}
	}
	if err := a.clearPath(ctx, c); err != nil {
		return err
	}
	if c.live() && (l == nil || ((l.Tomb || l.Missing) && !l.V.Contains(c.Ver))) {
		// The item is new here, or gone here: the same item may be here under another ID.
		var m *record
		if m, err = a.mergeCandidate(c); err != nil {
			return err
		}
		var apart bool
		if m != nil {
			if apart, err = a.collidable(ctx, c, m); err != nil {
				return err
			}
		}
		switch {
		case apart:
			err = a.collideApart(ctx, c, m, l)
		case m != nil:
			a.trace("  merge identity with local %v %q", m.GID, m.Name)
			err = a.mergeIdentity(ctx, c, m, l)
		default:
			err = a.settle(ctx, c, l)
		}
	} else {
		err = a.settle(ctx, c, l)
	}
	if err != nil {
		return err
	}
	return a.settled(c)
}

// settled records that c was dealt with: its version is learned, unless a conflict was left to
// the user.
func (a *applier) settled(c *record) error {
	if a.asked {
		// A conflict left to the user: c's version stays unknown here (a hole in the knowledge
		// once the pass learns the source's), so every session meets it again (updating the
		// record, never adding one) until the user or a later change settles it. Knowledge
		// that travels in a snapshot must never claim a version the item does not include, or
		// another computer would inherit the conflict unseen.
		a.p.holes = append(a.p.holes, c.Ver)
		return nil
	}
	a.rd.learn(c.Ver)
	return a.p.s.hf.dropConflict(a.tx, a.p.s.a.Name, a.p.s.b.Name, c.GID)
}

func describe(r *record) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%v %q ver %v V %v tomb %v missing %v", r.GID, r.Name, r.Ver, r.V, r.Tomb, r.Missing)
}

// settle decides between the source's version c and the destination's l (nil when the item is
// new here) and applies the outcome.
func (a *applier) settle(ctx context.Context, c, l *record) error {
	switch {
	case l == nil:
		if c.Tomb {
			return a.rd.put(nil, tombFrom(c, nil))
		}
		return a.create(ctx, c, nil, c.V, c.Ver, c.CVer)
	case l.Missing:
		return a.supersede(ctx, c, l) // nothing here to keep: the engine removed a partial write
	case l.Ver == c.Ver:
		return nil
	case c.V.Contains(l.Ver):
		return a.supersede(ctx, c, l)
	case l.V.Contains(c.Ver):
		return nil // the destination already has a later version
	}
	return a.concurrent(ctx, c, l)
}

// tombFrom is the destination's tombstone for the source's tombstone c.
func tombFrom(c, l *record) *record {
	t := &record{GID: c.GID, Ver: c.Ver, CVer: c.CVer, NVer: c.NVer, V: c.V, Tomb: true, Merged: c.Merged,
		Handle: c.Name, Name: c.Name, Key: c.Key, Stamp: c.Stamp, When: c.When}
	if l != nil {
		t.Handle, t.Stamp, t.Key = l.Handle, l.Stamp, l.Key
	}
	return t
}

// supersede applies c, which includes everything l had.
func (a *applier) supersede(ctx context.Context, c, l *record) error {
	if c.Tomb {
		switch {
		case l.Tomb:
			return a.rd.put(l, tombFrom(c, l))
		case !c.Merged.IsZero():
			return a.mergedTomb(ctx, c, l, true)
		}
		return a.delete(ctx, c, l)
	}
	if l.Tomb || l.Missing {
		return a.create(ctx, c, l, c.V, c.Ver, c.CVer)
	}
	return a.update(ctx, c, l, c.V, c.Ver)
}

// delete removes l's item from the destination store and keeps a tombstone.
func (a *applier) delete(ctx context.Context, c, l *record) error {
	return a.deleteAs(ctx, c, l, tombFrom(c, l))
}

// deleteOver deletes l's item for the concurrent tombstone c whose deleter saw l's content, and
// keeps a tombstone with a version that includes both, so the delete goes back over l's history.
func (a *applier) deleteOver(ctx context.Context, c, l *record) error {
	v := a.rd.mint()
	t := tombFrom(c, l)
	t.Ver, t.V = v, a.joinV(c, l).With(v)
	return a.deleteAs(ctx, c, l, t)
}

// deleteAs removes l's item from the destination store for c and keeps the tombstone t.
func (a *applier) deleteAs(ctx context.Context, c, l, t *record) error {
	if !l.Missing {
		err := DeleteItem(ctx, a.dst().Store, l.Handle, l.Stamp, a.p.s.causeOf(c.GID, CauseDelete))
		switch {
		case err == nil:
			a.counts().Deleted++
		case errors.Is(err, ErrNotFound):
			// Already gone: the user deleted it too.
		case errors.Is(err, ErrNotEmpty):
			// The folder holds items the source never saw: they win over the delete.
			return a.keepLocal(c, l, "the folder holds new items")
		default:
			return a.dstErr("delete", l.Handle, err)
		}
	}
	return a.rd.put(l, t)
}

// update writes c's content and name over l's item (or only its versions when neither changed)
// and records it with version ver and made-with knowledge v.
func (a *applier) update(ctx context.Context, c, l *record, v Vector, ver Version) error {
	rec := *l
	rec.Ver, rec.V, rec.CVer, rec.NVer, rec.Name, rec.When, rec.Missing = ver, v, c.CVer, c.NVer, c.Name, c.When, false
	contentChanged := c.CVer != l.CVer || c.Stamp.Kind != l.Stamp.Kind
	renamed := c.Name != l.Name
	if !contentChanged && !renamed {
		rec.Units = unitsVersionOnly(c.Units, l.Units)
		a.counts().VersionOnly++
		return a.rd.put(l, &rec)
	}
	cause := a.cause
	if !contentChanged {
		cause = CauseNone // a rename: the content stays
		if c.Stamp.Kind == KindFile && l.Stamp.Kind == KindFile && !l.Missing {
			// The destination may move its own file instead of receiving the content again.
			a.movingSame = true
			defer func() { a.movingSame = false }()
		}
	}
	name, e, clashed, err := a.writeNamed(ctx, c.Name, func(n string) (Entry, error) { return a.write(ctx, c, n, l, cause) })
	if err != nil && a.retry && errors.Is(err, ErrNotEmpty) && c.Stamp.Kind == KindFile && l.Stamp.Kind == KindFolder {
		// A folder that became a file there still holds items here after the pass deleted what
		// it could (edits that beat the deletes): the folder keeps the name, the file moves aside.
		return a.keepBothAs(ctx, c, l, true, ReasonKindClash)
	}
	if err != nil {
		return err
	}
	if clashed {
		rec.Ver = a.rd.mint()
		rec.V, rec.NVer, rec.Name = v.With(rec.Ver), rec.Ver, name
	}
	if err := a.fill(ctx, &rec, e, c.Units); err != nil {
		return err
	}
	if !contentChanged && !rec.hasSum() && l.hasSum() && e.Kind == KindFile && c.Stamp.Kind == KindFile {
		// Moved in place, not streamed: the content is the one it had. A file the user saved
		// between the store's check of its stamp and the move has another stamp: the record
		// keeps the one it knew, so the next detection sees the change and reads the content.
		rec.Sum = l.Sum
		if StampChanged(l.Stamp, e) {
			rec.Stamp = l.Stamp
		}
	}
	if contentChanged {
		a.counts().Updated++
	} else {
		a.counts().Renamed++
	}
	return a.rd.put(l, &rec)
}

// create writes c's item anew in the destination (l is nil, a tombstone, or a record whose data
// the engine removed).
func (a *applier) create(ctx context.Context, c, l *record, v Vector, ver, cver Version) error {
	name, e, clashed, err := a.writeNamed(ctx, c.Name, func(n string) (Entry, error) { return a.write(ctx, c, n, nil, CauseNone) })
	if err != nil {
		return err
	}
	if clashed {
		ver = a.rd.mint()
		v = v.With(ver)
	}
	nver := c.NVer
	if name != c.Name {
		nver = ver
	}
	rec := &record{GID: c.GID, Ver: ver, CVer: cver, NVer: nver, V: v, Name: name, When: c.When}
	if err := a.fill(ctx, rec, e, c.Units); err != nil {
		return err
	}
	a.counts().Created++
	return a.rd.put(l, rec)
}

// writeNamed writes an item under name. When that name belongs to another item here, one the
// source knows as a different item (so it is no first-sync match), and looking again did not
// clear it (this is the retry), both are kept: this one under a conflict name, which propagates
// back (clashed is true and the caller gives the item a new version).
func (a *applier) writeNamed(ctx context.Context, name string, write func(name string) (Entry, error)) (string, Entry, bool, error) {
	if to := a.p.underAside(name); to != name {
		// Its folder is under a conflict name here: the item follows it, and the new name
		// goes back to the source like the folder's.
		e, err := write(to)
		return to, e, err == nil, err
	}
	e, err := write(name)
	if err == nil || !errors.Is(err, ErrExists) || !a.retry {
		return name, e, false, err
	}
	cn, e, err := writeCopy(name, a.src().Name, a.now(), write)
	if err != nil {
		return "", e, false, err
	}
	if e.Kind == KindFolder {
		if a.p.aside == nil {
			a.p.aside = map[string]string{}
		}
		a.p.aside[name] = cn
	}
	a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: name, Rule: a.p.s.cfg.Policy.Rule,
		Kept: a.dst().Name, Copy: cn, Reason: "the name is taken by another item"})
	return cn, e, true, nil
}

// fill completes a destination record from the entry its store returned, and what the write
// streamed: the content's hash, and whether the stamp is racily clean.
func (a *applier) fill(ctx context.Context, rec *record, e Entry, srcUnits []unitRec) error {
	rec.Handle, rec.Stamp = e.Handle, e.Stamp()
	rec.Sum, rec.Racy = [32]byte{}, false
	if a.written.ok && e.Kind == KindFile && e.Size == a.written.n {
		rec.Sum = a.written.sum
	}
	if !a.written.start.IsZero() {
		rec.Racy = racyAt(e, a.written.start, a.written.g)
	} else {
		g, now := clockOf(a.dst().Store)
		rec.Racy = racyAt(e, now, g)
	}
	a.written = writing{}
	key, err := a.dst().Store.NaturalKey(ctx, e)
	if err != nil {
		return a.dstErr("natural key of", e.Handle, err)
	}
	rec.Key = key
	us, ok := a.dst().Store.(UnitStore)
	if !ok || e.Kind != KindFile {
		rec.Units = nil
		return nil
	}
	units, err := us.ReadUnits(ctx, e.Handle)
	if err != nil {
		return a.dstErr("read units of", e.Handle, err)
	}
	rec.Units = unitsAfterWrite(srcUnits, units, rec.Ver)
	return nil
}

// unitsAfterWrite gives the units now in a destination item the versions of the source's units
// (a unit the source did not describe gets ver), with hashes of the destination's own values.
func unitsAfterWrite(src []unitRec, now Units, ver Version) []unitRec {
	out := make([]unitRec, 0, len(now))
	for name, val := range now {
		u := unitRec{Name: name, Ver: ver, Hash: unitHash(val)}
		if i, ok := slices.BinarySearchFunc(src, name, cmpUnitName); ok && !src[i].Deleted {
			u.Ver = src[i].Ver
		}
		out = append(out, u)
	}
	for _, s := range src {
		if _, ok := now[s.Name]; !ok && s.Deleted {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(x, y unitRec) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// unitsVersionOnly takes the source's unit versions and the destination's hashes (content equal).
func unitsVersionOnly(src, local []unitRec) []unitRec {
	if src == nil || local == nil {
		return local
	}
	out := slices.Clone(src)
	for i := range out {
		if j, ok := slices.BinarySearchFunc(local, out[i].Name, cmpUnitName); ok && !out[i].Deleted && !local[j].Deleted {
			out[i].Hash = local[j].Hash
		}
	}
	return out
}

func cmpUnitName(u unitRec, n string) int { return strings.Compare(u.Name, n) }

// dstErr wraps a destination store's error.
func (a *applier) dstErr(op, name string, err error) error {
	return &storeError{side: a.dst().Name, op: op, name: name, err: err, dst: true}
}

func (a *applier) srcErr(op, name string, err error) error {
	return &storeError{side: a.src().Name, op: op, name: name, err: err}
}

// write writes the source item c into the destination under name, over l's item when l is set
// (with l's stamp as the expected one), and returns the destination's entry.
func (a *applier) write(ctx context.Context, c *record, name string, l *record, cause Cause) (Entry, error) {
	if c.Racy && c.Units == nil {
		// A racily clean source may be saved again within its stamp's tick while it is read,
		// and only its content would tell: its hash, read first, is what the copy must match.
		if err := a.learnContent(ctx, a.src().Store, a.rs, c, a.srcErr); err != nil {
			return Entry{}, err
		}
	}
	open := func() (io.ReadCloser, error) {
		rc, err := a.src().Store.Open(ctx, c.Handle)
		if err != nil {
			return nil, a.srcErr("open", c.Handle, err)
		}
		return rc, nil
	}
	var units func() (Units, error)
	if su, ok := a.src().Store.(UnitStore); ok && c.Units != nil {
		units = func() (Units, error) {
			u, err := su.ReadUnits(ctx, c.Handle)
			if err != nil {
				return nil, a.srcErr("read units of", c.Handle, err)
			}
			return u, nil
		}
	}
	e, err := a.writeFrom(ctx, c, a.src().Store, name, l, cause, open, units)
	if err == nil && a.written.ok {
		err = a.learnSum(a.rs, c, a.written.sum)
	}
	if a.written.unlike {
		// Its content is no longer the recorded one although its stamp may say so: detection
		// must read it next time, or the item would stay unsent (and its edit unseen) forever.
		if serr := a.suspect(a.rs, c); serr != nil {
			return e, errors.Join(err, serr)
		}
	}
	return e, err
}

// writing is what the last write streamed: the hash of the content and the destination store's
// time before it began (fill uses them for the destination's record).
type writing struct {
	sum    [32]byte
	n      int64 // bytes streamed
	ok     bool
	unlike bool // the source's content differed from its recorded hash
	start  time.Time
	g      time.Duration
}

// writeFrom writes the item src describes into the destination store from open (or units, when
// both stores have change units). store is where open reads from, asked again at the end to
// vouch for the content (nil for a copy the engine spooled itself).
func (a *applier) writeFrom(ctx context.Context, src *record, store Store, name string, l *record, cause Cause, open func() (io.ReadCloser, error), units func() (Units, error)) (Entry, error) {
	st := src.Stamp
	req := WriteRequest{Name: name, Kind: st.Kind, Size: st.Size}
	if st.ModTime != 0 {
		req.ModTime = time.Unix(0, st.ModTime)
	}
	if l != nil {
		req.Handle = l.Handle
		stamp := l.Stamp
		req.Expected = &stamp
		req.Cause = cause
		req.SameContent = a.movingSame && st.Kind == KindFile
	}
	a.p.s.prog.Current = name
	dst := a.dst().Store
	a.written = writing{}
	a.written.g, a.written.start = clockOf(dst)
	if st.Kind == KindFolder {
		req.Size = 0
		e, err := dst.Write(ctx, req)
		if err != nil {
			return e, a.dstErr("write", name, err)
		}
		return e, nil
	}
	if du, ok := dst.(UnitStore); ok && units != nil {
		u, err := units()
		if err != nil {
			return Entry{}, err
		}
		req.Size = -1
		e, err := du.WriteUnits(ctx, req, u)
		if err != nil {
			return e, a.dstErr("write", name, err)
		}
		// No stream to count: the item's size is done at once (the plan counted it).
		a.p.s.prog.BytesDone += st.Size
		a.p.s.rep.Bytes += st.Size
		a.p.s.progress(false)
		return e, nil
	}
	rc, err := open()
	if err != nil {
		return Entry{}, err
	}
	defer rc.Close()
	r := newSourceReader(ctx, a.p.s, store, src, rc)
	req.Data = r
	e, err := dst.Write(ctx, req)
	a.written.unlike = r.unlike
	if r.err != nil {
		return e, a.srcErr("read", name, r.err)
	}
	if err != nil {
		return e, a.dstErr("write", name, err)
	}
	a.written.sum, a.written.ok = r.sum()
	a.written.n = r.n
	return e, nil
}

// suspect marks rec racy in replica r, when the replica still holds rec as it is, so that the
// next detection compares its content whatever its stamp says.
func (a *applier) suspect(r *rtx, rec *record) error {
	cur, err := r.byGID(rec.GID)
	if err != nil || cur == nil || cur.Ver != rec.Ver || cur.Stamp != rec.Stamp || cur.Handle != rec.Handle || cur.Racy || !cur.live() {
		return err
	}
	n := *cur
	n.Racy = true
	rec.Racy = true
	return r.put(cur, &n)
}

// learnSum records sum as the content hash of rec in replica r, when the replica still holds
// rec as it is and did not know its hash.
func (a *applier) learnSum(r *rtx, rec *record, sum [32]byte) error {
	if rec.hasSum() || rec.Tomb || rec.Missing {
		return nil
	}
	cur, err := r.byGID(rec.GID)
	if err != nil || cur == nil || cur.Ver != rec.Ver || cur.Stamp != rec.Stamp || cur.Handle != rec.Handle || cur.hasSum() || !cur.live() {
		return err
	}
	n := *cur
	n.Sum = sum
	rec.Sum = sum
	return r.put(cur, &n)
}
