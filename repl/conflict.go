package repl

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Conflict is a pending conflict recorded under the Ask policy: both sides changed an item without
// knowing of the other's change. Nothing was overwritten; each side keeps its version until
// Resolve. A later edit on either side updates the record rather than adding one.
type Conflict struct {
	ID       string
	Name     string // the item's name (as side a calls it)
	Sides    [2]ConflictSide
	Detected time.Time
	Updated  time.Time
	// Pending is the choice given to Resolve (a side's name or ResolveBoth) while it waits for
	// the next Sync; empty while the conflict waits for the user.
	Pending string

	gid Version
}

// ConflictSide is one side's version in a Conflict.
type ConflictSide struct {
	Side string // the replica's name: "desktop", "device"
	Name string // the item's name on this side
	ItemState
	ver Version
}

// Side returns the ConflictSide of the named side.
func (c Conflict) Side(name string) (ConflictSide, bool) {
	for _, s := range c.Sides {
		if s.Side == name {
			return s, true
		}
	}
	return ConflictSide{}, false
}

// ResolveBoth is Resolve's choice to keep both versions.
const ResolveBoth = "both"

// ErrNoConflict means Resolve was given an ID no pending conflict has.
var ErrNoConflict = errors.New("no such conflict")

func pairKey(a, b string, gid Version) []byte {
	if b < a {
		a, b = b, a
	}
	k := make([]byte, 0, len(a)+len(b)+2+versionKeyLen)
	k = append(k, a...)
	k = append(k, 0)
	k = append(k, b...)
	k = append(k, 0)
	return append(k, gid.key()...)
}

const conflictFormat = 1

func (c *Conflict) encode() []byte {
	b := []byte{conflictFormat}
	b = appendString(b, c.Name)
	b = appendVersion(b, c.gid)
	b = appendVarint(b, c.Detected.UnixNano())
	b = appendVarint(b, c.Updated.UnixNano())
	b = appendString(b, c.Pending)
	for _, s := range c.Sides {
		b = appendString(b, s.Side)
		b = appendString(b, s.Name)
		b = appendString(b, s.Handle)
		ex := byte(0)
		if s.Exists {
			ex = 1
		}
		b = append(b, ex, byte(s.Kind))
		b = appendVarint(b, s.Size)
		var mt int64
		if !s.ModTime.IsZero() {
			mt = s.ModTime.UnixNano()
		}
		b = appendVarint(b, mt)
		b = appendVersion(b, s.ver)
	}
	return b
}

func decodeConflict(id uint64, b []byte) (*Conflict, error) {
	d := decoder{b: b}
	if d.byte() != conflictFormat && d.err == nil {
		d.fail("conflict record format")
	}
	c := &Conflict{ID: strconv.FormatUint(id, 10)}
	c.Name = d.string()
	c.gid = d.version()
	c.Detected = time.Unix(0, d.varint())
	c.Updated = time.Unix(0, d.varint())
	c.Pending = d.string()
	for i := range c.Sides {
		s := &c.Sides[i]
		s.Side, s.Name, s.Handle = d.string(), d.string(), d.string()
		s.Exists = d.byte() == 1
		s.Kind = Kind(d.byte())
		s.Size = d.varint()
		if mt := d.varint(); mt != 0 {
			s.ModTime = time.Unix(0, mt)
		}
		s.ver = d.version()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode conflict %d: %w", id, d.err)
	}
	return c, nil
}

