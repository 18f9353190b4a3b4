package repl

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// A snapshot is a replica's metadata as a stream: its ID, knowledge and every item record (live
// and tombstones). The manager keeps the device replica's snapshot in .cradle/ on the device, so
// that two computers syncing one device share its identity and knowledge instead of each
// inventing their own (which would make every item look changed on both).
//
// Format (version 2): the magic "CRADLE-SNAPSHOT\n", a format byte, the replica ID (16 bytes), the
// writer (the author ID of the handle file that wrote it, 16 bytes), the generation (uvarint), the
// knowledge (with its holes), the forgotten knowledge, the partners' knowledge (see forget.go), the
// number of records (uvarint) and each record length-prefixed, then the SHA-256 of everything
// before it. Version 1, still read, had the knowledge without holes, then the records. Decoding reads untrusted bytes from a device: it checks the checksum
// before believing anything, never panics, and allocates no more than the input justifies.
//
// Which is newer, the device's snapshot or the local copy? The local copy remembers the snapshot
// it last imported or wrote (ConfirmExport): generation, writer and checksum. ImportReplica takes
// the device's snapshot unless it is that same snapshot, one this handle file wrote itself (the
// local copy is at least as new, unless the local copy was restored from a backup: see
// renewRestored), or one of an older generation of the same replica. So a session
// that was interrupted before it wrote its snapshot resumes from the local copy, and a snapshot
// another computer wrote is imported.

var snapshotMagic = []byte("CRADLE-SNAPSHOT\n")

// Snapshot formats: 2 carries records of format 2 (content hashes); 1 is still read.
const (
	snapshotFormatV1 = 1
	snapshotFormat   = 2
)

// MaxSnapshotSize bounds what ImportReplica reads (a device could hold anything in .cradle/); a
// snapshot of two million items fits.
const MaxSnapshotSize = 256 << 20

// ErrBadSnapshot is matched by errors about a snapshot that cannot be used.
var ErrBadSnapshot = errors.New("bad replica snapshot")

// SnapshotInfo identifies a snapshot.
type SnapshotInfo struct {
	Replica ReplicaID // the replica's identity
	Writer  ReplicaID // the handle file that wrote it (its author ID for that replica)
	Gen     uint64    // generation: one more than the newest the writer had seen
	Sum     [32]byte  // SHA-256 of the snapshot's content
	Items   int       // records (live items and tombstones)
}

type snapshotMark struct {
	gen    uint64
	writer ReplicaID
	sum    [32]byte
}

func (m snapshotMark) encode() []byte {
	b := appendUvarint(nil, m.gen)
	b = append(b, m.writer[:]...)
	return append(b, m.sum[:]...)
}

func (m *snapshotMark) decode(b []byte) error {
	d := decoder{b: b}
	m.gen = d.uvarint()
	m.writer = d.replica()
	copy(m.sum[:], d.bytesN(32))
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("snapshot mark: %w", d.err)
	}
	return nil
}

// snapshot is a decoded snapshot.
type snapshot struct {
	info      SnapshotInfo
	know      *Knowledge
	forgotten *Knowledge
	partners  map[ReplicaID]partnerMark
	records   []*record
}

// ExportReplica writes the named replica's snapshot to w, as it reads it. Call ConfirmExport with
// the returned info once w's bytes are safely stored; after an error, w holds an unusable part of
// a snapshot.
func (hf *HandleFile) ExportReplica(name string, w io.Writer) (SnapshotInfo, error) {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	var info SnapshotInfo
	err := hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, name, false)
		if err != nil {
			return err
		}
		n := 0
		for _, b := range []*bolt.Bucket{r.h, r.x} {
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if b == r.h || (len(v) > 0 && v[0] == xInline) {
					n++
				}
			}
		}
		// Records travel in format 2, with whole replica IDs: the snapshot is read by other
		// computers, whose handle files number authors otherwise. They are written as they are
		// read, without a copy of the whole snapshot in memory.
		sw := newSnapshotWriter(w, r.id, r.author, r.seen.gen+1, r.know, r.forgotten, r.partners, n)
		var scratch []byte
		if err := r.eachRecord(func(rec *record) error {
			scratch = rec.appendEncoded(scratch[:0])
			sw.record(scratch)
			n--
			return sw.err
		}); err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("replica %q: records changed while they were counted: %w", name, errMalformed)
		}
		info, err = sw.finish()
		return err
	})
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("export replica %q: %w", name, err)
	}
	return info, nil
}

