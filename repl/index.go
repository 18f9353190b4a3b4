package repl

import (
	"bytes"
	"fmt"
	"time"
)

// A replica's items in the handle file (format 3), in its bucket:
//
//   - H: handle -> the live item's record (without its handle, which is the key).
//   - X: version -> an item, one key per version that is an item's global ID or its current
//     version: 0 + handle for a live item whose global ID it is (its record is in H); 1 + the
//     whole record for a tombstone or an item whose data the engine removed (Missing); 2 + the
//     global ID's key for the current version of an item that changed since it was created. An
//     item that never changed (the version is its global ID) has one key, not two.
//   - K: natural key + 0 1 + global ID -> nothing, for live items whose natural key is not their
//     handle (a path store's items, whose key is their path, are found in H).
//   - M: merged-into ID + global ID -> nothing, for tombstones of items merged into another.
//
// Versions in keys and records name their author by its number in the replica's author list
// (record3.go). Entries of X sort by author and tick, so a source lists what a destination lacks
// by skipping over what it knows.

// X entry kinds.
const (
	xLive   = 0
	xInline = 1
	xChange = 2
)

func (r *rtx) byHandle(handle string) (*record, error) {
	v := r.h.Get([]byte(handle))
	if v == nil {
		return nil, nil
	}
	rec, err := r.decode(v, handle)
	if err != nil {
		return nil, fmt.Errorf("replica %q, handle %q: %w", r.name, handle, err)
	}
	return rec, nil
}

// byGID returns the record of the item gid, or nil when the replica has none.
func (r *rtx) byGID(gid Version) (*record, error) {
	k, ok, _ := r.vkey(gid, false)
	if !ok {
		return nil, nil
	}
	return r.byGIDKey(gid, r.x.Get(k))
}

// byGIDKey decodes the X entry v found at gid's key.
func (r *rtx) byGIDKey(gid Version, v []byte) (*record, error) {
	if v == nil {
		return nil, nil
	}
	if len(v) < 1 {
		return nil, fmt.Errorf("replica %q, item %v: empty index entry: %w", r.name, gid, errMalformed)
	}
	switch v[0] {
	case xLive:
		rec, err := r.byHandle(string(v[1:]))
		if err == nil && rec == nil {
			err = fmt.Errorf("replica %q, item %v: index names handle %q that has no record: %w", r.name, gid, v[1:], errMalformed)
		}
		if err == nil && rec.GID != gid {
			err = fmt.Errorf("replica %q: index of item %v names handle %q of item %v: %w", r.name, gid, v[1:], rec.GID, errMalformed)
		}
		return rec, err
	case xInline:
		rec, err := r.decode(v[1:], "")
		if err == nil && rec.GID != gid {
			err = fmt.Errorf("replica %q: index of item %v holds item %v: %w", r.name, gid, rec.GID, errMalformed)
		}
		if err != nil {
			return nil, fmt.Errorf("replica %q, tombstone %v: %w", r.name, gid, err)
		}
		return rec, nil
	case xChange:
		return nil, nil // gid is another item's version, not an item's ID
	}
	return nil, fmt.Errorf("replica %q, item %v: bad index entry: %w", r.name, gid, errMalformed)
}

// atVersion returns the record whose current version is ver, or nil. v is X's entry at ver's
// key.
func (r *rtx) atVersion(ver Version, v []byte) (*record, error) {
	if len(v) > 0 && v[0] == xChange {
		gid, ok := r.versionOfKey(v[1:])
		if !ok {
			return nil, fmt.Errorf("replica %q: bad version index entry for %v: %w", r.name, ver, errMalformed)
		}
		rec, err := r.byGID(gid)
		if err != nil {
			return nil, err
		}
		if rec == nil || rec.Ver != ver {
			return nil, fmt.Errorf("replica %q: version index names %v for item %v: %w", r.name, ver, gid, errMalformed)
		}
		return rec, nil
	}
	rec, err := r.byGIDKey(ver, v)
	if err != nil || rec == nil || rec.Ver != ver {
		return nil, err // an item created at ver that changed since: its current version has a key of its own
	}
	return rec, nil
}

// isCurrentVersion reports whether ver is the current version of one of the replica's items.
func (r *rtx) isCurrentVersion(ver Version) (bool, error) {
	k, ok, _ := r.vkey(ver, false)
	if !ok {
		return false, nil
	}
	v := r.x.Get(k)
	if v == nil {
		return false, nil
	}
	rec, err := r.atVersion(ver, v)
	return rec != nil, err
}

