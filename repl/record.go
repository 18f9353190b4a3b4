package repl

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
)

// record is what a replica remembers of one item: a live handle or a tombstone.
type record struct {
	GID  Version // creation version, the item's global ID
	Ver  Version // change version: the last change this replica has of the item
	CVer Version // the change that last set the content: equal CVer means equal content
	NVer Version // the change that last set the name
	V    Vector  // made-with knowledge: every change of the item that Ver includes

	Tomb bool
	// Missing marks a live item whose data the engine removed after an unfinished write to a
	// store that is not atomic: its absence is not a user's delete.
	Missing bool
	// Merged, on a tombstone, is the global ID this item was merged into when two replicas
	// turned out to hold the same item under two IDs (first sync, rebuild).
	Merged Version

	Handle string // in this replica's store (the last one, for a tombstone)
	Name   string // portable name, what other stores derive their handle from
	Key    string // natural key
	Stamp  Stamp
	// Sum is the SHA-256 of the item's content as Stamp describes it, when the engine has seen
	// the bytes (a transfer, a comparison, a check of a racy or touched item); zero when unknown.
	// Content, not the stamp, decides every question that could lose data: whether a touched
	// item changed, whether a new item is a renamed one, whether two items are the same.
	Sum [32]byte
	// Racy marks a stamp taken so soon after the item's modification time that a later write in
	// the same tick of the store's clock would leave the stamp as it is (git's racily clean
	// entries): the next detection checks the content even if the stamp did not change.
	Racy  bool
	Units []unitRec // sorted by name; nil for an item without change units
	When  int64     // Unix nanoseconds of the last change (the deletion, for a tombstone)
}

// hasSum reports whether the record knows its content's hash.
func (r *record) hasSum() bool { return r.Sum != [32]byte{} }

// unitRec is one change unit of an item.
type unitRec struct {
	Name    string
	Ver     Version
	Hash    [16]byte // of the unit's value
	Deleted bool
}

func unitHash(v []byte) [16]byte {
	s := sha256.Sum256(v)
	var h [16]byte
	copy(h[:], s[:16])
	return h
}

func (r *record) unit(name string) (unitRec, bool) {
	i, ok := slices.BinarySearchFunc(r.Units, name, func(u unitRec, n string) int { return strings.Compare(u.Name, n) })
	if !ok {
		return unitRec{}, false
	}
	return r.Units[i], true
}

func (r *record) live() bool { return r != nil && !r.Tomb && !r.Missing }

// Record formats: 1 had one byte of flags; 2 has them as a uvarint and adds Sum and Racy. A
// snapshot carries records of format 2 (encode); the handle file keeps them in format 3
// (record3.go), and reads those of format 1 and 2 when it upgrades an older file. Records of
// format 1 (snapshots written before) are still read.
const (
	recordFormatV1 = 1
	recordFormat   = 2
)

const (
	flagTomb = 1 << iota
	flagMissing
	flagNameIsHandle
	flagKeyIsName
	flagMerged
	flagUnits
	flagCVerIsVer
	flagNVerIsGID
	flagSum
	flagRacy
)

func (r *record) encode() []byte {
	return r.appendEncoded(make([]byte, 0, 128+len(r.Handle)+len(r.Stamp.Hash)+17*len(r.V)))
}