// recordConflict records (or updates) the conflict between the source's c and the destination's
// l under the Ask policy.
func (a *applier) recordConflict(c, l *record) error {
	s := a.p.s
	now := a.now()
	conf := Conflict{Name: l.Name, gid: l.GID, Detected: now, Updated: now}
	srcSide := ConflictSide{Side: a.src().Name, Name: c.Name, ItemState: state(c), ver: c.Ver}
	dstSide := ConflictSide{Side: a.dst().Name, Name: l.Name, ItemState: state(l), ver: l.Ver}
	if a.src().Name == s.a.Name {
		conf.Sides = [2]ConflictSide{srcSide, dstSide}
		conf.Name = c.Name
	} else {
		conf.Sides = [2]ConflictSide{dstSide, srcSide}
	}
	idx := a.tx.Bucket(bucketConfIndex)
	all := a.tx.Bucket(bucketConflicts)
	key := pairKey(s.a.Name, s.b.Name, l.GID)
	var id uint64
	if v := idx.Get(key); len(v) == 8 {
		id = binary.BigEndian.Uint64(v)
		if old := all.Get(v); old != nil {
			prev, err := decodeConflict(id, old)
			if err != nil {
				return err
			}
			conf.Detected = prev.Detected
			if prev.Sides[0].ver == conf.Sides[0].ver && prev.Sides[1].ver == conf.Sides[1].ver {
				conf.Updated = prev.Updated // met again, unchanged
			}

		}
	} else {
		var err error
		if id, err = all.NextSequence(); err != nil {
			return err
		}
		if err := idx.Put(key, u64(id)); err != nil {
			return err
		}
	}
	if err := all.Put(u64(id), conf.encode()); err != nil {
		return err
	}
	conf.ID = strconv.FormatUint(id, 10)
	if s.conflicts != nil && conf.Updated.Equal(now) {
		s.conflicts(a.src().Name, a.dst().Name, &conf) // new, or changed since it was recorded
	}
	if i := slices.IndexFunc(s.rep.Conflicts, func(x Conflict) bool { return x.ID == conf.ID }); i >= 0 {
		s.rep.Conflicts[i] = conf // seen again in a later pass of the session
	} else {
		s.rep.Conflicts = append(s.rep.Conflicts, conf)
	}
	a.asked = true
	return nil
}

// dropConflict removes the record of a conflict that no longer exists (a later change settled
// it).
func (hf *HandleFile) dropConflict(tx *bolt.Tx, a, b string, gid Version) error {
	idx := tx.Bucket(bucketConfIndex)
	key := pairKey(a, b, gid)
	v := idx.Get(key)
	if v == nil {
		return nil
	}
	id := bytes.Clone(v)
	if err := tx.Bucket(bucketConflicts).Delete(id); err != nil {
		return err
	}
	return idx.Delete(key)
}

// Conflicts lists the pending conflicts, oldest first.
func (hf *HandleFile) Conflicts() ([]Conflict, error) {
	var out []Conflict
	err := hf.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConflicts).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("bad conflict key: %w", errMalformed)
			}
			c, err := decodeConflict(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, *c)
			return nil
		})
	})
	return out, err
}

func (hf *HandleFile) conflict(tx *bolt.Tx, id string) (*Conflict, []byte, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("conflict %q: %w", id, ErrNoConflict)
	}
	v := tx.Bucket(bucketConflicts).Get(u64(n))
	if v == nil {
		return nil, nil, fmt.Errorf("conflict %s: %w (it may have been resolved already)", id, ErrNoConflict)
	}
	c, err := decodeConflict(n, v)
	return c, u64(n), err
}

// Resolve settles a pending conflict. keep is the name of the side whose version wins, or
// ResolveBoth (the older version is saved beside the newer one as
// "name (conflict DATE side).ext" and both propagate). When sides holds both stores (as Sync's
// sides), the resolution is carried out at once: both stores are looked at, the winner gets a
// version that includes the loser's, and the loser is overwritten (a replica whose metadata
// travels in a snapshot must then be exported again). Otherwise the choice is recorded in the
// conflict (Conflict.Pending) and the next Sync carries it out, after any snapshot import, so
// metadata brought from another computer cannot undo it. An ID that is no longer pending gives
// ErrNoConflict.
func (hf *HandleFile) Resolve(ctx context.Context, id, keep string, sides ...Side) error {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	var conf *Conflict
	err := hf.update(func(tx *bolt.Tx) error {
		c, key, err := hf.conflict(tx, id)
		if err != nil {
			return err
		}
		if keep != ResolveBoth && keep != c.Sides[0].Side && keep != c.Sides[1].Side {
			return fmt.Errorf("resolve conflict %s: keep %q, want %q, %q or %q", id, keep, c.Sides[0].Side, c.Sides[1].Side, ResolveBoth)
		}
		c.Pending = keep
		conf = c
		return tx.Bucket(bucketConflicts).Put(key, c.encode())
	})
	if err != nil {
		return err
	}
	stores := map[string]Side{}
	for _, s := range sides {
		if s.Store != nil {
			stores[s.Name] = s
		}
	}
	a, okA := stores[conf.Sides[0].Side]
	b, okB := stores[conf.Sides[1].Side]
	if !okA || !okB {
		return nil // carried out by the next Sync
	}
	// Look at both stores first: the resolution starts from what they hold now.
	for _, side := range []Side{a, b} {
		if _, err := hf.detect(ctx, side, true); err != nil {
			return fmt.Errorf("resolve conflict %s: recorded; the next sync carries it out (%w)", id, err)
		}
	}
	win, copyGID, err := hf.carryOut(ctx, conf, a, b, time.Now())
	if err != nil || win == "" {
		return flush(ctx, err, a, b)
	}
	lose := a
	if win == a.Name {
		lose = b
	}
	gids := []Version{conf.gid}
	if !copyGID.IsZero() {
		gids = append(gids, copyGID)
	}
	if err := hf.pushItems(ctx, stores[win], lose, gids); err != nil {
		return flush(ctx, fmt.Errorf("resolve conflict %s: recorded, but %s could not be updated yet (the next sync does it): %w", id, lose.Name, err), a, b)
	}
	return flush(ctx, nil, a, b)
}

