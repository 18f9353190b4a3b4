package repl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Errors of the handle file.
var (
	// ErrInUse means another Cradle process has the handle file open.
	ErrInUse = errors.New("handle file is in use by another Cradle")
	// ErrCorrupt is matched by every *CorruptError.
	ErrCorrupt = errors.New("handle file is corrupt")
	// ErrUnknownReplica means a replica name is not in the handle file.
	ErrUnknownReplica = errors.New("no such replica in the handle file")
)

// CorruptError reports a handle file that cannot be read. The remedy is always the same: move the
// file aside (MoveAside) and open a fresh one; the next session rebuilds the metadata by
// enumerating both stores and matching items by natural key, so nothing is lost
// (items that differ on the two sides become conflicts under the partnership's policy).
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("handle file %s cannot be read (%v): it will be moved aside and rebuilt by scanning both sides "+
		"and matching items by name; nothing is deleted, and of a file that differs both versions are kept", e.Path, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// MoveAside renames a damaged handle file to "<path>.corrupt-<time>" (kept for diagnosis) and
// returns the new name. A missing file is not an error (it returns "").
func MoveAside(path string) (string, error) {
	aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(path, aside); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("move handle file %s aside: %w", path, err)
	}
	return aside, nil
}

// Options configure Open.
type Options struct {
	// Timeout bounds the wait for another process to release the file; 0 means 2 seconds.
	Timeout time.Duration
	// NoSync skips the fsync of each commit: faster, but a crash of the machine can lose the
	// last commits. Only for tests and benchmarks.
	NoSync bool
}

// HandleFile is an open handle file (ActiveSync kept its handles in Repl.dat). It is safe for
// concurrent use; sessions on one file run one at a time.
type HandleFile struct {
	path string
	db   *bolt.DB
	mu   sync.Mutex // one session, resolution or snapshot at a time
	// scratch marks a copy made by Scratch: Close removes its file, Forecast runs on it as it is.
	scratch bool
}

// fileAllocSize is how much the handle file grows beyond what it needs when it must grow.
const fileAllocSize = 64 << 10

// fillPercent is how full bbolt fills a page before splitting it, for the per-replica buckets.
const fillPercent = 0.95

// File formats of the handle file, in the "meta" bucket: 3 holds records of format 3 in the
// indexes of index.go; 2 held records of format 2 (content hashes) beside those of format 1 in
// four indexes per replica. A file of format 1 or 2 is rewritten in format 3 when opened
// (upgrade.go).
const (
	fileFormatV1 = 1
	fileFormatV2 = 2
	fileFormat   = 3
)

var (
	bucketMeta      = []byte("meta")
	bucketReplicas  = []byte("replicas")
	bucketConflicts = []byte("conflicts")
	bucketConfIndex = []byte("conflict-index")

	keyFormat = []byte("format")

	// per replica
	keyID      = []byte("id")
	keyAuthor  = []byte("author")
	keyTick    = []byte("tick")
	keyKnow    = []byte("knowledge")
	keySeen    = []byte("snapshot-seen")
	keyForgot  = []byte("forgotten")
	keyPartner = []byte("partners")
	keyCreated = []byte("created")
	keyCount   = []byte("count")
	keyAuthors = []byte("authors") // the replica IDs its versions name, 16 bytes each (record3.go)
	bucketH    = []byte("H")       // handle -> live record (index.go)
	bucketX    = []byte("X")       // version -> item: global IDs and current versions
	bucketK    = []byte("K")       // natural key (escaped) + 0 1 + global ID -> (live items keyed apart)
	bucketM    = []byte("M")       // merged into + global ID -> (tombstones of items merged into another)
	bucketI    = []byte("i")       // intents: target name -> intent

	// The indexes of format 1 and 2, read by the upgrade: handle -> record; global ID -> 0 +
	// handle or 1 + record; change version -> global ID; natural key + global ID; merged.
	bucketV2H = []byte("h")
	bucketV2G = []byte("g")
	bucketV2V = []byte("v")
	bucketV2K = []byte("k")
	bucketV2M = []byte("m")
)

// itemBuckets are a replica's item indexes (format 3), intents aside.
var itemBuckets = [][]byte{bucketH, bucketX, bucketK, bucketM}

