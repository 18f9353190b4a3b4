package repl

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// upgradeV1 rewrites what format 2 encodes differently: each replica's knowledge gains its
// (empty) list of holes. Records of format 1 are read as they are.
func upgradeV1(tx *bolt.Tx) error {
	all := tx.Bucket(bucketReplicas)
	if all == nil {
		return nil
	}
	return all.ForEachBucket(func(name []byte) error {
		b := all.Bucket(name)
		kb := b.Get(keyKnow)
		if kb == nil {
			return nil
		}
		var k Knowledge
		if err := k.unmarshal(kb, false); err != nil {
			return fmt.Errorf("replica %q: %w", name, err)
		}
		nb, _ := k.MarshalBinary()
		return b.Put(keyKnow, nb)
	})
}

// upgradeV2 rewrites the items of a file of format 1 or 2 in format 3: every record, live or
// not, is read from the old indexes and put into the new ones, which rebuilds them; then the old
// indexes go. Intents, knowledge and conflicts keep their encoding. It runs in the transaction
// that opens the file, so a file is either upgraded whole or not at all.
func (hf *HandleFile) upgradeV2(tx *bolt.Tx) error {
	all := tx.Bucket(bucketReplicas)
	if all == nil {
		return nil
	}
	var names []string
	if err := all.ForEachBucket(func(k []byte) error {
		names = append(names, string(k))
		return nil
	}); err != nil {
		return err
	}
	for _, name := range names {
		if err := hf.upgradeReplicaV2(tx, all.Bucket([]byte(name)), name); err != nil {
			return fmt.Errorf("upgrade replica %q: %w", name, err)
		}
	}
	return nil
}

func (hf *HandleFile) upgradeReplicaV2(tx *bolt.Tx, b *bolt.Bucket, name string) error {
	old := map[string]*bolt.Bucket{}
	for _, n := range [][]byte{bucketV2H, bucketV2G, bucketV2V, bucketV2K, bucketV2M} {
		ob := b.Bucket(n)
		if ob == nil {
			return fmt.Errorf("no %q bucket: %w", n, errMalformed)
		}
		old[string(n)] = ob
	}
	for _, n := range itemBuckets {
		if _, err := b.CreateBucket(n); err != nil {
			return fmt.Errorf("create %q: %w", n, err)
		}
	}
	r, err := hf.openReplica(tx, name, false)
	if err != nil {
		return err
	}
	before := r.count
	r.count = 0
	add := func(v []byte) error {
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		return r.put(nil, rec)
	}
	if err := old["h"].ForEach(func(k, v []byte) error {
		if err := add(v); err != nil {
			return fmt.Errorf("handle %q: %w", k, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := old["g"].ForEach(func(k, v []byte) error {
		if len(v) == 0 {
			return fmt.Errorf("empty index entry: %w", errMalformed)
		}
		if v[0] != 1 {
			return nil // a live item's, rewritten from h
		}
		if err := add(v[1:]); err != nil {
			return fmt.Errorf("tombstone: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	if r.count != before {
		return fmt.Errorf("%d live items, %d counted: %w", r.count, before, errMalformed)
	}
	r.dirty = true
	if err := r.save(); err != nil {
		return err
	}
	for _, n := range [][]byte{bucketV2H, bucketV2G, bucketV2V, bucketV2K, bucketV2M} {
		if err := b.DeleteBucket(n); err != nil {
			return err
		}
	}
	return nil
}