// carryOut applies a conflict's pending resolution to the metadata (and, for ResolveBoth, saves
// the copy), then drops the conflict. It returns the winning side ("" when the conflict had
// settled itself meanwhile) and the copy's global ID for ResolveBoth.
func (hf *HandleFile) carryOut(ctx context.Context, c *Conflict, a, b Side, now time.Time) (string, Version, error) {
	if c.Pending == ResolveBoth {
		return hf.keepBoth(ctx, c, a, b, now)
	}
	lose := a.Name
	if c.Pending == a.Name {
		lose = b.Name
	}
	err := hf.update(func(tx *bolt.Tx) error {
		if err := hf.keepSide(tx, c, c.Pending, lose); err != nil {
			return err
		}
		return hf.dropConflict(tx, a.Name, b.Name, c.gid)
	})
	return c.Pending, Version{}, err
}

// keepSide gives the winner's item a version that includes the loser's version the user saw in
// the conflict (not a later edit of the loser's: that one meets the winner as a new conflict).
func (hf *HandleFile) keepSide(tx *bolt.Tx, c *Conflict, win, lose string) error {
	rw, err := hf.openReplica(tx, win, false)
	if err != nil {
		return err
	}
	w, err := rw.byGID(c.gid)
	if err != nil {
		return err
	}
	if w == nil || w.Tomb {
		return nil // gone meanwhile: the next session settles it (an edit beats a delete)
	}
	seen, ok := c.Side(lose)
	v := rw.mint()
	rec := *w
	rec.Ver, rec.V = v, w.V.With(v)
	if ok && !seen.ver.IsZero() {
		rec.V = rec.V.With(seen.ver)
		rw.learn(seen.ver)
	}
	if err := rw.put(w, &rec); err != nil {
		return err
	}
	return rw.save()
}

// applyPendingResolutions carries out resolutions recorded while the stores were away. One that
// cannot be carried out now stays pending and is reported in rep.Skipped; an error that stops
// everything (a store gone) is returned.
func (hf *HandleFile) applyPendingResolutions(ctx context.Context, a, b Side, now time.Time, rep *Report, resolved func(gid Version)) error {
	confs, err := hf.Conflicts()
	if err != nil {
		return err
	}
	for i := range confs {
		c := &confs[i]
		if c.Pending == "" {
			continue
		}
		x, y := a, b
		if c.Sides[0].Side == b.Name {
			x, y = b, a
		}
		if c.Sides[0].Side != x.Name || c.Sides[1].Side != y.Name {
			continue
		}
		win, _, err := hf.carryOut(ctx, c, x, y, now)
		if err == nil && win != "" {
			resolved(c.gid)
		}
		if err != nil {
			if isFatal(err) {
				return err
			}
			if errors.As(err, new(*CorruptError)) {
				return err
			}
			rep.Skipped = append(rep.Skipped, Skipped{From: x.Name, To: y.Name, Name: c.Name,
				Err: &ResolutionError{ID: c.ID, Keep: c.Pending, Err: err}})
		}
	}
	return nil
}

// ResolutionError is the error of a resolution that a session could not carry out (a store refused
// the conflict copy's name, a write failed): the conflict stays, and the caller can say which
// choice failed and why. (When the session meets the conflict again, it is recorded afresh and
// waits for a new choice.)
type ResolutionError struct {
	ID   string // the conflict's ID
	Keep string // the choice: a side's name, or ResolveBoth
	Err  error
}

