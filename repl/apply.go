package repl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
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
	// across is set while two items found to be one (mergeIdentity) are settled: their
	// histories are not comparable, so they meet as concurrent versions and the result
	// carries lineage, the surviving ID's own history, instead of a union of both.
	across  bool
	lineage Vector
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
	if c.live() && (l == nil || ((l.Tomb || l.Missing) && !l.V.Contains(c.Ver))) {
		// The item is new here, or gone here: the same item may be here under another ID.
		var m *record
		if m, err = a.mergeCandidate(c); err != nil {
			return err
		}
		if m != nil {
			a.trace("  merge identity with local %v %q", m.GID, m.Name)
			err = a.mergeIdentity(ctx, c, m, l)
		} else {
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
		// A conflict left to the user: c's version is not learned, so every session meets it
		// again (updating the record, never adding one) until the user or a later change
		// settles it. Knowledge that travels in a snapshot must never claim a version the
		// item does not include, or another computer would inherit the conflict unseen.
		a.p.pending = true
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
		err := a.dst().Store.Delete(ctx, l.Handle, l.Stamp)
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
	name, e, clashed, err := a.writeNamed(ctx, c.Name, func(n string) (Entry, error) { return a.write(ctx, c, n, l) })
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
	name, e, clashed, err := a.writeNamed(ctx, c.Name, func(n string) (Entry, error) { return a.write(ctx, c, n, nil) })
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
	e, err := write(name)
	if err == nil || !errors.Is(err, ErrExists) || !a.retry {
		return name, e, false, err
	}
	cn, e, err := writeCopy(name, a.src().Name, a.now(), write)
	if err != nil {
		return "", e, false, err
	}
	a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: name, Rule: a.p.s.cfg.Policy.Rule,
		Kept: a.dst().Name, Copy: cn, Reason: "the name is taken by another item"})
	return cn, e, true, nil
}

// fill completes a destination record from the entry its store returned.
func (a *applier) fill(ctx context.Context, rec *record, e Entry, srcUnits []unitRec) error {
	rec.Handle, rec.Stamp = e.Handle, e.Stamp()
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
func (a *applier) write(ctx context.Context, c *record, name string, l *record) (Entry, error) {
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
	return a.writeFrom(ctx, c.Stamp, name, l, open, units)
}

// writeFrom writes one item into the destination store from open (or units, when both stores
// have change units).
func (a *applier) writeFrom(ctx context.Context, st Stamp, name string, l *record, open func() (io.ReadCloser, error), units func() (Units, error)) (Entry, error) {
	req := WriteRequest{Name: name, Kind: st.Kind, Size: st.Size}
	if st.ModTime != 0 {
		req.ModTime = time.Unix(0, st.ModTime)
	}
	if l != nil {
		req.Handle = l.Handle
		stamp := l.Stamp
		req.Expected = &stamp
	}
	a.p.s.prog.Current = name
	dst := a.dst().Store
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
	r := &countingReader{r: rc, s: a.p.s}
	req.Data = r
	e, err := dst.Write(ctx, req)
	if r.err != nil {
		return e, a.srcErr("read", name, r.err)
	}
	if err != nil {
		return e, a.dstErr("write", name, err)
	}
	return e, nil
}

// countingReader counts content bytes for progress and remembers the source's read error, so a
// failed write can be blamed on the right store.
type countingReader struct {
	r   io.Reader
	s   *session
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.s.prog.BytesDone += int64(n)
	c.s.rep.Bytes += int64(n)
	c.s.progress(false)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

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
		if c.V.Contains(l.CVer) && c.V.Contains(l.NVer) && l.Stamp.Kind != KindFolder {
			// What changed here since is versions only: the deleter saw this content under
			// this name, so the delete stands (and carries both histories back).
			return a.deleteOver(ctx, c, l)
		}
		return a.keepLocal(c, l, "an edit beats a delete")
	case l.Tomb:
		if l.V.Contains(c.CVer) && l.V.Contains(c.NVer) && c.Stamp.Kind != KindFolder {
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
		name, e, clashed, err = a.writeNamed(ctx, name, func(n string) (Entry, error) { return a.write(ctx, c, n, l) })
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
		name, e, clashed, err = a.writeNamed(ctx, name, func(n string) (Entry, error) { return a.writeFrom(ctx, l.Stamp, n, l, sp.open, units) })
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
// version, the same hash, or the same size and bytes.
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

// byPolicy settles two different versions of a live item.
func (a *applier) byPolicy(ctx context.Context, c, l *record) error {
	pol := a.p.s.cfg.Policy
	a.trace("  by policy %v: local wins %v", pol.Rule, a.localWins(c, l))
	switch pol.Rule {
	case Ask:
		return a.recordConflict(c, l)
	case KeepBoth:
		return a.keepBoth(ctx, c, l)
	}
	if a.localWins(c, l) {
		if err := a.keepLocal(c, l, ""); err != nil {
			return err
		}
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: l.Name, Rule: pol.Rule, Kept: a.dst().Name,
			Lost: a.src().Name, Reason: "policy", Dropped: state(c)})
		return nil
	}
	// Reported before the write: if the write stops half-way in a store that cannot write
	// atomically, the version it replaces is gone all the same.
	a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: c.Name, Rule: pol.Rule, Kept: a.src().Name,
		Lost: a.dst().Name, Reason: "policy", Dropped: state(l)})
	v := a.rd.mint()
	return a.update(ctx, c, l, a.joinV(c, l).With(v), v)
}