// Open opens the handle file at path, creating it when missing. Another process holding it gives
// ErrInUse (after opts.Timeout); a file that is not a readable handle file gives a *CorruptError.
func Open(path string, opts Options) (hf *HandleFile, err error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	// bbolt reads the file through a memory map: a page it trusts that lies past the end of a
	// truncated file faults. Faults become panics here (recovered below), and a file shorter
	// than its own header says is not handed to bbolt at all.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			hf, err = nil, &CorruptError{Path: path, Err: fmt.Errorf("%v", p)}
		}
	}()
	if err := checkLength(path); err != nil {
		return nil, &CorruptError{Path: path, Err: err}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, NoSync: opts.NoSync})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, fmt.Errorf("open %s: %w (close the other Cradle window or `cradle watch`, then try again)", path, ErrInUse)
		case errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("open handle file: %w", err)
		}
		return nil, &CorruptError{Path: path, Err: err}
	}
	// The file grows by what it needs and a little more, not to the next power of two (bbolt's
	// default up to 16 MB): a file that churns in place keeps its size on disk.
	db.AllocSize = fileAllocSize
	hf = &HandleFile{path: path, db: db}
	err = hf.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyFormat); v == nil {
			if tx.Bucket(bucketReplicas) != nil {
				return fmt.Errorf("format marker missing: %w", errMalformed)
			}
			if err := meta.Put(keyFormat, u64(fileFormat)); err != nil {
				return err
			}
		} else if len(v) != 8 || binary.BigEndian.Uint64(v) < fileFormatV1 || binary.BigEndian.Uint64(v) > fileFormat {
			return fmt.Errorf("unknown handle file format %x: %w", v, errMalformed)
		} else if f := binary.BigEndian.Uint64(v); f < fileFormat {
			if f == fileFormatV1 {
				if err := upgradeV1(tx); err != nil {
					return err
				}
			}
			if err := hf.upgradeV2(tx); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, u64(fileFormat)); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bucketReplicas, bucketConflicts, bucketConfIndex} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, &CorruptError{Path: path, Err: err}
	}
	return hf, nil
}

// bindBuckets finds the replica's item buckets in its bucket.
func (r *rtx) bindBuckets() error {
	r.h, r.x, r.k, r.m, r.i = r.b.Bucket(bucketH), r.b.Bucket(bucketX), r.b.Bucket(bucketK), r.b.Bucket(bucketM), r.b.Bucket(bucketI)
	if r.h == nil || r.x == nil || r.k == nil || r.i == nil || r.m == nil {
		return fmt.Errorf("replica %q lacks a bucket: %w", r.name, errMalformed)
	}
	if r.tx.Writable() {
		// A session writes its records in key order (handles and natural keys by name, versions
		// by tick): pages split at bbolt's default half-full would leave the file half empty and
		// twice the memory it maps.
		for _, bk := range []*bolt.Bucket{r.h, r.x, r.k, r.m} {
			bk.FillPercent = fillPercent
		}
	}
	return nil
}