// ConfirmExport records that the snapshot info describes is stored where ImportReplica will read
// it, so the local copy and that snapshot are known to be the same.
func (hf *HandleFile) ConfirmExport(name string, info SnapshotInfo) error {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	return hf.update(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, name, false)
		if err != nil {
			return err
		}
		if r.id != info.Replica {
			return fmt.Errorf("confirm snapshot of %q: it is of another replica (%s, local %s)", name, info.Replica, r.id)
		}
		r.seen = snapshotMark{gen: info.Gen, writer: info.Writer, sum: info.Sum}
		r.dirty = true
		return r.save()
	})
}

// ImportReplica reads a snapshot (from the device) and, when it is newer than the local copy of
// the named replica (see the rule above), replaces the replica's metadata with it: its ID,
// knowledge and items. The local author ID and tick counter stay, so versions minted here never
// collide with another computer's. It reports whether it imported. A damaged or hostile snapshot
// gives an error matching ErrBadSnapshot and changes nothing; the caller then keeps the local
// copy (the device's data is re-detected as usual).
func (hf *HandleFile) ImportReplica(ctx context.Context, name string, rd io.Reader) (bool, error) {
	data, err := io.ReadAll(io.LimitReader(rd, MaxSnapshotSize+1))
	if err != nil {
		return false, fmt.Errorf("read snapshot of %q: %w", name, err)
	}
	if len(data) > MaxSnapshotSize {
		return false, fmt.Errorf("snapshot of %q is larger than %d bytes: %w", name, MaxSnapshotSize, ErrBadSnapshot)
	}
	snap, err := decodeSnapshot(data)
	if err != nil {
		return false, fmt.Errorf("snapshot of %q: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	hf.mu.Lock()
	defer hf.mu.Unlock()
	imported := false
	err = hf.update(func(tx *bolt.Tx) error {
		restored, err := hf.renewRestored(tx, name, snap.know)
		if err != nil {
			return err
		}
		r, err := hf.openReplica(tx, name, false)
		switch {
		case errors.Is(err, ErrUnknownReplica):
			if r, err = hf.openReplica(tx, name, true); err != nil {
				return err
			}
		case err != nil:
			return err
		case restored:
			// This file is older than what the device knows of it: the device's copy is newer
			// even if this file's author wrote it.
		default:
			switch {
			case snap.info.Sum == r.seen.sum:
				return nil // the snapshot we last saw: the local copy is as new or newer
			case snap.info.Writer == r.author:
				return nil // one we wrote: the local copy is at least as new
			case snap.info.Replica == r.id && snap.info.Gen < r.seen.gen:
				return nil // stale
			}
		}
		oldAuthor := r.author
		if err := r.replaceWith(snap); err != nil {
			return err
		}
		imported = true
		if r.author != oldAuthor {
			// The local copy had versions the snapshot lacks: what was learned from them here
			// no longer holds.
			if err := hf.dropOrphans(tx, name, oldAuthor, r.know); err != nil {
				return err
			}
		}
		return r.save()
	})
	if err != nil {
		return false, fmt.Errorf("import snapshot of %q: %w", name, err)
	}
	return imported, nil
}

// renewRestored finds the replicas of this handle file whose own versions the snapshot's knowledge
// knows beyond their tick: the file was restored from a backup (or lost its last commits) after
// it had minted those versions, and minting them again would give other items versions the device
// and other computers already know (they would never be sent, and later changes would be taken for
// changes of other items). Like Sync Framework's replica restored from a backup, each such replica
// takes a new author ID and never mints those versions again; its items, older than the device's,
// meet the device's versions as concurrent ones (identical content merges quietly). It reports
// whether the replica name, the one being imported, was among them.
func (hf *HandleFile) renewRestored(tx *bolt.Tx, name string, know *Knowledge) (bool, error) {
	var names []string
	if err := tx.Bucket(bucketReplicas).ForEachBucket(func(k []byte) error {
		names = append(names, string(k))
		return nil
	}); err != nil {
		return false, err
	}
	restored := false
	for _, n := range names {
		r, err := hf.openReplica(tx, n, false)
		if err != nil {
			return false, err
		}
		if know.top(r.author) <= r.tick {
			continue
		}
		if n == name {
			restored = true // the import raises its tick past what the snapshot knows
			continue
		}
		r.author = NewReplicaID()
		r.tick = 0
		r.dirty = true
		if err := r.b.Put(keyAuthor, r.author[:]); err != nil {
			return false, err
		}
		if err := r.save(); err != nil {
			return false, err
		}
	}
	return restored, nil
}

// replaceWith drops the replica's items and takes the snapshot's.
func (r *rtx) replaceWith(snap *snapshot) error {
	for _, name := range itemBuckets {
		if err := r.b.DeleteBucket(name); err != nil {
			return err
		}
		if _, err := r.b.CreateBucket(name); err != nil {
			return err
		}
	}
	if err := r.bindBuckets(); err != nil {
		return err
	}
	r.count = 0
	r.id = snap.info.Replica
	r.know = snap.know.Clone()
	r.forgotten = snap.forgotten.Clone()
	r.partners = snap.partners
	r.seen = snapshotMark{gen: snap.info.Gen, writer: snap.info.Writer, sum: snap.info.Sum}
	if top := r.know.vec.Get(r.author); r.tick < top {
		r.tick = top
	}
	for _, v := range r.know.exc {
		if v.Replica == r.author && v.Tick > r.tick {
			r.tick = v.Tick
		}
	}
	if r.tick > 0 && !r.know.Contains(Version{r.author, r.tick}) {
		// Versions minted here after the snapshot was taken are not in it: go on under a new
		// author ID, so the knowledge stays a plain vector instead of collecting exceptions.
		r.author = NewReplicaID()
		r.tick = 0
		if err := r.b.Put(keyAuthor, r.author[:]); err != nil {
			return err
		}
	}
	r.dirty = true
	if err := checkSnapshotRecords(snap.records); err != nil {
		return err
	}
	for _, rec := range snap.records {
		if err := r.put(nil, rec); err != nil {
			return err
		}
	}
	return nil
}

// checkSnapshotRecords refuses records that cannot all be items of one replica: two at one handle,
// two with one global ID, a version that two items claim (as their ID or their current version).
func checkSnapshotRecords(recs []*record) error {
	seenH := map[string]bool{}
	owner := map[Version]Version{} // ID or current version -> the item's ID
	for _, rec := range recs {
		if !rec.inline() {
			if seenH[rec.Handle] {
				return fmt.Errorf("two items at handle %q: %w", rec.Handle, ErrBadSnapshot)
			}
			seenH[rec.Handle] = true
		}
		if _, dup := owner[rec.GID]; dup {
			return fmt.Errorf("item %v twice, or the version of another item: %w", rec.GID, ErrBadSnapshot)
		}
		owner[rec.GID] = rec.GID
		if rec.Ver != rec.GID {
			if _, dup := owner[rec.Ver]; dup {
				return fmt.Errorf("two items with version %v: %w", rec.Ver, ErrBadSnapshot)
			}
			owner[rec.Ver] = rec.GID
		}
	}
	return nil
}

// encodeSnapshot builds a snapshot from encoded records.
func encodeSnapshot(id, writer ReplicaID, gen uint64, know, forgotten *Knowledge, partners map[ReplicaID]partnerMark, recs [][]byte) ([]byte, SnapshotInfo) {
	var buf bytes.Buffer
	sw := newSnapshotWriter(&buf, id, writer, gen, know, forgotten, partners, len(recs))
	for _, rec := range recs {
		sw.record(rec)
	}
	info, _ := sw.finish() // a bytes.Buffer does not fail
	return buf.Bytes(), info
}

// snapshotWriter writes a snapshot to w as its records come, hashing what it writes.
type snapshotWriter struct {
	w    io.Writer
	bw   *bufio.Writer // to w and h
	h    hash.Hash
	info SnapshotInfo
	err  error
}

func newSnapshotWriter(w io.Writer, id, writer ReplicaID, gen uint64, know, forgotten *Knowledge, partners map[ReplicaID]partnerMark, count int) *snapshotWriter {
	sw := &snapshotWriter{w: w, h: sha256.New(), info: SnapshotInfo{Replica: id, Writer: writer, Gen: gen, Items: count}}
	sw.bw = bufio.NewWriterSize(io.MultiWriter(w, sw.h), 64<<10)
	head := append([]byte{}, snapshotMagic...)
	head = append(head, snapshotFormat)
	head = append(head, id[:]...)
	head = append(head, writer[:]...)
	head = appendUvarint(head, gen)
	head = know.appendTo(head)
	head = forgotten.appendTo(head)
	head = appendPartners(head, partners)
	head = appendUvarint(head, uint64(count))
	sw.write(head)
	return sw
}

func (sw *snapshotWriter) write(b []byte) {
	if sw.err == nil {
		_, sw.err = sw.bw.Write(b)
	}
}

// record writes one encoded record.
func (sw *snapshotWriter) record(rec []byte) {
	var n [binary.MaxVarintLen64]byte
	sw.write(n[:binary.PutUvarint(n[:], uint64(len(rec)))])
	sw.write(rec)
}

// finish writes the checksum.
func (sw *snapshotWriter) finish() (SnapshotInfo, error) {
	if sw.err == nil {
		sw.err = sw.bw.Flush()
	}
	if sw.err != nil {
		return SnapshotInfo{}, fmt.Errorf("write snapshot: %w", sw.err)
	}
	sw.info.Sum = [32]byte(sw.h.Sum(nil))
	if _, err := sw.w.Write(sw.info.Sum[:]); err != nil {
		return SnapshotInfo{}, fmt.Errorf("write snapshot: %w", err)
	}
	return sw.info, nil
}

// decodeSnapshot parses and verifies a snapshot. It never panics.
func decodeSnapshot(data []byte) (*snapshot, error) {
	if len(data) < len(snapshotMagic)+1+32 || !bytes.Equal(data[:len(snapshotMagic)], snapshotMagic) {
		return nil, fmt.Errorf("not a Cradle replica snapshot: %w", ErrBadSnapshot)
	}
	body, sum := data[:len(data)-32], data[len(data)-32:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, fmt.Errorf("checksum mismatch (the file is damaged or incomplete): %w", ErrBadSnapshot)
	}
	d := decoder{b: body[len(snapshotMagic):]}
	f := d.byte()
	if f != snapshotFormat && f != snapshotFormatV1 {
		return nil, fmt.Errorf("snapshot format %d, this Cradle reads %d (update Cradle): %w", f, snapshotFormat, ErrBadSnapshot)
	}
	snap := &snapshot{}
	snap.info.Replica = d.replica()
	snap.info.Writer = d.replica()
	snap.info.Gen = d.uvarint()
	snap.know = d.knowledge(f == snapshotFormat)
	snap.forgotten, snap.partners = &Knowledge{}, map[ReplicaID]partnerMark{}
	if f == snapshotFormat {
		snap.forgotten = d.knowledge(true)
		snap.partners = d.partners()
	}
	n := d.count(8)
	for i := 0; i < n && d.err == nil; i++ {
		size := d.count(1)
		rb := d.bytesN(size)
		if d.err != nil {
			break
		}
		rd := decoder{b: rb}
		rec := rd.record()
		if rd.err == nil && len(rd.b) != 0 {
			rd.fail("trailing bytes in record")
		}
		if rd.err != nil {
			d.err = fmt.Errorf("record %d: %w", i, rd.err)
			break
		}
		if !rec.inline() && rec.Handle == "" {
			d.fail("record %d: live item without a handle", i)
			break
		}
		snap.records = append(snap.records, rec)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%v: %w", d.err, ErrBadSnapshot)
	}
	if snap.info.Replica.IsZero() || snap.info.Gen == 0 {
		return nil, fmt.Errorf("no replica ID or generation: %w", ErrBadSnapshot)
	}
	snap.info.Sum = [32]byte(sum)
	snap.info.Items = len(snap.records)
	return snap, nil
}

// dropOrphans is run when an imported snapshot replaced a local copy of replica name that had
// versions the snapshot lacks (a session here changed the device, then the snapshot it wrote never
// reached the device, and another computer has since written a newer one): those versions, the
// orphans, are a branch of the replica's history nobody else will see. The partner replicas' items
// built on them claim, through the orphans, versions the other computer may have settled
// otherwise: a device item this computer took for edited may have been moved away there and live
// on under another name. Such items keep their content and name but get a new version that
// claims nothing of the replica's old author: the next session compares them with the replica's
// items as concurrent versions (identical content merges quietly, the rest goes to the policy),
// never as versions that include the other side. Conflicts forget the orphan versions they saw.
// know is the replica's knowledge after the import.
func (hf *HandleFile) dropOrphans(tx *bolt.Tx, name string, author ReplicaID, know *Knowledge) error {
	first := know.vec.Get(author) + 1 // the first orphan: an author's versions are a run from 1
	for know.Contains(Version{author, first}) {
		first++
	}
	orphan := func(v Version) bool { return v.Replica == author && v.Tick >= first }
	var partners []string
	if err := tx.Bucket(bucketReplicas).ForEachBucket(func(k []byte) error {
		if string(k) != name {
			partners = append(partners, string(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, pn := range partners {
		p, err := hf.openReplica(tx, pn, false)
		if err != nil {
			return err
		}
		var touched []*record
		if err := p.eachRecord(func(rec *record) error {
			if rec.V.Get(author) >= first {
				touched = append(touched, rec)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, old := range touched {
			rec := *old
			v := p.mint()
			rec.Ver, rec.V = v, old.V.without(author)
			// Content, name and units set by the old author become this version's: a vector
			// cannot claim one of that author's versions without the ones before it.
			for _, x := range []*Version{&rec.CVer, &rec.NVer} {
				if x.Replica == author {
					*x = v
				}
			}
			rec.V = rec.V.With(v)
			rec.Units = slices.Clone(old.Units)
			for i := range rec.Units {
				if rec.Units[i].Ver.Replica == author {
					rec.Units[i].Ver = v
				}
			}
			if err := p.put(old, &rec); err != nil {
				return err
			}
		}
		if err := p.save(); err != nil {
			return err
		}
	}
	all := tx.Bucket(bucketConflicts)
	changed := map[uint64]*Conflict{}
	if err := all.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return nil
		}
		id := binary.BigEndian.Uint64(k)
		c, err := decodeConflict(id, v)
		if err != nil {
			return err
		}
		for i := range c.Sides {
			if orphan(c.Sides[i].ver) {
				c.Sides[i].ver = Version{}
				changed[id] = c
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for id, c := range changed {
		if err := all.Put(u64(id), c.encode()); err != nil {
			return err
		}
	}
	return nil
}