// keepBoth keeps the newer version under the name and saves the other beside it.
func (a *applier) keepBoth(ctx context.Context, c, l *record) error {
	now := a.now()
	if a.localWins(c, l) {
		// The source's version becomes a new item here, beside ours.
		name, done, err := a.findCopy(ctx, l.Name, a.src().Name, now, c.Stamp, a.src().Store, c.Handle)
		if err != nil {
			return err
		}
		if !done {
			var e Entry
			name, e, err = writeCopy(l.Name, a.src().Name, now, func(n string) (Entry, error) { return a.write(ctx, c, n, nil) })
			if err != nil {
				return err
			}
			if err := a.newItem(ctx, e, name); err != nil {
				return err
			}
		}
		if err := a.keepLocal(c, l, ""); err != nil {
			return err
		}
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: l.Name, Rule: KeepBoth, Kept: a.dst().Name,
			Lost: a.src().Name, Copy: name, Reason: "policy"})
		return nil
	}
	// Ours is older: copy it aside first (nothing is lost if we stop half-way: the next attempt
	// finds the copy), then take theirs.
	name, done, err := a.findCopy(ctx, l.Name, a.dst().Name, now, l.Stamp, a.dst().Store, l.Handle)
	if err != nil {
		return err
	}
	if !done {
		spool, err := a.spool(ctx, l)
		if err != nil {
			return err
		}
		defer spool.close()
		var units func() (Units, error)
		if l.Units != nil {
			if du, ok := a.dst().Store.(UnitStore); ok {
				u, err := du.ReadUnits(ctx, l.Handle)
				if err != nil {
					return a.dstErr("read units of", l.Handle, err)
				}
				units = func() (Units, error) { return u, nil }
			}
		}
		var e Entry
		name, e, err = writeCopy(l.Name, a.dst().Name, now, func(n string) (Entry, error) {
			return a.writeFrom(ctx, l.Stamp, n, nil, spool.open, units)
		})
		if err != nil {
			return err
		}
		if err := a.newItem(ctx, e, name); err != nil {
			return err
		}
	}
	v := a.rd.mint()
	if err := a.update(ctx, c, l, a.joinV(c, l).With(v), v); err != nil {
		return err
	}
	a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: c.Name, Rule: KeepBoth, Kept: a.src().Name,
		Lost: a.dst().Name, Copy: name, Reason: "policy"})
	return nil
}

