package repl

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Knowledge says which versions a replica has seen: a version vector (every tick up to the
// vector's entry is known) plus exceptions, single versions learned out of order when a session
// applied only part of what a source had, minus holes, single versions the vector would cover but
// that are not known: the changes a pending conflict left unapplied (Sync Framework keeps them as
// per-item exceptions of the knowledge), so that the rest of a source's knowledge is learned at
// once and the knowledge stays a few entries however many conflicts wait. Compact folds exceptions
// into the vector when they become contiguous. The zero value knows nothing.
type Knowledge struct {
	vec   Vector
	exc   []Version // sorted by Compare; every exception's tick is above its replica's vector entry + 1
	holes []Version // sorted by Compare; every hole's tick is at most its replica's vector entry
}

// Contains reports whether v is known.
func (k *Knowledge) Contains(v Version) bool {
	if v.Tick == 0 {
		return false
	}
	if v.Tick <= k.vec.Get(v.Replica) {
		_, hole := slices.BinarySearchFunc(k.holes, v, Version.Compare)
		return !hole
	}
	_, ok := slices.BinarySearchFunc(k.exc, v, Version.Compare)
	return ok
}

// Forget makes v unknown again (a hole in the vector, or an exception dropped): a change a
// pending conflict left unapplied, which every later session must meet again.
func (k *Knowledge) Forget(v Version) {
	if v.Tick == 0 || !k.Contains(v) {
		return
	}
	if v.Tick > k.vec.Get(v.Replica) {
		i, _ := slices.BinarySearchFunc(k.exc, v, Version.Compare)
		k.exc = slices.Delete(k.exc, i, i+1)
		return
	}
	i, _ := slices.BinarySearchFunc(k.holes, v, Version.Compare)
	k.holes = slices.Insert(k.holes, i, v)
}

// nextHole returns the smallest hole of replica r with a tick of at least from, if any.
func (k *Knowledge) nextHole(r ReplicaID, from uint64) (Version, bool) {
	i, _ := slices.BinarySearchFunc(k.holes, Version{r, from}, Version.Compare)
	if i < len(k.holes) && k.holes[i].Replica == r {
		return k.holes[i], true
	}
	return Version{}, false
}

// Holes returns a copy of the versions the vector covers but that are not known.
func (k *Knowledge) Holes() []Version { return slices.Clone(k.holes) }

// Add records v as known.
func (k *Knowledge) Add(v Version) {
	if v.Tick == 0 || k.Contains(v) {
		return
	}
	if i, hole := slices.BinarySearchFunc(k.holes, v, Version.Compare); hole {
		k.holes = slices.Delete(k.holes, i, i+1)
		return
	}
	if v.Tick == k.vec.Get(v.Replica)+1 {
		k.vec.raise(v)
		k.fold(v.Replica)
		return
	}
	i, _ := slices.BinarySearchFunc(k.exc, v, Version.Compare)
	k.exc = slices.Insert(k.exc, i, v)
}

// fold moves exceptions of replica r that continue its vector entry into the vector.
func (k *Knowledge) fold(r ReplicaID) {
	top := k.vec.Get(r)
	i, _ := slices.BinarySearchFunc(k.exc, Version{Replica: r}, Version.Compare)
	j := i
	for j < len(k.exc) && k.exc[j].Replica == r && k.exc[j].Tick <= top+1 {
		top = max(top, k.exc[j].Tick)
		j++
	}
	if j > i {
		k.vec.raise(Version{r, top})
		k.exc = slices.Delete(k.exc, i, j)
	}
}

// Merge adds everything o knows. A hole of either stays a hole unless the other knows it.
func (k *Knowledge) Merge(o *Knowledge) {
	var holes []Version
	for _, h := range k.holes {
		if !o.Contains(h) {
			holes = append(holes, h)
		}
	}
	for _, h := range o.holes {
		if !k.Contains(h) {
			holes = append(holes, h)
		}
	}
	slices.SortFunc(holes, Version.Compare)
	k.holes = slices.Compact(holes)
	k.vec = k.vec.Merge(o.vec)
	for _, v := range o.exc {
		if !k.Contains(v) {
			i, _ := slices.BinarySearchFunc(k.exc, v, Version.Compare)
			k.exc = slices.Insert(k.exc, i, v)
		}
	}
	k.Compact()
}

// top returns the highest tick of replica r that k knows (0 when none).
func (k *Knowledge) top(r ReplicaID) uint64 {
	t := k.vec.Get(r)
	for _, v := range k.exc {
		if v.Replica == r && v.Tick > t {
			t = v.Tick
		}
	}
	return t
}

// Covers reports whether k knows everything o knows.
func (k *Knowledge) Covers(o *Knowledge) bool {
	for _, v := range o.vec {
		top := k.vec.Get(v.Replica)
		if top >= v.Tick {
			continue
		}
		// The rest of o's run, ticks top+1..v.Tick, must all be exceptions of k.
		lo, _ := slices.BinarySearchFunc(k.exc, Version{v.Replica, top + 1}, Version.Compare)
		hi, _ := slices.BinarySearchFunc(k.exc, Version{v.Replica, v.Tick + 1}, Version.Compare)
		if uint64(hi-lo) != v.Tick-top {
			return false
		}
	}
	for _, v := range o.exc {
		if !k.Contains(v) {
			return false
		}
	}
	for _, h := range k.holes {
		if o.Contains(h) {
			return false
		}
	}
	return true
}

// AddVector records every version v covers.
func (k *Knowledge) AddVector(v Vector) {
	k.vec = k.vec.Merge(v)
	k.Compact()
}

// Compact drops exceptions the vector covers and holes it does not, and folds contiguous
// exceptions into it.
func (k *Knowledge) Compact() {
	out := k.exc[:0]
	for _, v := range k.exc {
		if v.Tick > k.vec.Get(v.Replica) {
			out = append(out, v)
		}
	}
	k.exc = out
	holes := k.holes[:0]
	for _, h := range k.holes {
		if h.Tick <= k.vec.Get(h.Replica) {
			holes = append(holes, h)
		}
	}
	k.holes = holes
	for i := 0; i < len(k.exc); {
		r := k.exc[i].Replica
		k.fold(r)
		for i < len(k.exc) && k.exc[i].Replica == r {
			i++
		}
	}
}

// Clone returns an independent copy.
func (k *Knowledge) Clone() *Knowledge {
	return &Knowledge{vec: slices.Clone(k.vec), exc: slices.Clone(k.exc), holes: slices.Clone(k.holes)}
}

// Vector returns a copy of the contiguous part.
func (k *Knowledge) Vector() Vector { return slices.Clone(k.vec) }

// Exceptions returns a copy of the single versions known beyond the vector.
func (k *Knowledge) Exceptions() []Version { return slices.Clone(k.exc) }

// Replicas returns every replica the knowledge mentions, sorted.
func (k *Knowledge) Replicas() []ReplicaID {
	var ids []ReplicaID
	for _, v := range k.vec {
		ids = append(ids, v.Replica)
	}
	for _, v := range k.exc {
		ids = append(ids, v.Replica)
	}
	slices.SortFunc(ids, func(a, b ReplicaID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ids)
}

// String shows the knowledge for debugging: "{a1b2c3d4:7 ...} + [a1b2c3d4:9]".
func (k *Knowledge) String() string {
	var b strings.Builder
	b.WriteString("{")
	for i, v := range k.vec {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(v.String())
	}
	b.WriteString("}")
	if len(k.exc) > 0 {
		fmt.Fprintf(&b, " + %v", k.exc)
	}
	if len(k.holes) > 0 {
		fmt.Fprintf(&b, " - %v", k.holes)
	}
	return b.String()
}

// Knowledge encoding: uvarint count, then per entry the 16-byte replica and uvarint tick (vector);
// uvarint count of exception groups, then per group the replica, uvarint count and uvarint tick
// deltas; then (since handle file and snapshot format 2) the holes, grouped the same way.
// Knowledge written before holes existed ends after the exceptions.

func (k *Knowledge) appendTo(b []byte) []byte {
	b = appendVector(b, k.vec)
	b = appendGroups(b, k.exc)
	return appendGroups(b, k.holes)
}

// appendGroups encodes sorted versions grouped by replica.
func appendGroups(b []byte, vs []Version) []byte {
	var groups [][]Version
	for i := 0; i < len(vs); {
		j := i
		for j < len(vs) && vs[j].Replica == vs[i].Replica {
			j++
		}
		groups = append(groups, vs[i:j])
		i = j
	}
	b = appendUvarint(b, uint64(len(groups)))
	for _, g := range groups {
		b = append(b, g[0].Replica[:]...)
		b = appendUvarint(b, uint64(len(g)))
		var prev uint64
		for _, v := range g {
			b = appendUvarint(b, v.Tick-prev)
			prev = v.Tick
		}
	}
	return b
}

// MarshalBinary encodes the knowledge compactly.
func (k *Knowledge) MarshalBinary() ([]byte, error) {
	return k.appendTo(nil), nil
}

// UnmarshalBinary decodes what MarshalBinary produced; it never panics on bad input.
func (k *Knowledge) UnmarshalBinary(b []byte) error {
	return k.unmarshal(b, true)
}

// unmarshal decodes a knowledge written with holes (since handle file format 2), or without.
func (k *Knowledge) unmarshal(b []byte, withHoles bool) error {
	d := decoder{b: b}
	nk := d.knowledge(withHoles)
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("decode knowledge: %w", d.err)
	}
	*k = *nk
	return nil
}

// knowledge decodes a knowledge; withHoles reads the holes after the exceptions (handle file and
// snapshot format 2 have them).
func (d *decoder) knowledge(withHoles bool) *Knowledge {
	k := &Knowledge{vec: d.vector()}
	k.exc = d.groups()
	if withHoles {
		k.holes = d.groups()
	}
	if d.err != nil {
		return &Knowledge{}
	}
	// Normalise whatever the bytes said: sorted, unique, exceptions above the vector, holes in it.
	slices.SortFunc(k.exc, Version.Compare)
	k.exc = slices.Compact(k.exc)
	slices.SortFunc(k.holes, Version.Compare)
	k.holes = slices.Compact(k.holes)
	k.Compact()
	return k
}

// groups decodes versions grouped by replica (appendGroups).
func (d *decoder) groups() []Version {
	var out []Version
	ng := d.count(17)
	for g := 0; g < ng && d.err == nil; g++ {
		r := d.replica()
		n := d.count(1)
		var tick uint64
		for i := 0; i < n && d.err == nil; i++ {
			delta := d.uvarint()
			if delta == 0 || tick+delta < tick {
				d.fail("bad exception tick")
				break
			}
			tick += delta
			out = append(out, Version{r, tick})
		}
	}
	return out
}