// keyIndex is the natural-key index entry of an item: the key with its 0 bytes escaped (0 becomes
// 0 0xff), a 0 1 terminator, then the global ID. Entries sort like their keys.
func (r *rtx) keyIndex(key string, gid Version, add bool) ([]byte, bool, error) {
	gk, ok, err := r.vkey(gid, add)
	if !ok || err != nil {
		return nil, false, err
	}
	return append(keyPrefix(key), gk...), true, nil
}

func keyPrefix(key string) []byte {
	b := make([]byte, 0, len(key)+2+8)
	for i := 0; i < len(key); i++ {
		b = append(b, key[i])
		if key[i] == 0 {
			b = append(b, 0xff)
		}
	}
	return append(b, 0, 1)
}

// inline tells whether a record is kept whole in the ID index instead of under its handle:
// tombstones, and records whose data the engine removed (Missing), which hold no handle.
func (r *record) inline() bool { return r.Tomb || r.Missing }

// keyed tells whether a live record has an entry in the natural-key index: its key is not its
// handle (under which it is found anyway).
func (r *record) keyed() bool { return r.Key != r.Handle }

// put replaces old (nil when the item is new to this replica) with rec, keeping every index in
// step. old must be the record as stored now.
func (r *rtx) put(old, rec *record) error {
	if err := r.unindex(old); err != nil {
		return err
	}
	gk, _, err := r.vkey(rec.GID, true)
	if err != nil {
		return err
	}
	r.dirty = true
	if rec.inline() {
		enc, err := r.encode3(rec, true)
		if err != nil {
			return err
		}
		if err := r.setX(gk, append([]byte{xInline}, enc...), rec.GID); err != nil {
			return err
		}
		if rec.Tomb && !rec.Merged.IsZero() {
			mk, _, err := r.vkey(rec.Merged, true)
			if err != nil {
				return err
			}
			if err := r.m.Put(append(mk, gk...), nil); err != nil {
				return err
			}
		}
	} else {
		if prev := r.h.Get([]byte(rec.Handle)); prev != nil {
			if err := r.displace(rec); err != nil {
				return err
			}
		}
		enc, err := r.encode3(rec, false)
		if err != nil {
			return err
		}
		r.count++
		if err := r.h.Put([]byte(rec.Handle), enc); err != nil {
			return err
		}
		if err := r.setX(gk, append([]byte{xLive}, rec.Handle...), rec.GID); err != nil {
			return err
		}
		if rec.keyed() {
			ki, _, err := r.keyIndex(rec.Key, rec.GID, true)
			if err != nil {
				return err
			}
			if err := r.k.Put(ki, nil); err != nil {
				return err
			}
		}
	}
	return r.indexVersion(rec, gk)
}

// setX writes the ID index entry of item gid at gk, refusing to overwrite another item's version.
func (r *rtx) setX(gk, v []byte, gid Version) error {
	if prev := r.x.Get(gk); len(prev) > 0 && prev[0] == xChange {
		return fmt.Errorf("replica %q: item %v has the ID of another item's version: %w", r.name, gid, errMalformed)
	}
	return r.x.Put(gk, v)
}

// indexVersion writes the version entry of rec, whose global ID's key is gk, when its version is
// not its global ID.
func (r *rtx) indexVersion(rec *record, gk []byte) error {
	if rec.Ver == rec.GID {
		return nil
	}
	vk, _, err := r.vkey(rec.Ver, true)
	if err != nil {
		return err
	}
	if prev := r.x.Get(vk); prev != nil && !(prev[0] == xChange && bytes.Equal(prev[1:], gk)) {
		return fmt.Errorf("replica %q: version %v of item %v is taken by another item: %w", r.name, rec.Ver, rec.GID, errMalformed)
	}
	return r.x.Put(vk, append([]byte{xChange}, gk...))
}