// findCopy looks for a conflict copy of the version st describes (the item at handle in store) that
// an earlier, interrupted attempt already saved: a recorded item under one of the copy names with
// the same size and modification time, and the same content.
func (a *applier) findCopy(ctx context.Context, name, side string, now time.Time, st Stamp, store Store, handle string) (string, bool, error) {
	for n := 1; n <= maxCopies; n++ {
		cn := copyName(name, side, now, n)
		rec, err := a.rd.byHandle(cn)
		if err != nil {
			return "", false, err
		}
		if rec == nil {
			return "", false, nil
		}
		d := rec.Stamp.ModTime - st.ModTime
		if rec.Missing || rec.Stamp.Kind != st.Kind || rec.Stamp.Size != st.Size || d <= -modSlack || d >= modSlack {
			continue
		}
		if st.Kind == KindFolder {
			return cn, true, nil
		}
		x, err := contentHash(ctx, a.dst().Store, rec.Handle)
		if err != nil {
			return "", false, a.dstErr("read", rec.Handle, err)
		}
		y, err := contentHash(ctx, store, handle)
		if err != nil {
			return "", false, &storeError{side: side, op: "read", name: handle, err: err, dst: store == a.dst().Store}
		}
		if x == y {
			return cn, true, nil
		}
	}
	return "", false, nil
}