// checkLength refuses a bbolt file cut short: the meta page bbolt would use (the valid one with
// the highest transaction) says how many pages the file holds; a file shorter than that (a disk
// that filled, a copy that stopped) would make bbolt read past its end. A missing or empty file,
// or one whose meta pages are both invalid, is left to bbolt (it creates or rejects it).
func checkLength(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	type meta struct{ pageSize, freelist, pages, txid uint64 }
	read := func(off int64) (meta, bool) {
		// A page header (16 bytes), then magic, version, page size, flags (4 bytes each), the
		// root bucket (16), the freelist page, the page count, the transaction id and an FNV-64a
		// checksum of what precedes it (8 bytes each).
		var b [16 + 64]byte
		if _, err := f.ReadAt(b[:], off); err != nil && !errors.Is(err, io.EOF) {
			return meta{}, false
		}
		m := b[16:]
		le := binary.LittleEndian
		h := fnv.New64a()
		h.Write(m[:56])
		if le.Uint32(m[0:]) != 0xED0CDAED || le.Uint32(m[4:]) != 2 || h.Sum64() != le.Uint64(m[56:]) {
			return meta{}, false
		}
		return meta{pageSize: uint64(le.Uint32(m[8:])), freelist: le.Uint64(m[32:]), pages: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
	}
	m0, ok0 := read(0)
	off1 := int64(os.Getpagesize()) // where bbolt looks for the second meta when the first is bad
	if ok0 {
		off1 = int64(m0.pageSize)
	}
	m1, ok1 := read(off1)
	m := m0
	switch {
	case ok1 && (!ok0 || m1.txid > m0.txid):
		m = m1
	case !ok0:
		return nil
	}
	const noFreelist = ^uint64(0)
	switch {
	case m.pageSize == 0 || m.pages < 2 || m.pages > uint64(fi.Size())/m.pageSize:
		return fmt.Errorf("the file is %d bytes, shorter than the %d pages of %d bytes its header counts (it was cut short)",
			fi.Size(), m.pages, m.pageSize)
	case m.freelist != noFreelist && m.freelist >= m.pages:
		return fmt.Errorf("its header puts the list of free pages at page %d, past its %d pages", m.freelist, m.pages)
	}
	return nil
}

// Path returns the file's path.
func (hf *HandleFile) Path() string { return hf.path }

// Close closes the file.
func (hf *HandleFile) Close() error {
	if err := hf.db.Close(); err != nil {
		return fmt.Errorf("close handle file %s: %w", hf.path, err)
	}
	if hf.scratch {
		if err := os.Remove(hf.path); err != nil {
			return fmt.Errorf("remove the scratch copy %s: %w", hf.path, err)
		}
	}
	return nil
}

// view and update run fn in a transaction; a panic inside bbolt (a damaged page) or a malformed
// record becomes a *CorruptError naming the file.
func (hf *HandleFile) view(fn func(tx *bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer hf.recoverCorrupt(&err)
	return hf.wrap(hf.db.View(fn))
}

func (hf *HandleFile) update(fn func(tx *bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer hf.recoverCorrupt(&err)
	return hf.wrap(hf.db.Update(fn))
}

func (hf *HandleFile) recoverCorrupt(err *error) {
	if p := recover(); p != nil {
		*err = &CorruptError{Path: hf.path, Err: fmt.Errorf("%v", p)}
	}
}

func (hf *HandleFile) wrap(err error) error {
	if err == nil {
		return nil
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, errMalformed) {
		return &CorruptError{Path: hf.path, Err: err}
	}
	return err
}

func u64(x uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], x)
	return b[:]
}

// replicaState is a replica's own metadata, loaded at the start of a transaction and saved at its
// end.
type replicaState struct {
	name   string
	id     ReplicaID // identity (travels in snapshots)
	author ReplicaID // the ID versions minted by this handle file carry
	tick   uint64
	know   *Knowledge
	// forgotten covers the versions of the items whose tombstones the replica dropped.
	forgotten *Knowledge
	// partners is what the replica knows of its partners' knowledge (see forget.go).
	partners map[ReplicaID]partnerMark
	seen     snapshotMark
	created  int64
	count    int64 // live items
}

// rtx is one replica inside a transaction.
type rtx struct {
	*replicaState
	hf            *HandleFile
	tx            *bolt.Tx
	b, h, x, k, m *bolt.Bucket
	i             *bolt.Bucket
	auth          authors
	dirty         bool
}

// ReplicaInfo describes a replica of the handle file.
type ReplicaInfo struct {
	Name      string
	ID        ReplicaID
	Author    ReplicaID
	Tick      uint64
	Knowledge *Knowledge
	Items     int // live items
	Created   time.Time
}

// Replicas lists the replicas in the file.
func (hf *HandleFile) Replicas() ([]ReplicaInfo, error) {
	var out []ReplicaInfo
	err := hf.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReplicas).ForEachBucket(func(name []byte) error {
			r, err := hf.openReplica(tx, string(name), false)
			if err != nil {
				return err
			}
			out = append(out, ReplicaInfo{Name: r.name, ID: r.id, Author: r.author, Tick: r.tick,
				Knowledge: r.know.Clone(), Items: int(r.count), Created: time.Unix(0, r.created)})
			return nil
		})
	})
	return out, err
}

