package repl

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Intents protect stores whose writes are not atomic (Atomicity): before a batch writes to such a
// store, the engine records which names it may write and how big each item will be; the batch's
// commit clears them. An intent left behind means the session stopped mid-batch, so the item at
// that name may be partial: the next session removes it quietly (it is neither a user's delete
// nor an edit, and nothing propagates) and the change, which was never learned, is sent again.

type intent struct {
	seq   uint64 // order in the batch
	name  string
	size  int64  // announced size
	mod   int64  // announced modification time, Unix nanoseconds
	prior string // the item's handle before the write (an update or a move), or ""
	src   string // the source replica
	gid   Version
	// copy marks the name of a conflict copy the change may write (keep-both, a collision):
	// absent when the batch never needed it; mod2 is the other version's time (a copy holds
	// either side's content).
	copy bool
	mod2 int64
}

func (it intent) encode() []byte {
	v := appendUvarint(nil, it.seq)
	v = appendVarint(v, it.size)
	v = appendVarint(v, it.mod)
	v = appendString(v, it.prior)
	v = appendString(v, it.src)
	v = appendVersion(v, it.gid)
	if it.copy {
		v = append(v, 1)
		v = appendVarint(v, it.mod2)
	}
	return v
}

func decodeIntent(name string, b []byte) (intent, error) {
	d := decoder{b: b}
	it := intent{seq: d.uvarint(), name: name, size: d.varint(), mod: d.varint(), prior: d.string(), src: d.string(), gid: d.version()}
	if d.err == nil && len(d.b) > 0 {
		it.copy = d.byte() == 1
		it.mod2 = d.varint()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return it, d.err
}

// copyIntents lists the conflict copies a change may write into a destination that does not write
// atomically: when the destination's item was changed without knowing the source's (a conflict
// that keep-both settles, or a collision), a copy of either version may be written under a
// conflict name. Their intents let the next session remove what an interruption left of one.
func copyIntents(seq int, c *record, l *record, src, dst string, now time.Time) []intent {
	if c == nil || l == nil || !c.live() || !l.live() || l.Stamp.Kind != KindFile || c.V.Contains(l.Ver) {
		return nil
	}
	var out []intent
	for _, base := range []struct{ name, side string }{{l.Name, dst}, {c.Name, src}, {c.Name, dst}, {l.Name, src}} {
		for n := 1; n <= 2; n++ {
			out = append(out, intent{seq: uint64(seq), name: copyName(base.name, base.side, now, n), size: max(c.Stamp.Size, l.Stamp.Size),
				mod: c.Stamp.ModTime, mod2: l.Stamp.ModTime, prior: l.Handle, src: src, gid: c.GID, copy: true})
		}
	}
	return out
}

// modSlack is how far a store may round the modification time it was given (MTP keeps seconds).
const modSlack = int64(time.Second)

// looksOurs tells whether e may be what the write announced by it left: no bigger than announced,
// with the announced modification time as the store keeps it (to its granularity g: MTP keeps
// seconds, FAT two; a user's edit has the time of the edit). It is the test when the source's
// content cannot be compared with e's (the source changed too since).
func (it intent) looksOurs(e Entry, g time.Duration) bool {
	if e.Kind != KindFile || it.mod == 0 || e.ModTime.IsZero() || e.Size > it.size {
		return false
	}
	d := e.ModTime.UnixNano() - it.mod
	w := int64(max(g, time.Second)) // stores keep at least the second of the time they are given
	return -w < d && d < w
}

// writeIntents records, before a batch writes to a store that is not atomic, the names it may
// write; it returns the names of the conflict copies among them, by the change they belong to.
func (hf *HandleFile) writeIntents(src, dst string, changes []changeRef, now time.Time) (map[string][]string, error) {
	copies := map[string][]string{}
	err := hf.update(func(tx *bolt.Tx) error {
		rs, err := hf.openReplica(tx, src, false)
		if err != nil {
			return err
		}
		rd, err := hf.openReplica(tx, dst, true)
		if err != nil {
			return err
		}
		for i, c := range changes {
			if c.tomb || c.kind == KindFolder {
				continue
			}
			var prior string
			l, err := rd.byGID(c.gid)
			if err != nil {
				return err
			} else if l.live() && !l.Missing {
				prior = l.Handle
			}
			it := intent{seq: uint64(i), size: c.size, mod: c.mod, prior: prior, src: src, gid: c.gid}
			if err := rd.i.Put([]byte(c.name), it.encode()); err != nil {
				return err
			}
			if l == nil || !l.live() {
				if l, err = rd.byHandle(c.name); err != nil { // a collision's other item
					return err
				}
			}
			sc, err := rs.byGID(c.gid)
			if err != nil {
				return err
			}
			for _, ci := range copyIntents(i, sc, l, src, dst, now) {
				if rd.i.Get([]byte(ci.name)) != nil || rd.h.Get([]byte(ci.name)) != nil {
					continue // an item's own intent, or a copy made before
				}
				if err := rd.i.Put([]byte(ci.name), ci.encode()); err != nil {
					return err
				}
				copies[c.name] = append(copies[c.name], ci.name)
			}
		}
		return rd.save()
	})
	return copies, err
}

// dropIntents removes the intents of names.
func (r *rtx) dropIntents(names []string) error {
	for _, n := range names {
		if err := r.i.Delete([]byte(n)); err != nil {
			return err
		}
	}
	return nil
}

// dropAllIntents removes every intent.
func (r *rtx) dropAllIntents() error {
	var all [][]byte
	if err := r.i.ForEach(func(k, _ []byte) error {
		all = append(all, bytes.Clone(k))
		return nil
	}); err != nil {
		return err
	}
	for _, k := range all {
		if err := r.i.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// removePartial deals with a write to a non-atomic store that failed half-way in this session: the
// item it may have left is removed quietly and its record (if any) marked Missing. Without Stater
// the store cannot be checked item by item: the failure then stops the batch and the next session
// recovers.
func (a *applier) removePartial(ctx context.Context, c changeRef) error {
	st, ok := a.dst().Store.(Stater)
	if !ok {
		return fmt.Errorf("a write to %s failed half-way: %w", a.dst().Name, errStopBatch)
	}
	e, err := st.Stat(ctx, c.name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return a.dstErr("look at", c.name, err)
	}
	rec, err := a.rd.byHandle(c.name)
	if err != nil {
		return err
	}
	if rec != nil && !rec.Missing && !StampChanged(rec.Stamp, e) {
		return nil // as it was: the write never began
	}
	it := intent{name: c.name, size: c.size, mod: c.mod}
	g, _ := clockOf(a.dst().Store)
	ours := it.looksOurs(e, g)
	if !ours && e.ModTime.IsZero() && e.Kind == KindFile && e.Size <= c.size {
		// A store that keeps no times: the content tells, the start of what the source holds.
		ours = a.startsLikeSource(ctx, c, e)
	}
	if !ours {
		return nil
	}
	if err := a.dst().Store.Delete(ctx, c.name, e.Stamp()); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrChanged) {
		return a.dstErr("remove the partial", c.name, err)
	}
	return markMissing(a.rd, rec)
}

// startsLike tells whether the item e holds the start of what the item at handle holds, in one
// store.
func startsLike(ctx context.Context, st Store, e Entry, handle string) bool {
	whole, err := st.Open(ctx, handle)
	if err != nil {
		return false
	}
	defer whole.Close()
	part, err := st.Open(ctx, e.Handle)
	if err != nil {
		return false
	}
	defer part.Close()
	same, err := sameStreams(part, io.LimitReader(whole, e.Size))
	return err == nil && same
}

// startsLikeSource tells whether the destination's item e holds the start of what the source's
// item of c holds now.
func (a *applier) startsLikeSource(ctx context.Context, c changeRef, e Entry) bool {
	src, err := a.rs.byGID(c.gid)
	if err != nil || src == nil || !src.live() {
		return false
	}
	theirs, err := a.src().Store.Open(ctx, src.Handle)
	if err != nil {
		return false
	}
	defer theirs.Close()
	mine, err := a.dst().Store.Open(ctx, e.Handle)
	if err != nil {
		return false
	}
	defer mine.Close()
	same, err := sameStreams(mine, io.LimitReader(theirs, e.Size))
	return err == nil && same
}

var errStopBatch = errors.New("the batch stops here; the next session cleans up")

func markMissing(r *rtx, rec *record) error {
	if rec == nil || rec.Missing || rec.Tomb {
		return nil
	}
	m := *rec
	m.Missing = true
	return r.put(rec, &m)
}

// recoverIntents deals with the intents an interrupted session left in side's replica (other is
// the session's other side, usually the source of those writes). Intents are walked in batch
// order. A batch that stopped on an error committed everything before the item it stopped at and
// dropped their intents; after a crash nothing of the batch was committed, so the items it wrote in
// full come first. An item the engine wrote (its content is the start of the source's, or, when
// that cannot be compared, it has the announced modification time and no more than the announced
// size) is removed quietly, whole or partial: its change was never learned and is sent again. The
// first item that is not whole is where the batch stopped; the items after it were never tried.
// An item the user changed since is left alone: detection sees it as the user's change it is.
func (hf *HandleFile) recoverIntents(ctx context.Context, side, other Side) error {
	var intents []intent
	err := hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if errors.Is(err, ErrUnknownReplica) {
			return nil
		}
		if err != nil {
			return err
		}
		return r.i.ForEach(func(k, v []byte) error {
			in, err := decodeIntent(string(k), v)
			if err != nil {
				return fmt.Errorf("replica %q, intent %q: %w", side.Name, k, err)
			}
			intents = append(intents, in)
			return nil
		})
	})
	if err != nil || len(intents) == 0 {
		return err
	}
	slices.SortFunc(intents, func(x, y intent) int { return cmp.Compare(x.seq, y.seq) })
	lookup, err := lookupFunc(ctx, side)
	if err != nil {
		return err
	}
	return hf.update(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if err != nil {
			return err
		}
		g, _ := clockOf(side.Store)
		for _, in := range intents {
			if !in.copy {
				continue
			}
			// A conflict copy the batch may have begun: unrecorded, no bigger than either
			// version and with either's time, it is the engine's, whole or partial.
			e, ok, err := lookup(in.name)
			if err != nil {
				return err
			}
			rec, err := r.byHandle(in.name)
			if err != nil {
				return err
			}
			if !ok || rec != nil || e.Kind != KindFile || e.Size > in.size {
				continue
			}
			// Whole, a copy whose original is still where it was, with the same content, may go
			// (the batch makes it again); without the original, it may be the original itself,
			// moved aside (a collision): detection sees it as the rename it is. A part is the
			// engine's by its time, or, on a store that keeps no times, by holding the start of
			// the original.
			pe, pok, err := lookup(in.prior)
			if err != nil {
				return err
			}
			timed := in.looksOurs(e, g) || intent{size: in.size, mod: in.mod2}.looksOurs(e, g)
			switch {
			case e.Size == in.size && (!pok || pe.Size != e.Size):
				continue
			case e.Size < in.size && !timed && !(e.ModTime.IsZero() && pok && startsLike(ctx, side.Store, e, in.prior)):
				continue
			case e.Size == in.size && !startsLike(ctx, side.Store, e, in.prior):
				continue
			}
			if err := side.Store.Delete(ctx, in.name, e.Stamp()); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrChanged) {
				return fmt.Errorf("remove %q, a conflict copy an interrupted sync may have left half-written in %s: %w", in.name, side.Name, err)
			}
		}
		for _, in := range intents {
			if in.copy {
				continue
			}
			e, ok, err := lookup(in.name)
			if err != nil {
				return err
			}
			rec, err := r.byHandle(in.name)
			if err != nil {
				return err
			}
			untouched := (ok && rec != nil && !rec.Missing && !StampChanged(rec.Stamp, e)) || (!ok && rec == nil)
			if untouched {
				break // the batch stopped before this item
			}
			if rec != nil && rec.GID != in.gid {
				// Another item is recorded here now: another computer synced the device
				// meanwhile and took what it found for a new item. It is no partial
				// write to remove quietly any more; the sessions settle it like any item.
				break
			}
			if in.prior != "" && in.prior != in.name {
				if _, ok, err := lookup(in.prior); err != nil {
					return err
				} else if !ok {
					prior, err := r.byHandle(in.prior)
					if err != nil {
						return err
					}
					if err := markMissing(r, prior); err != nil {
						return err
					}
				}
			}
			if !ok {
				// An update that removed the old item and never wrote the new one.
				if err := markMissing(r, rec); err != nil {
					return err
				}
				break
			}
			ours, err := hf.wroteIt(ctx, tx, in, e, side, other)
			if err != nil {
				return err
			}
			if !ours {
				break // changed by the user since: theirs
			}
			if err := side.Store.Delete(ctx, in.name, e.Stamp()); errors.Is(err, ErrChanged) {
				break // saved by the user while it was looked at: theirs, which detection sees
			} else if err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("remove %q, which an interrupted sync may have left half-written in %s: %w", in.name, side.Name, err)
			}
			if err := markMissing(r, rec); err != nil {
				return err
			}
			if e.Size != in.size {
				break // the partial item the batch stopped at
			}
		}
		if err := r.dropAllIntents(); err != nil {
			return err
		}
		if err := persist(ctx, side); err != nil {
			return err
		}
		return r.save()
	})
}

