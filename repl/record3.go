package repl

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Format 3 of the handle file keeps about a third of the bytes per item of format 2 (840 bytes an
// item at 100k items, both replicas, in four bbolt keys each): versions name their replica by a
// small number from the replica's author list instead of 16 bytes, a live record does not repeat
// its handle (it is the record's key), fields equal to another field or to their usual value are
// left out, and one index answers both "where is item G" and "which item has version V" (see
// index.go). A snapshot, which travels to other computers, still carries records of format 2
// with whole replica IDs.

const recordFormatV3 = 3

// maxModSeconds bounds a modification time in seconds, so that it fits in nanoseconds.
const maxModSeconds = (1 << 62) / 1_000_000_000

// Flags of a format-3 record. The seven lowest are what an ordinary live record carries, so its
// flags take one byte; the others mark exceptions.
const (
	f3Folder   = 1 << iota // Stamp.Kind is KindFolder
	f3Racy                 // Racy
	f3ModNanos             // the modification time is stored in nanoseconds (else in whole seconds)
	f3Sum                  // a 32-byte slot for Sum follows (zero: unknown)
	f3Hash                 // Stamp.Hash follows
	f3Ver                  // Ver differs from GID
	f3V                    // V differs from {Ver}
	f3CVer                 // CVer differs from Ver
	f3NVer                 // NVer differs from GID
	f3Name                 // Name differs from Handle
	f3Key                  // Key differs from Name
	f3Tomb                 // Tomb
	f3Missing              // Missing
	f3Merged               // Merged follows
	f3Units                // Units follow
	f3When                 // When follows (kept for tombstones: their age decides when they go)
	f3Handle               // Handle follows (a record that is not stored under its handle)
	f3Change               // Stamp.Change follows the modification time, as its distance from it
	f3Last     = f3Change
)

// authors is a replica's list of the replica IDs its records' versions name: a version is stored
// as its author's position in the list (1 on; 0 is the zero ID) and its tick. The list only
// grows; it lives under keyAuthors in the replica's bucket, rewritten when it grows.
type authors struct {
	ids []ReplicaID
	pos map[ReplicaID]uint64
}

func (a *authors) load(b []byte) error {
	if len(b)%16 != 0 {
		return fmt.Errorf("author list of %d bytes: %w", len(b), errMalformed)
	}
	a.ids = a.ids[:0]
	a.pos = make(map[ReplicaID]uint64, len(b)/16)
	for i := 0; i < len(b); i += 16 {
		id := ReplicaID(b[i : i+16])
		if _, dup := a.pos[id]; dup || id.IsZero() {
			return fmt.Errorf("author list names %s twice or zero: %w", id, errMalformed)
		}
		a.ids = append(a.ids, id)
		a.pos[id] = uint64(len(a.ids))
	}
	return nil
}

func (a *authors) encode() []byte {
	b := make([]byte, 0, 16*len(a.ids))
	for _, id := range a.ids {
		b = append(b, id[:]...)
	}
	return b
}

// number returns id's position in the list (0 for the zero ID).
func (r *rtx) number(id ReplicaID) (uint64, bool) {
	if id.IsZero() {
		return 0, true
	}
	n, ok := r.auth.pos[id]
	if !ok {
		// Another view of this replica in the same transaction may have added it.
		if err := r.reloadAuthors(); err == nil {
			n, ok = r.auth.pos[id]
		}
	}
	return n, ok
}

// numberOrAdd is number, adding id to the list when it is new (the transaction must be writable).
func (r *rtx) numberOrAdd(id ReplicaID) (uint64, error) {
	if n, ok := r.number(id); ok {
		return n, nil
	}
	r.auth.ids = append(r.auth.ids, id)
	n := uint64(len(r.auth.ids))
	r.auth.pos[id] = n
	if err := r.b.Put(keyAuthors, r.auth.encode()); err != nil {
		return 0, err
	}
	return n, nil
}

// author returns the replica ID at position n.
func (r *rtx) authorAt(n uint64) (ReplicaID, bool) {
	if n == 0 {
		return ReplicaID{}, true
	}
	if n > uint64(len(r.auth.ids)) {
		if err := r.reloadAuthors(); err != nil {
			return ReplicaID{}, false
		}
	}
	if n > uint64(len(r.auth.ids)) {
		return ReplicaID{}, false
	}
	return r.auth.ids[n-1], true
}

func (r *rtx) reloadAuthors() error {
	return r.auth.load(r.b.Get(keyAuthors))
}

// vkey is a version as an index key: its author's number and its tick, both big-endian and
// length-prefixed, so keys sort by author and then by tick. ok is false when the version's author
// is not in the list (no record can name it) and add is false.
func (r *rtx) vkey(v Version, add bool) ([]byte, bool, error) {
	var n uint64
	if add {
		var err error
		if n, err = r.numberOrAdd(v.Replica); err != nil {
			return nil, false, err
		}
	} else {
		var ok bool
		if n, ok = r.number(v.Replica); !ok {
			return nil, false, nil
		}
	}
	return appendVKey(nil, n, v.Tick), true, nil
}

// appendVKey appends the key of the version (author number n, tick): one byte for numbers under
// 255 (else 255 and two bytes), then the tick's length and its big-endian bytes.
func appendVKey(b []byte, n, tick uint64) []byte {
	if n < 0xff {
		b = append(b, byte(n))
	} else {
		b = append(b, 0xff, byte(n>>8), byte(n))
	}
	l := (bits.Len64(tick) + 7) / 8
	b = append(b, byte(l))
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], tick)
	return append(b, t[8-l:]...)
}