// openReplica loads a replica inside tx, creating it when create is set (tx must be writable).
func (hf *HandleFile) openReplica(tx *bolt.Tx, name string, create bool) (*rtx, error) {
	if name == "" {
		return nil, fmt.Errorf("empty replica name")
	}
	all := tx.Bucket(bucketReplicas)
	if all == nil {
		return nil, fmt.Errorf("replicas bucket missing: %w", errMalformed)
	}
	b := all.Bucket([]byte(name))
	if b == nil {
		if !create {
			return nil, fmt.Errorf("replica %q: %w", name, ErrUnknownReplica)
		}
		var err error
		if b, err = all.CreateBucket([]byte(name)); err != nil {
			return nil, fmt.Errorf("create replica %q: %w", name, err)
		}
		id := NewReplicaID()
		if err := b.Put(keyID, id[:]); err != nil {
			return nil, err
		}
		author := NewReplicaID()
		if err := b.Put(keyAuthor, author[:]); err != nil {
			return nil, err
		}
		if err := b.Put(keyCreated, u64(uint64(time.Now().UnixNano()))); err != nil {
			return nil, err
		}
		for _, nb := range append(slices.Clone(itemBuckets), bucketI) {
			if _, err := b.CreateBucket(nb); err != nil {
				return nil, err
			}
		}
	}
	r := &rtx{hf: hf, tx: tx, b: b, replicaState: &replicaState{name: name, know: &Knowledge{}, forgotten: &Knowledge{},
		partners: map[ReplicaID]partnerMark{}}}
	if err := r.bindBuckets(); err != nil {
		return nil, err
	}
	if err := r.reloadAuthors(); err != nil {
		return nil, fmt.Errorf("replica %q: %w", name, err)
	}
	id, author := b.Get(keyID), b.Get(keyAuthor)
	if len(id) != 16 || len(author) != 16 {
		return nil, fmt.Errorf("replica %q has a bad ID: %w", name, errMalformed)
	}
	copy(r.id[:], id)
	copy(r.author[:], author)
	if t := b.Get(keyTick); t != nil {
		if len(t) != 8 {
			return nil, fmt.Errorf("replica %q has a bad tick: %w", name, errMalformed)
		}
		r.tick = binary.BigEndian.Uint64(t)
	}
	if c := b.Get(keyCreated); len(c) == 8 {
		r.created = int64(binary.BigEndian.Uint64(c))
	}
	if c := b.Get(keyCount); c != nil {
		if len(c) != 8 {
			return nil, fmt.Errorf("replica %q has a bad item count: %w", name, errMalformed)
		}
		r.count = int64(binary.BigEndian.Uint64(c))
	}
	if kb := b.Get(keyKnow); kb != nil {
		if err := r.know.UnmarshalBinary(kb); err != nil {
			return nil, fmt.Errorf("replica %q: %w", name, err)
		}
	}
	if fb := b.Get(keyForgot); fb != nil {
		if err := r.forgotten.UnmarshalBinary(fb); err != nil {
			return nil, fmt.Errorf("replica %q: forgotten %w", name, err)
		}
	}
	if pb := b.Get(keyPartner); pb != nil {
		ps, err := decodePartners(pb)
		if err != nil {
			return nil, fmt.Errorf("replica %q: %w", name, err)
		}
		r.partners = ps
	}
	if sb := b.Get(keySeen); sb != nil {
		if err := r.seen.decode(sb); err != nil {
			return nil, fmt.Errorf("replica %q: %w", name, err)
		}
	}
	return r, nil
}

// save writes the replica's own metadata back (inside the writable transaction).
func (r *rtx) save() error {
	if !r.dirty {
		return nil
	}
	if err := r.b.Put(keyTick, u64(r.tick)); err != nil {
		return err
	}
	if err := r.b.Put(keyCount, u64(uint64(r.count))); err != nil {
		return err
	}
	kb, _ := r.know.MarshalBinary()
	if err := r.b.Put(keyKnow, kb); err != nil {
		return err
	}
	if err := r.b.Put(keySeen, r.seen.encode()); err != nil {
		return err
	}
	fb, _ := r.forgotten.MarshalBinary()
	if err := r.b.Put(keyForgot, fb); err != nil {
		return err
	}
	if err := r.b.Put(keyPartner, encodePartners(r.partners)); err != nil {
		return err
	}
	if err := r.b.Put(keyID, r.id[:]); err != nil {
		return err
	}
	r.dirty = false
	return nil
}

// mint returns a new version of this replica and records it as known.
func (r *rtx) mint() Version {
	r.tick++
	v := Version{Replica: r.author, Tick: r.tick}
	r.know.Add(v)
	r.dirty = true
	return v
}

// learn records v as known.
func (r *rtx) learn(v Version) {
	if !r.know.Contains(v) {
		r.know.Add(v)
		r.dirty = true
	}
}