func (e *ResolutionError) Error() string {
	return fmt.Sprintf("carry out the resolution of conflict %s: %v", e.ID, e.Err)
}

func (e *ResolutionError) Unwrap() error { return e.Err }

// isFatal reports errors after which a session cannot go on.
func isFatal(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrGone) || errors.Is(err, ErrNoSpace)
}

// keepBoth saves the older version of a conflict beside the newer one, in the newer one's store,
// as a new item, and makes the newer version win over the older one. It returns the winning side
// and the copy's global ID ("" when the conflict had settled itself meanwhile).
func (hf *HandleFile) keepBoth(ctx context.Context, c *Conflict, a, b Side, now time.Time) (winner string, copyGID Version, err error) {
	err = hf.update(func(tx *bolt.Tx) error {
		ra, err := hf.openReplica(tx, a.Name, false)
		if err != nil {
			return err
		}
		rb, err := hf.openReplica(tx, b.Name, false)
		if err != nil {
			return err
		}
		ia, err := ra.byGID(c.gid)
		if err != nil {
			return err
		}
		ib, err := rb.byGID(c.gid)
		if err != nil {
			return err
		}
		if !ia.live() || !ib.live() {
			// One side is gone meanwhile: the next session settles it (an edit beats a delete).
			return hf.dropConflict(tx, a.Name, b.Name, c.gid)
		}
		win, lose, rw, ws, ls := ia, ib, ra, a, b
		if ib.Stamp.ModTime > ia.Stamp.ModTime || (ib.Stamp.ModTime == ia.Stamp.ModTime && ib.Ver.Compare(ia.Ver) > 0) {
			win, lose, rw, ws, ls = ib, ia, rb, b, a
		}
		name, e, err := writeCopy(win.Name, ls.Name, now, func(name string) (Entry, error) {
			req := WriteRequest{Name: name, Kind: lose.Stamp.Kind, Size: lose.Stamp.Size}
			if lose.Stamp.ModTime != 0 {
				req.ModTime = time.Unix(0, lose.Stamp.ModTime)
			}
			if lose.Stamp.Kind == KindFolder {
				req.Size = 0
				return ws.Store.Write(ctx, req)
			}
			rc, err := ls.Store.Open(ctx, lose.Handle)
			if err != nil {
				return Entry{}, fmt.Errorf("open %s's version: %w", ls.Name, err)
			}
			defer rc.Close()
			req.Data = rc
			return ws.Store.Write(ctx, req)
		})
		if err != nil {
			return fmt.Errorf("keep both versions of %q: save %s's version as %q in %s: %w", c.Name, ls.Name, name, ws.Name, err)
		}
		v := rw.mint()
		cp := &record{GID: v, Ver: v, CVer: v, NVer: v, V: Vector{v}, Name: name, When: now.UnixNano()}
		if err := fillRecord(ctx, ws.Store, cp, e, nil); err != nil {
			return err
		}
		if err := rw.put(nil, cp); err != nil {
			return err
		}
		v2 := rw.mint()
		rec := *win
		rec.Ver, rec.V = v2, win.V.Merge(lose.V).With(v2)
		rw.learn(lose.Ver)
		if err := rw.put(win, &rec); err != nil {
			return err
		}
		if err := persist(ctx, ws); err != nil {
			return err
		}
		if err := rw.save(); err != nil {
			return err
		}
		winner, copyGID = ws.Name, v
		return hf.dropConflict(tx, a.Name, b.Name, c.gid)
	})
	return winner, copyGID, err
}

// fillRecord completes a record from the entry store returned for it.
func fillRecord(ctx context.Context, st Store, rec *record, e Entry, srcUnits []unitRec) error {
	rec.Handle, rec.Stamp = e.Handle, e.Stamp()
	key, err := st.NaturalKey(ctx, e)
	if err != nil {
		return fmt.Errorf("natural key of %q: %w", e.Handle, err)
	}
	rec.Key = key
	rec.Units = nil
	if us, ok := st.(UnitStore); ok && e.Kind == KindFile {
		units, err := us.ReadUnits(ctx, e.Handle)
		if err != nil {
			return fmt.Errorf("read units of %q: %w", e.Handle, err)
		}
		rec.Units = unitsAfterWrite(srcUnits, units, rec.Ver)
	}
	return nil
}