// splitVKey reads a version key at the head of k; it returns the author number, the tick and the
// rest of k.
func splitVKey(k []byte) (n, tick uint64, rest []byte, ok bool) {
	if len(k) < 2 {
		return 0, 0, nil, false
	}
	n, k = uint64(k[0]), k[1:]
	if n == 0xff {
		if len(k) < 3 {
			return 0, 0, nil, false
		}
		n, k = uint64(k[0])<<8|uint64(k[1]), k[2:]
		if n < 0xff {
			return 0, 0, nil, false
		}
	}
	l := int(k[0])
	if l > 8 || len(k) < 1+l || (l > 0 && k[1] == 0) {
		return 0, 0, nil, false
	}
	for _, c := range k[1 : 1+l] {
		tick = tick<<8 | uint64(c)
	}
	return n, tick, k[1+l:], true
}

// versionOfKey reads a whole key made by vkey.
func (r *rtx) versionOfKey(k []byte) (Version, bool) {
	n, tick, rest, ok := splitVKey(k)
	if !ok || len(rest) != 0 {
		return Version{}, false
	}
	id, ok := r.authorAt(n)
	if !ok {
		return Version{}, false
	}
	return Version{Replica: id, Tick: tick}, true
}

func (r *rtx) appendVersion3(b []byte, v Version) ([]byte, error) {
	n, err := r.numberOrAdd(v.Replica)
	if err != nil {
		return nil, err
	}
	b = appendUvarint(b, n)
	return appendUvarint(b, v.Tick), nil
}

