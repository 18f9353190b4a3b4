package repl

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
)

// ReplicaID identifies a replica, or the author of versions (each handle file writes versions of
// its replicas under IDs of its own, so two computers sharing a device never mint the same
// version). It is random, generated once.
type ReplicaID [16]byte

// NewReplicaID returns a random ReplicaID.
func NewReplicaID() ReplicaID { return newReplicaID() }

// newReplicaID is replaced by tests that need reproducible IDs.
var newReplicaID = func() ReplicaID {
	var id ReplicaID
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("repl: no randomness for a replica ID: %v", err)) // crypto/rand never fails on supported systems
	}
	return id
}

// String returns the ID in hex.
func (id ReplicaID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID.
func (id ReplicaID) IsZero() bool { return id == ReplicaID{} }

// Version is one change made by one replica: the replica's ID and its tick counter at the time.
// An item's creation version is its global ID.
type Version struct {
	Replica ReplicaID
	Tick    uint64
}

// IsZero reports whether v is the zero version (no version).
func (v Version) IsZero() bool { return v.Tick == 0 && v.Replica.IsZero() }

// String returns "replica-prefix:tick".
func (v Version) String() string {
	return fmt.Sprintf("%s:%d", hex.EncodeToString(v.Replica[:4]), v.Tick)
}

// Compare orders versions by replica, then tick: a total order used for deterministic
// tie-breaks.
func (v Version) Compare(o Version) int {
	if c := bytes.Compare(v.Replica[:], o.Replica[:]); c != 0 {
		return c
	}
	switch {
	case v.Tick < o.Tick:
		return -1
	case v.Tick > o.Tick:
		return 1
	}
	return 0
}

// versionKeyLen is the length of a version as a bbolt key: replica, then big-endian tick, so keys
// sort by replica and then by tick.
const versionKeyLen = 16 + 8

func (v Version) key() []byte {
	var k [versionKeyLen]byte
	copy(k[:16], v.Replica[:])
	binary.BigEndian.PutUint64(k[16:], v.Tick)
	return k[:]
}

// Vector is a version vector: for each replica, the highest tick covered. It is kept sorted by
// replica with one entry per replica. An item's Vector is its made-with knowledge: every change of
// the item that its current version includes.
type Vector []Version

// Get returns the tick covered for replica r (0 when none).
func (vv Vector) Get(r ReplicaID) uint64 {
	i, ok := vv.find(r)
	if !ok {
		return 0
	}
	return vv[i].Tick
}

func (vv Vector) find(r ReplicaID) (int, bool) {
	return slices.BinarySearchFunc(vv, r, func(v Version, r ReplicaID) int { return bytes.Compare(v.Replica[:], r[:]) })
}

// Contains reports whether v is covered.
func (vv Vector) Contains(v Version) bool {
	return v.Tick != 0 && v.Tick <= vv.Get(v.Replica)
}

// With returns a copy of vv raised to cover v.
func (vv Vector) With(v Version) Vector {
	out := slices.Clone(vv)
	out.raise(v)
	return out
}

func (vv *Vector) raise(v Version) {
	if v.Tick == 0 {
		return
	}
	i, ok := vv.find(v.Replica)
	if ok {
		if (*vv)[i].Tick < v.Tick {
			(*vv)[i].Tick = v.Tick
		}
		return
	}
	*vv = slices.Insert(*vv, i, v)
}

// without returns a copy of vv with no entry for r.
func (vv Vector) without(r ReplicaID) Vector {
	out := slices.Clone(vv)
	if i, ok := out.find(r); ok {
		out = slices.Delete(out, i, i+1)
	}
	return out
}

// Merge returns the entry-wise maximum of vv and o.
func (vv Vector) Merge(o Vector) Vector {
	out := make(Vector, 0, max(len(vv), len(o)))
	i, j := 0, 0
	for i < len(vv) || j < len(o) {
		switch {
		case j >= len(o):
			out = append(out, vv[i])
			i++
		case i >= len(vv):
			out = append(out, o[j])
			j++
		default:
			c := bytes.Compare(vv[i].Replica[:], o[j].Replica[:])
			switch {
			case c < 0:
				out = append(out, vv[i])
				i++
			case c > 0:
				out = append(out, o[j])
				j++
			default:
				out = append(out, Version{vv[i].Replica, max(vv[i].Tick, o[j].Tick)})
				i++
				j++
			}
		}
	}
	return out
}

// Covers reports whether vv covers every entry of o.
func (vv Vector) Covers(o Vector) bool {
	for _, v := range o {
		if !vv.Contains(v) {
			return false
		}
	}
	return true
}

// Equal reports whether two vectors cover exactly the same versions.
func (vv Vector) Equal(o Vector) bool {
	return vv.Covers(o) && o.Covers(vv)
}