// contentHash reads an item through and returns the SHA-256 of its content (one stream at a
// time: a device may not serve two at once).
func contentHash(ctx context.Context, st Store, handle string) ([32]byte, error) {
	rc, err := st.Open(ctx, handle)
	if err != nil {
		return [32]byte{}, err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// newItem records an item the engine created in the destination (a conflict copy) as a change of
// the destination replica, so it propagates.
func (a *applier) newItem(ctx context.Context, e Entry, name string) error {
	v := a.rd.mint()
	rec := &record{GID: v, Ver: v, CVer: v, NVer: v, V: Vector{v}, Name: name, When: a.now().UnixNano()}
	if err := a.fill(ctx, rec, e, nil); err != nil {
		return err
	}
	if rec.Units != nil {
		for i := range rec.Units {
			rec.Units[i].Ver = v
		}
	}
	a.counts().Created++
	return a.rd.put(nil, rec)
}

// spooled is a local item's content copied to a temporary file, so the store is never read and
// written at once.
type spooled struct {
	f *os.File
}

func (s *spooled) open() (io.ReadCloser, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.NopCloser(s.f), nil
}

func (s *spooled) close() {
	name := s.f.Name()
	s.f.Close()
	os.Remove(name)
}

func (a *applier) spool(ctx context.Context, l *record) (*spooled, error) {
	f, err := os.CreateTemp("", "cradle-conflict-*")
	if err != nil {
		return nil, fmt.Errorf("keep both versions of %q: temporary copy: %w", l.Name, err)
	}
	s := &spooled{f: f}
	if l.Stamp.Kind == KindFolder {
		return s, nil
	}
	rc, err := a.dst().Store.Open(ctx, l.Handle)
	if err != nil {
		s.close()
		return nil, a.dstErr("open", l.Handle, err)
	}
	defer rc.Close()
	if _, err := io.Copy(f, rc); err != nil {
		s.close()
		return nil, a.dstErr("copy aside", l.Handle, err)
	}
	return s, nil
}

// copyName is the name a conflict's other version is saved under:
// "dir/report (conflict 2026-11-21 device).txt", and for n > 1
// "dir/report (conflict 2026-11-21 device 2).txt".
func copyName(name, side string, now time.Time, n int) string {
	dir, base := path.Split(name)
	ext := path.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if stem == "" { // ".profile"
		stem, ext = base, ""
	}
	tag := side
	if n > 1 {
		tag = fmt.Sprintf("%s %d", side, n)
	}
	return fmt.Sprintf("%s%s (conflict %s %s)%s", dir, stem, now.Format("2006-01-02"), tag, ext)
}

// maxCopies bounds the names tried for a conflict copy.
const maxCopies = 100

// writeCopy writes a conflict copy under the first free copy name.
func writeCopy(name, side string, now time.Time, write func(name string) (Entry, error)) (string, Entry, error) {
	for n := 1; ; n++ {
		cn := copyName(name, side, now, n)
		e, err := write(cn)
		if err == nil || !errors.Is(err, ErrExists) || n == maxCopies {
			return cn, e, err
		}
	}
}

// mergeUnits merges two concurrent versions of an item unit by unit: a unit changed on one side
// only is taken from that side; a unit changed on both sides is a conflict under the policy.
func (a *applier) mergeUnits(ctx context.Context, c, l *record) error {
	su := a.src().Store.(UnitStore)
	du := a.dst().Store.(UnitStore)
	cu, err := su.ReadUnits(ctx, c.Handle)
	if err != nil {
		return a.srcErr("read units of", c.Handle, err)
	}
	lu, err := du.ReadUnits(ctx, l.Handle)
	if err != nil {
		return a.dstErr("read units of", l.Handle, err)
	}
	names := map[string]bool{}
	for _, u := range c.Units {
		names[u.Name] = true
	}
	for _, u := range l.Units {
		names[u.Name] = true
	}
	type pick struct {
		fromSrc bool
		rec     unitRec
	}
	picks := map[string]pick{}
	var clashes []string
	for name := range names {
		lr, lok := l.unit(name)
		cr, cok := c.unit(name)
		lChanged := lok && (a.across || !c.V.Contains(lr.Ver))
		cChanged := cok && (a.across || !l.V.Contains(cr.Ver))
		switch {
		case lChanged && cChanged && !(lr.Deleted == cr.Deleted && (lr.Deleted || lr.Hash == cr.Hash)):
			clashes = append(clashes, name)
		case cChanged:
			picks[name] = pick{true, cr}
		case lok:
			picks[name] = pick{false, lr}
		default:
			picks[name] = pick{true, cr}
		}
	}
	if len(clashes) > 0 {
		slices.Sort(clashes)
		switch a.p.s.cfg.Policy.Rule {
		case Ask:
			return a.recordConflict(c, l)
		case KeepBoth:
			return a.keepBoth(ctx, c, l)
		}
		fromSrc := !a.localWins(c, l)
		for _, name := range clashes {
			if fromSrc {
				cr, _ := c.unit(name)
				picks[name] = pick{true, cr}
			} else {
				lr, _ := l.unit(name)
				picks[name] = pick{false, lr}
			}
		}
		kept, lost, dropped := a.dst().Name, a.src().Name, state(c)
		if fromSrc {
			kept, lost, dropped = lost, kept, state(l)
		}
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: l.Name, Rule: a.p.s.cfg.Policy.Rule,
			Kept: kept, Lost: lost, Reason: "policy (fields " + strings.Join(clashes, ", ") + ")", Dropped: dropped})
	}
	merged := Units{}
	var recs []unitRec
	changedHere := false
	for name, pk := range picks {
		recs = append(recs, pk.rec)
		if pk.rec.Deleted {
			if _, ok := lu[name]; ok {
				changedHere = true
			}
			continue
		}
		val, ok := lu[name]
		if pk.fromSrc {
			sv, sok := cu[name]
			if !sok {
				continue
			}
			if !ok || string(sv) != string(val) {
				changedHere = true
			}
			val = sv
		} else if !ok {
			continue
		}
		merged[name] = val
	}
	slices.SortFunc(recs, func(x, y unitRec) int { return strings.Compare(x.Name, y.Name) })
	v := a.rd.mint()
	rec := *l
	rec.Ver, rec.V = v, a.joinV(c, l).With(v)
	if !changedHere {
		rec.Units = recs
		return a.rd.put(l, &rec)
	}
	req := WriteRequest{Handle: l.Handle, Name: l.Name, Kind: KindFile, Size: -1, ModTime: a.now()}
	stamp := l.Stamp
	req.Expected = &stamp
	e, err := du.WriteUnits(ctx, req, merged)
	if err != nil {
		return a.dstErr("write", l.Name, err)
	}
	rec.CVer = v
	if err := a.fill(ctx, &rec, e, recs); err != nil {
		return err
	}
	a.counts().Updated++
	return a.rd.put(l, &rec)
}

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