// wroteIt tells whether the item e at an intent's name is what the engine's write left: its
// content is the start of the source item's content. When the source cannot be read (another
// session's source, or the item changed there since), only a part may be judged by the announced
// size and time: a whole item is the engine's only when its content is the recorded one. Kept,
// a whole copy the engine made comes back as a new item that the source's meets as a collision
// (one item again when their contents are equal); removed, a file the user saved there with
// that size and time (a clock that moved by less than the device's seconds) would be lost.
func (hf *HandleFile) wroteIt(ctx context.Context, tx *bolt.Tx, in intent, e Entry, side, src Side) (bool, error) {
	if e.Kind != KindFile || e.Size > in.size {
		return false, nil
	}
	g, _ := clockOf(side.Store)
	partial := e.Size < in.size && in.looksOurs(e, g)
	if src.Name != in.src || src.Store == nil {
		return partial, nil
	}
	rs, err := hf.openReplica(tx, src.Name, false)
	if err != nil {
		return partial, nil
	}
	c, err := rs.byGID(in.gid)
	if err != nil {
		return false, err
	}
	if c == nil || c.Tomb || c.Missing || c.Stamp.Size != in.size {
		return partial, nil
	}
	if e.Size == c.Stamp.Size && c.hasSum() {
		sum, _, err := readSum(ctx, side.Store, e)
		if err != nil {
			return false, fmt.Errorf("read %q in %s: %w", in.name, side.Name, err)
		}
		return sum == c.Sum, nil
	}
	theirs, err := src.Store.Open(ctx, c.Handle)
	if err != nil {
		return partial, nil
	}
	defer theirs.Close()
	mine, err := side.Store.Open(ctx, in.name)
	if err != nil {
		return false, fmt.Errorf("read %q in %s: %w", in.name, side.Name, err)
	}
	defer mine.Close()
	same, err := sameStreams(mine, io.LimitReader(theirs, e.Size))
	if err != nil {
		return partial, nil
	}
	if same {
		return true, nil
	}
	// Not the start of the source's content: the user's, unless the source changed since.
	st, ok := src.Store.(Stater)
	if !ok {
		return partial, nil
	}
	now, err := st.Stat(ctx, c.Handle)
	if err != nil || StampChanged(c.Stamp, now) {
		return partial, nil
	}
	return false, nil
}

// lookupFunc returns a way to look one handle up: Stat when the store has it, else one
// enumeration.
func lookupFunc(ctx context.Context, side Side) (func(string) (Entry, bool, error), error) {
	if st, ok := side.Store.(Stater); ok {
		return func(h string) (Entry, bool, error) {
			e, err := st.Stat(ctx, h)
			if errors.Is(err, ErrNotFound) {
				return Entry{}, false, nil
			}
			if err != nil {
				return Entry{}, false, fmt.Errorf("look at %q in %s: %w", h, side.Name, err)
			}
			return e, true, nil
		}, nil
	}
	it, err := side.Store.Enumerate(ctx)
	if err != nil {
		return nil, fmt.Errorf("enumerate %s: %w", side.Name, err)
	}
	defer it.Close()
	all := map[string]Entry{}
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("enumerate %s: %w", side.Name, err)
		}
		all[e.Handle] = e
	}
	return func(h string) (Entry, bool, error) {
		e, ok := all[h]
		return e, ok, nil
	}, nil
}