// displace makes room at rec.Handle, still held by another item's record although the store has
// just put rec's item there: that item is gone, a user's delete that detection has not seen yet.
// It becomes a tombstone with a new version, so the delete propagates.
func (r *rtx) displace(rec *record) error {
	prev, err := r.byHandle(rec.Handle)
	if err != nil {
		return err
	}
	if prev.GID == rec.GID {
		return fmt.Errorf("replica %q: item %v recorded twice at handle %q: %w", r.name, rec.GID, rec.Handle, errMalformed)
	}
	t := *prev
	v := r.mint()
	t.Tomb, t.Ver, t.V, t.When = true, v, prev.V.With(v), time.Now().UnixNano()
	if err := r.unindex(prev); err != nil {
		return err
	}
	gk, _, err := r.vkey(t.GID, true)
	if err != nil {
		return err
	}
	enc, err := r.encode3(&t, true)
	if err != nil {
		return err
	}
	if err := r.x.Put(gk, append([]byte{xInline}, enc...)); err != nil {
		return err
	}
	return r.indexVersion(&t, gk)
}

// remove drops every trace of old (used when an item is re-keyed under another global ID).
func (r *rtx) remove(old *record) error {
	if err := r.unindex(old); err != nil {
		return err
	}
	gk, ok, _ := r.vkey(old.GID, false)
	if !ok {
		return nil
	}
	return r.x.Delete(gk)
}

// unindex removes old's record from H and its entries from K, M and (for its version) X; its
// global ID's entry in X is left for put to overwrite or remove to delete.
func (r *rtx) unindex(old *record) error {
	if old == nil {
		return nil
	}
	gk, ok, _ := r.vkey(old.GID, false)
	if !ok {
		return fmt.Errorf("replica %q: item %v of an unknown author: %w", r.name, old.GID, errMalformed)
	}
	if old.Ver != old.GID {
		if vk, ok, _ := r.vkey(old.Ver, false); ok {
			if err := r.x.Delete(vk); err != nil {
				return err
			}
		}
	}
	if old.Tomb && !old.Merged.IsZero() {
		if mk, ok, _ := r.vkey(old.Merged, false); ok {
			if err := r.m.Delete(append(mk, gk...)); err != nil {
				return err
			}
		}
	}
	if !old.inline() {
		r.count--
		r.dirty = true
		if err := r.h.Delete([]byte(old.Handle)); err != nil {
			return err
		}
		if old.keyed() {
			if ki, ok, _ := r.keyIndex(old.Key, old.GID, false); ok {
				if err := r.k.Delete(ki); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// mergedInto returns the global IDs of the items merged into gid here.
func (r *rtx) mergedInto(gid Version) []Version {
	prefix, ok, _ := r.vkey(gid, false)
	if !ok {
		return nil
	}
	var out []Version
	c := r.m.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if v, ok := r.versionOfKey(k[len(prefix):]); ok {
			out = append(out, v)
		}
	}
	return out
}

// byKey returns the live records whose natural key is key.
func (r *rtx) byKey(key string) ([]*record, error) {
	var out []*record
	if rec, err := r.byHandle(key); err != nil {
		return nil, err
	} else if rec != nil && rec.live() && rec.Key == key {
		out = append(out, rec)
	}
	prefix := keyPrefix(key)
	c := r.k.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		gid, ok := r.versionOfKey(k[len(prefix):])
		if !ok {
			continue // a longer key that starts alike
		}
		rec, err := r.byGID(gid)
		if err != nil {
			return nil, err
		}
		if rec.live() && rec.Key == key && rec.keyed() {
			out = append(out, rec)
		}
	}
	return out, nil
}

// eachRecord calls fn with every record of the replica: the live ones in handle order, then the
// others (tombstones, removed data) in the order of their IDs.
func (r *rtx) eachRecord(fn func(rec *record) error) error {
	if err := r.eachLive(fn); err != nil {
		return err
	}
	return r.eachInline(fn)
}

// eachLive calls fn with every live record, in handle order.
func (r *rtx) eachLive(fn func(rec *record) error) error {
	return r.h.ForEach(func(k, v []byte) error {
		rec, err := r.decode(v, string(k))
		if err != nil {
			return fmt.Errorf("replica %q, handle %q: %w", r.name, k, err)
		}
		return fn(rec)
	})
}

// eachInline calls fn with every record kept in the ID index: tombstones and removed data.
func (r *rtx) eachInline(fn func(rec *record) error) error {
	return r.x.ForEach(func(k, v []byte) error {
		if len(v) == 0 || v[0] != xInline {
			return nil
		}
		gid, _ := r.versionOfKey(k)
		rec, err := r.byGIDKey(gid, v)
		if err != nil {
			return err
		}
		return fn(rec)
	})
}