// encode3 encodes rec in format 3; withHandle keeps its handle in the bytes (a record that is not
// stored under its handle: a tombstone, an item whose data the engine removed).
func (r *rtx) encode3(rec *record, withHandle bool) ([]byte, error) {
	var flags uint64
	set := func(f uint64, on bool) {
		if on {
			flags |= f
		}
	}
	nver := rec.NVer
	if nver.IsZero() {
		nver = rec.GID
	}
	vIsVer := len(rec.V) == 1 && rec.V[0] == rec.Ver
	mod := rec.Stamp.ModTime
	set(f3Folder, rec.Stamp.Kind == KindFolder)
	set(f3Racy, rec.Racy)
	set(f3ModNanos, mod%1e9 != 0)
	// A live file's record always has room for its hash, so learning it later rewrites the
	// record in place instead of growing it (bbolt splits the page of a record that grows).
	set(f3Sum, rec.hasSum() || (rec.Stamp.Kind == KindFile && !withHandle))
	set(f3Hash, rec.Stamp.Hash != "")
	set(f3Ver, rec.Ver != rec.GID)
	set(f3V, !vIsVer)
	set(f3CVer, rec.CVer != rec.Ver)
	set(f3NVer, nver != rec.GID)
	set(f3Name, rec.Name != rec.Handle)
	set(f3Key, rec.Key != rec.Name)
	set(f3Tomb, rec.Tomb)
	set(f3Missing, rec.Missing)
	set(f3Merged, !rec.Merged.IsZero())
	set(f3Units, rec.Units != nil)
	set(f3When, rec.Tomb && rec.When != 0)
	set(f3Handle, withHandle)
	set(f3Change, rec.Stamp.Change != 0)
	b := make([]byte, 0, 64+len(rec.Name)+len(rec.Stamp.Hash))
	b = append(b, recordFormatV3)
	b = appendUvarint(b, flags)
	if rec.Stamp.Kind > KindFolder {
		return nil, fmt.Errorf("record of kind %d: %w", rec.Stamp.Kind, errMalformed)
	}
	b = appendVarint(b, rec.Stamp.Size)
	if flags&f3ModNanos != 0 {
		b = appendVarint(b, mod)
	} else {
		b = appendVarint(b, mod/1e9)
	}
	if flags&f3Change != 0 {
		b = appendVarint(b, rec.Stamp.Change-mod)
	}
	if flags&f3Hash != 0 {
		b = appendString(b, rec.Stamp.Hash)
	}
	if flags&f3Sum != 0 {
		b = append(b, rec.Sum[:]...)
	}
	var err error
	put := func(v Version) {
		if err == nil {
			b, err = r.appendVersion3(b, v)
		}
	}
	put(rec.GID)
	if flags&f3Ver != 0 {
		put(rec.Ver)
	}
	if flags&f3V != 0 {
		b = appendUvarint(b, uint64(len(rec.V)))
		for _, v := range rec.V {
			put(v)
		}
	}
	if flags&f3CVer != 0 {
		put(rec.CVer)
	}
	if flags&f3NVer != 0 {
		put(nver)
	}
	if flags&f3Handle != 0 {
		b = appendString(b, rec.Handle)
	}
	if flags&f3Name != 0 {
		b = appendString(b, rec.Name)
	}
	if flags&f3Key != 0 {
		b = appendString(b, rec.Key)
	}
	if flags&f3Merged != 0 {
		put(rec.Merged)
	}
	if flags&f3Units != 0 {
		b = appendUvarint(b, uint64(len(rec.Units)))
		for _, u := range rec.Units {
			b = appendString(b, u.Name)
			put(u.Ver)
			b = append(b, u.Hash[:]...)
			if u.Deleted {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	if flags&f3When != 0 {
		b = appendVarint(b, rec.When)
	}
	return b, err
}

// decode reads a record as stored in this replica: format 3, or 1 and 2 (read as they are).
// handle is the record's key when it is stored under its handle, else "".
func (r *rtx) decode(b []byte, handle string) (*record, error) {
	if len(b) > 0 && b[0] != recordFormatV3 {
		rec, err := decodeRecord(b)
		if err == nil && handle != "" && rec.Handle != handle {
			err = fmt.Errorf("record of handle %q stored under %q: %w", rec.Handle, handle, errMalformed)
		}
		return rec, err
	}
	d := decoder{b: b}
	rec := r.record3(&d, handle)
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode item record: %w", d.err)
	}
	return rec, nil
}

func (r *rtx) version3(d *decoder) Version {
	n, tick := d.uvarint(), d.uvarint()
	if d.err != nil {
		return Version{}
	}
	id, ok := r.authorAt(n)
	if !ok {
		d.fail("version of unknown author %d", n)
		return Version{}
	}
	if n == 0 && tick != 0 {
		d.fail("version of the zero author")
	}
	return Version{Replica: id, Tick: tick}
}

func (r *rtx) record3(d *decoder, handle string) *record {
	if f := d.byte(); d.err == nil && f != recordFormatV3 {
		d.fail("item record format %d", f)
	}
	flags := d.uvarint()
	if flags >= f3Last<<1 {
		d.fail("unknown record flags %x", flags)
	}
	rec := &record{}
	if flags&f3Folder != 0 {
		rec.Stamp.Kind = KindFolder
	}
	rec.Racy = flags&f3Racy != 0
	rec.Stamp.Size = d.varint()
	if flags&f3ModNanos != 0 {
		rec.Stamp.ModTime = d.varint()
	} else {
		s := d.varint()
		if s > maxModSeconds || s < -maxModSeconds {
			d.fail("modification time out of range")
		}
		rec.Stamp.ModTime = s * 1e9
	}
	if flags&f3Change != 0 {
		rec.Stamp.Change = rec.Stamp.ModTime + d.varint()
		if rec.Stamp.Change == 0 {
			d.fail("zero change time")
		}
	}
	if flags&f3Hash != 0 {
		rec.Stamp.Hash = d.string()
	}
	if flags&f3Sum != 0 {
		copy(rec.Sum[:], d.bytesN(32))
	}
	rec.GID = r.version3(d)
	rec.Ver = rec.GID
	if flags&f3Ver != 0 {
		rec.Ver = r.version3(d)
	}
	if flags&f3V != 0 {
		n := d.count(2)
		rec.V = make(Vector, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			v := r.version3(d)
			if v.Tick == 0 {
				d.fail("zero tick in a vector")
			}
			if i > 0 && bytes.Compare(rec.V[i-1].Replica[:], v.Replica[:]) >= 0 {
				d.fail("vector not sorted")
			}
			rec.V = append(rec.V, v)
		}
	} else {
		rec.V = Vector{rec.Ver}
	}
	rec.CVer = rec.Ver
	if flags&f3CVer != 0 {
		rec.CVer = r.version3(d)
	}
	rec.NVer = rec.GID
	if flags&f3NVer != 0 {
		rec.NVer = r.version3(d)
	}
	rec.Handle = handle
	if flags&f3Handle != 0 {
		rec.Handle = d.string()
	}
	rec.Name = rec.Handle
	if flags&f3Name != 0 {
		rec.Name = d.string()
	}
	rec.Key = rec.Name
	if flags&f3Key != 0 {
		rec.Key = d.string()
	}
	rec.Tomb = flags&f3Tomb != 0
	rec.Missing = flags&f3Missing != 0
	if flags&f3Merged != 0 {
		rec.Merged = r.version3(d)
	}
	if flags&f3Units != 0 {
		n := d.count(1 + 2 + 16 + 1)
		rec.Units = make([]unitRec, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			u := unitRec{Name: d.string(), Ver: r.version3(d)}
			copy(u.Hash[:], d.bytesN(16))
			u.Deleted = d.byte() != 0
			if i > 0 && rec.Units[i-1].Name >= u.Name {
				d.fail("units not sorted")
			}
			rec.Units = append(rec.Units, u)
		}
	}
	if flags&f3When != 0 {
		rec.When = d.varint()
	}
	switch {
	case d.err != nil:
	case rec.GID.Tick == 0:
		d.fail("item without a global ID")
	case (flags&f3Handle != 0) == (handle != ""):
		d.fail("record with its handle both in its key and in its bytes, or in neither")
	}
	return rec
}

// peek3 is peekStamp for a format-3 record.
func peek3(b []byte) (peekedStamp, bool) {
	d := decoder{b: b[1:]}
	flags := d.uvarint()
	var p peekedStamp
	if flags&f3Folder != 0 {
		p.kind = KindFolder
	}
	p.size = d.varint()
	p.mod = d.varint()
	if flags&f3ModNanos == 0 {
		p.mod *= 1e9
	}
	if flags&f3Change != 0 {
		p.change = p.mod + d.varint()
	}
	if flags&f3Hash != 0 {
		n := d.count(1)
		p.hash = d.bytesN(n)
	}
	p.missing, p.racy = flags&f3Missing != 0, flags&f3Racy != 0
	return p, d.err == nil
}