// appendEncoded appends the record in format 2 to b.
func (r *record) appendEncoded(b []byte) []byte {
	var flags uint64
	if r.Tomb {
		flags |= flagTomb
	}
	if r.Missing {
		flags |= flagMissing
	}
	if r.Name == r.Handle {
		flags |= flagNameIsHandle
	}
	if r.Key == r.Name {
		flags |= flagKeyIsName
	}
	if !r.Merged.IsZero() {
		flags |= flagMerged
	}
	if r.Units != nil {
		flags |= flagUnits
	}
	if r.CVer == r.Ver {
		flags |= flagCVerIsVer
	}
	if r.NVer == r.GID || r.NVer.IsZero() {
		flags |= flagNVerIsGID
	}
	if r.hasSum() {
		flags |= flagSum
	}
	if r.Racy {
		flags |= flagRacy
	}
	b = append(b, recordFormat)
	b = appendUvarint(b, flags)
	b = append(b, byte(r.Stamp.Kind))
	b = appendVarint(b, r.Stamp.Size)
	b = appendVarint(b, r.Stamp.ModTime)
	b = appendString(b, r.Stamp.Hash)
	if flags&flagSum != 0 {
		b = append(b, r.Sum[:]...)
	}
	b = appendVersion(b, r.GID)
	b = appendVersion(b, r.Ver)
	if flags&flagCVerIsVer == 0 {
		b = appendVersion(b, r.CVer)
	}
	if flags&flagNVerIsGID == 0 {
		b = appendVersion(b, r.NVer)
	}
	b = appendVector(b, r.V)
	b = appendString(b, r.Handle)
	if flags&flagNameIsHandle == 0 {
		b = appendString(b, r.Name)
	}
	if flags&flagKeyIsName == 0 {
		b = appendString(b, r.Key)
	}
	if flags&flagMerged != 0 {
		b = appendVersion(b, r.Merged)
	}
	if flags&flagUnits != 0 {
		b = appendUvarint(b, uint64(len(r.Units)))
		for _, u := range r.Units {
			b = appendString(b, u.Name)
			b = appendVersion(b, u.Ver)
			b = append(b, u.Hash[:]...)
			if u.Deleted {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	b = appendVarint(b, r.When)
	return b
}

func decodeRecord(b []byte) (*record, error) {
	d := decoder{b: b}
	r := d.record()
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode item record: %w", d.err)
	}
	return r, nil
}

// recordFlags reads a record's format and flags.
func (d *decoder) recordFlags() uint64 {
	switch f := d.byte(); {
	case d.err != nil:
		return 0
	case f == recordFormatV1:
		return uint64(d.byte())
	case f == recordFormat:
		flags := d.uvarint()
		if flags >= flagRacy<<1 {
			d.fail("unknown record flags %x", flags)
		}
		return flags
	default:
		d.fail("item record format %d", f)
		return 0
	}
}

func (d *decoder) record() *record {
	flags := d.recordFlags()
	r := &record{}
	r.Stamp.Kind = Kind(d.byte())
	if r.Stamp.Kind > KindFolder {
		d.fail("bad kind %d", r.Stamp.Kind)
	}
	r.Stamp.Size = d.varint()
	r.Stamp.ModTime = d.varint()
	r.Stamp.Hash = d.string()
	if flags&flagSum != 0 {
		copy(r.Sum[:], d.bytesN(32))
	}
	r.Racy = flags&flagRacy != 0
	r.GID = d.version()
	r.Ver = d.version()
	r.CVer = r.Ver
	if flags&flagCVerIsVer == 0 {
		r.CVer = d.version()
	}
	r.NVer = r.GID
	if flags&flagNVerIsGID == 0 {
		r.NVer = d.version()
	}
	r.V = d.vector()
	r.Handle = d.string()
	r.Name = r.Handle
	if flags&flagNameIsHandle == 0 {
		r.Name = d.string()
	}
	r.Key = r.Name
	if flags&flagKeyIsName == 0 {
		r.Key = d.string()
	}
	r.Tomb = flags&flagTomb != 0
	r.Missing = flags&flagMissing != 0
	if flags&flagMerged != 0 {
		r.Merged = d.version()
	}
	if flags&flagUnits != 0 {
		n := d.count(1 + 17 + 16 + 1)
		r.Units = make([]unitRec, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			u := unitRec{Name: d.string(), Ver: d.version()}
			copy(u.Hash[:], d.bytesN(16))
			u.Deleted = d.byte() != 0
			if i > 0 && r.Units[i-1].Name >= u.Name {
				d.fail("units not sorted")
			}
			r.Units = append(r.Units, u)
		}
	}
	r.When = d.varint()
	if d.err == nil && r.GID.Tick == 0 {
		d.fail("item without a global ID")
	}
	return r
}

// peekedStamp is the head of an encoded record: its stamp (the hash a sub-slice of the record's
// bytes) and the flags detection needs.
type peekedStamp struct {
	kind      Kind
	size, mod int64
	change    int64 // 0: not recorded
	hash      []byte
	missing   bool
	racy      bool
}

// peekStamp reads the stamp at the head of an encoded record without allocating. Change
// detection calls it for every unchanged item.
func peekStamp(b []byte) (peekedStamp, bool) {
	if len(b) > 0 && b[0] == recordFormatV3 {
		return peek3(b)
	}
	d := decoder{b: b}
	flags := d.recordFlags()
	var p peekedStamp
	p.kind = Kind(d.byte())
	p.size = d.varint()
	p.mod = d.varint()
	n := d.count(1)
	p.hash = d.bytesN(n)
	p.missing, p.racy = flags&flagMissing != 0, flags&flagRacy != 0
	return p, d.err == nil
}
