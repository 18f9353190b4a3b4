package repl

import (
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// DumpReplica describes a replica's records, for test failure messages.
func DumpReplica(hf *HandleFile, name string) string {
	var b strings.Builder
	hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, name, false)
		if err != nil {
			fmt.Fprintln(&b, err)
			return nil
		}
		fmt.Fprintf(&b, "replica %s author %s tick %d know %v count %d\n", name, r.author.String()[:8], r.tick, r.know, r.count)
		if err := r.eachRecord(func(rec *record) error {
			fmt.Fprintf(&b, "  %v: ver %v cver %v nver %v V %v tomb %v missing %v merged %v handle %q name %q key %q size %d\n", rec.GID, rec.Ver, rec.CVer, rec.NVer, rec.V, rec.Tomb, rec.Missing, rec.Merged, rec.Handle, rec.Name, rec.Key, rec.Stamp.Size)
			return nil
		}); err != nil {
			fmt.Fprintf(&b, "  %v\n", err)
		}
		return nil
	})
	return b.String()
}

// DamageRecord overwrites the record of handle in replica name with bytes that do not decode.
func DamageRecord(hf *HandleFile, name, handle string) error {
	return hf.update(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, name, false)
		if err != nil {
			return err
		}
		return r.h.Put([]byte(handle), []byte{recordFormatV3, 0xff, 0xff, 0xff, 0xff})
	})
}

// SetReplicaIDs makes new replica IDs come from next until the returned function is called, so a
// property test's failures replay with the same IDs (the order of global IDs decides merges).
func SetReplicaIDs(next func() ReplicaID) (restore func()) {
	old := newReplicaID
	newReplicaID = next
	return func() { newReplicaID = old }
}

// SetTrace makes the applier report its decisions to f (nil stops it).
func SetTrace(f func(format string, args ...any)) { tracef = f }

// ItemVector returns the made-with knowledge of the item at handle in replica name.
func ItemVector(hf *HandleFile, name, handle string) (Vector, error) {
	var v Vector
	err := hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, name, false)
		if err != nil {
			return err
		}
		rec, err := r.byHandle(handle)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("no item at %q in %s", handle, name)
		}
		v = rec.V
		return nil
	})
	return v, err
}
