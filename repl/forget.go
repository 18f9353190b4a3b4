package repl

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Forgotten knowledge. A tombstone is kept until every partner of its replica has learned the
// delete, or for DefaultTombstoneAge at most, and then dropped: the handle file and the device's
// snapshot do not grow with every file ever deleted. A replica remembers, as its forgotten
// knowledge, what it knew when it last dropped tombstones (Sync Framework's forgotten knowledge):
// a replica that knows a version and holds no record of its item deleted that item, or learned of
// its deletion. A partner whose knowledge does not cover the forgotten knowledge (one away longer
// than the tombstones were kept, or one whose metadata was replaced by an older copy) gets a full
// comparison: each of its live items that the source has no record of, at a version the source
// forgot, is an item the source deleted, and is deleted, never anything the partner changed since
// (a version the source never knew).
//
// A replica's partners are the other replicas of its handle file and, for a replica whose
// metadata travels in a snapshot (the device's), the replicas of the other handle files that sync
// with it: each session records what its partners know (replicaState.partners), and the snapshot
// carries the record to the next computer.

// DefaultTombstoneAge is how long a tombstone is kept at most (Config.TombstoneAge).
const DefaultTombstoneAge = 30 * 24 * time.Hour

// partnerMark is what a replica knows of one partner: its knowledge as of its last session.
type partnerMark struct {
	know *Knowledge
	seen int64 // Unix nanoseconds of that session
}

func appendPartners(b []byte, ps map[ReplicaID]partnerMark) []byte {
	ids := make([]ReplicaID, 0, len(ps))
	for id := range ps {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y ReplicaID) int { return bytes.Compare(x[:], y[:]) })
	b = appendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = append(b, id[:]...)
		b = appendVarint(b, ps[id].seen)
		b = ps[id].know.appendTo(b)
	}
	return b
}

func (d *decoder) partners() map[ReplicaID]partnerMark {
	n := d.count(16 + 1 + 3)
	ps := make(map[ReplicaID]partnerMark, n)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.replica()
		seen := d.varint()
		ps[id] = partnerMark{seen: seen, know: d.knowledge(true)}
	}
	return ps
}

func encodePartners(ps map[ReplicaID]partnerMark) []byte { return appendPartners(nil, ps) }

func decodePartners(b []byte) (map[ReplicaID]partnerMark, error) {
	d := decoder{b: b}
	ps := d.partners()
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode partners: %w", d.err)
	}
	return ps, nil
}

// forgetTombstones ends a session: each replica of the file records what the others know now, and
// drops the tombstones every partner it knows of has learned, or that are older than maxAge
// (partners not heard of for maxAge are forgotten too). Tombstones of items with a pending
// conflict stay. It returns how many tombstones went.
func (hf *HandleFile) forgetTombstones(now time.Time, maxAge time.Duration) (int, error) {
	dropped := 0
	err := hf.update(func(tx *bolt.Tx) error {
		var reps []*rtx
		if err := tx.Bucket(bucketReplicas).ForEachBucket(func(k []byte) error {
			r, err := hf.openReplica(tx, string(k), false)
			if err == nil {
				reps = append(reps, r)
			}
			return err
		}); err != nil {
			return err
		}
		pending, err := conflictGIDs(tx)
		if err != nil {
			return err
		}
		cutoff := int64(-1 << 63)
		if maxAge > 0 {
			cutoff = now.Add(-maxAge).UnixNano()
		}
		for _, r := range reps {
			for _, p := range reps {
				if p != r {
					r.partners[p.id] = partnerMark{know: p.know.Clone(), seen: now.UnixNano()}
					r.dirty = true
				}
			}
			for id, pm := range r.partners {
				if pm.seen < cutoff {
					delete(r.partners, id)
				}
			}
			var drop []*record
			if err := r.eachInline(func(t *record) error {
				if !t.Tomb || pending[t.GID] {
					return nil
				}
				known := len(r.partners) > 0
				for _, pm := range r.partners {
					known = known && pm.know.Contains(t.Ver)
				}
				if known || t.When < cutoff {
					drop = append(drop, t)
				}
				return nil
			}); err != nil {
				return err
			}
			for _, t := range drop {
				if err := r.remove(t); err != nil {
					return err
				}
			}
			if len(drop) > 0 {
				// What the replica knows now covers every version of the items it forgot (an
				// item's made-with vector does not: it speaks of that item's versions only).
				r.forgotten.Merge(r.know)
				r.dirty = true
			}
			dropped += len(drop)
			if err := r.save(); err != nil {
				return err
			}
		}
		return nil
	})
	return dropped, err
}

// conflictGIDs returns the global IDs of the items with a pending conflict.
func conflictGIDs(tx *bolt.Tx) (map[Version]bool, error) {
	out := map[Version]bool{}
	err := tx.Bucket(bucketConflicts).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return nil
		}
		c, err := decodeConflict(binary.BigEndian.Uint64(k), v)
		if err != nil {
			return err
		}
		out[c.gid] = true
		return nil
	})
	return out, err
}

// forgottenDeletes lists, for a pass from rs to rd whose destination does not know all the source
// forgot, the destination's live items that the source deleted and forgot: no record of them in
// the source, at a version the source forgot.
func forgottenDeletes(rs, rd *rtx) ([]changeRef, error) {
	var out []changeRef
	err := rd.eachLive(func(l *record) error {
		if !rs.forgotten.Contains(l.Ver) {
			return nil
		}
		if c, err := rs.byGID(l.GID); err != nil || c != nil {
			return err
		}
		out = append(out, changeRef{gid: l.GID, name: l.Name, tomb: true, forgotten: true, kind: l.Stamp.Kind})
		return nil
	})
	return out, err
}

// applyForgotten deletes the destination's item l that the source deleted and forgot. The
// destination forgets it too (no tombstone: the source has none to match), and adds its versions
// to its own forgotten knowledge, so its other partners get the same comparison.
func (a *applier) applyForgotten(ctx context.Context, ref changeRef) error {
	l, err := a.rd.byGID(ref.gid)
	if err != nil || !l.live() || !a.rs.forgotten.Contains(l.Ver) {
		return err // changed or gone since it was listed
	}
	a.trace("apply forgotten delete of %v %q", l.GID, l.Name)
	err = DeleteItem(ctx, a.dst().Store, l.Handle, l.Stamp, CauseDelete)
	switch {
	case err == nil:
		a.counts().Deleted++
	case errors.Is(err, ErrNotFound):
	case errors.Is(err, ErrNotEmpty):
		return nil // holds items the source never saw: they keep it
	default:
		return a.dstErr("delete", l.Handle, err)
	}
	if err := a.rd.remove(l); err != nil {
		return err
	}
	a.rd.forgotten.Merge(a.rs.forgotten)
	a.rd.dirty = true
	return nil
}
