package repl

import (
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

var (
	rA = ReplicaID{0xa}
	rB = ReplicaID{0xb}
	rC = ReplicaID{0xc}
)

func v(r ReplicaID, t uint64) Version { return Version{r, t} }

func TestKnowledgeAddContains(t *testing.T) {
	var k Knowledge
	for _, x := range []Version{v(rA, 1), v(rA, 2), v(rA, 5), v(rB, 3)} {
		k.Add(x)
	}
	tests := []struct {
		v    Version
		want bool
	}{
		{v(rA, 1), true}, {v(rA, 2), true}, {v(rA, 3), false}, {v(rA, 4), false}, {v(rA, 5), true},
		{v(rA, 6), false}, {v(rB, 1), false}, {v(rB, 3), true}, {v(rC, 1), false}, {v(rA, 0), false},
	}
	for _, tc := range tests {
		if got := k.Contains(tc.v); got != tc.want {
			t.Errorf("after adding a1 a2 a5 b3: Contains(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
	if got := k.vec.Get(rA); got != 2 {
		t.Errorf("vector entry for A = %d, want 2 (a5 is an exception)", got)
	}
	if len(k.exc) != 2 {
		t.Errorf("exceptions = %v, want a5 and b3", k.exc)
	}
	// Filling the gap folds the exception into the vector.
	k.Add(v(rA, 3))
	k.Add(v(rA, 4))
	if got := k.vec.Get(rA); got != 5 {
		t.Errorf("after adding a3 a4, vector entry for A = %d, want 5", got)
	}
	if slices.ContainsFunc(k.exc, func(x Version) bool { return x.Replica == rA }) {
		t.Errorf("after the gap closed, exceptions still hold A: %v", k.exc)
	}
}

func TestKnowledgeMerge(t *testing.T) {
	var x, y Knowledge
	x.Add(v(rA, 1))
	x.Add(v(rA, 3))
	y.Add(v(rA, 2))
	y.Add(v(rB, 1))
	y.Add(v(rB, 2))
	x.Merge(&y)
	for _, want := range []Version{v(rA, 1), v(rA, 2), v(rA, 3), v(rB, 1), v(rB, 2)} {
		if !x.Contains(want) {
			t.Errorf("merged knowledge lacks %v: %v", want, &x)
		}
	}
	if len(x.exc) != 0 {
		t.Errorf("merged knowledge keeps exceptions %v, want them folded", x.exc)
	}
	if x.Contains(v(rA, 4)) || x.Contains(v(rC, 1)) {
		t.Errorf("merged knowledge claims versions nobody had: %v", &x)
	}
}

func TestKnowledgeEncoding(t *testing.T) {
	var k Knowledge
	for _, x := range []Version{v(rA, 1), v(rA, 2), v(rA, 9), v(rA, 11), v(rB, 1<<40), v(rC, 1)} {
		k.Add(x)
	}
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Knowledge
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	if !slices.Equal(got.vec, k.vec) || !slices.Equal(got.exc, k.exc) {
		t.Errorf("round trip = %v, want %v", &got, &k)
	}
	// Every truncation is refused, never a panic.
	for i := 0; i < len(b); i++ {
		var bad Knowledge
		if err := bad.UnmarshalBinary(b[:i]); err == nil {
			t.Errorf("UnmarshalBinary of %d of %d bytes succeeded", i, len(b))
		} else if !errors.Is(err, errMalformed) {
			t.Errorf("UnmarshalBinary of truncated bytes = %v, want errMalformed", err)
		}
	}
}

// TestKnowledgeModel checks Knowledge against a plain set of versions.
func TestKnowledgeModel(t *testing.T) {
	ids := []ReplicaID{rA, rB, rC}
	genV := rapid.Custom(func(t *rapid.T) Version {
		return v(ids[rapid.IntRange(0, 2).Draw(t, "r")], uint64(rapid.IntRange(1, 12).Draw(t, "tick")))
	})
	rapid.Check(t, func(t *rapid.T) {
		var k, other Knowledge
		set := map[Version]bool{}
		for _, x := range rapid.SliceOf(genV).Draw(t, "add") {
			k.Add(x)
			set[x] = true
		}
		for _, x := range rapid.SliceOf(genV).Draw(t, "merge") {
			other.Add(x)
			set[x] = true
		}
		k.Merge(&other)
		var sub Knowledge
		for x := range set {
			if rapid.Bool().Draw(t, "in sub") {
				sub.Add(x)
			}
		}
		if !k.Covers(&sub) {
			t.Fatalf("%v does not cover its subset %v", &k, &sub)
		}
		extra := genV.Draw(t, "extra")
		sub.Add(extra)
		if got := k.Covers(&sub); got != set[extra] {
			t.Fatalf("Covers with %v added = %v, want %v", extra, got, set[extra])
		}
		b, _ := k.MarshalBinary()
		var dec Knowledge
		if err := dec.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		for _, r := range ids {
			for tick := uint64(1); tick <= 13; tick++ {
				x := v(r, tick)
				if got := k.Contains(x); got != set[x] {
					t.Fatalf("Contains(%v) = %v, want %v (knowledge %v)", x, got, set[x], &k)
				}
				if got := dec.Contains(x); got != set[x] {
					t.Fatalf("decoded Contains(%v) = %v, want %v", x, got, set[x])
				}
			}
		}
		for _, e := range k.exc {
			if e.Tick <= k.vec.Get(e.Replica)+1 {
				t.Fatalf("exception %v not folded into vector %v", e, k.vec)
			}
		}
	})
}

func TestVector(t *testing.T) {
	x := Vector{}.With(v(rA, 3)).With(v(rC, 1))
	y := Vector{}.With(v(rA, 1)).With(v(rB, 2))
	m := x.Merge(y)
	want := Vector{v(rA, 3), v(rB, 2), v(rC, 1)}
	if !slices.Equal(m, want) {
		t.Errorf("Merge = %v, want %v", m, want)
	}
	if !m.Covers(x) || !m.Covers(y) || x.Covers(y) || y.Covers(x) {
		t.Errorf("Covers wrong: m=%v x=%v y=%v", m, x, y)
	}
	if x.Contains(v(rB, 1)) || !x.Contains(v(rA, 2)) || x.Contains(v(rA, 0)) {
		t.Errorf("Contains wrong on %v", x)
	}
	// With returns a copy.
	z := x.With(v(rA, 9))
	if x.Get(rA) != 3 || z.Get(rA) != 9 {
		t.Errorf("With changed its receiver: x=%v z=%v", x, z)
	}
}

func TestRecordEncoding(t *testing.T) {
	r := &record{GID: v(rA, 1), Ver: v(rB, 7), CVer: v(rA, 5), V: Vector{v(rA, 5), v(rB, 7)},
		Handle: "dir/x.txt", Name: "dir/x.txt", Key: "KEY", Stamp: Stamp{Kind: KindFile, Size: 12, ModTime: 1e18, Hash: "abc"},
		Units:  []unitRec{{Name: "EMAIL", Ver: v(rA, 2), Hash: unitHash([]byte("x"))}, {Name: "TEL", Ver: v(rB, 7), Deleted: true}},
		Merged: v(rC, 3), Tomb: true, When: 42, Racy: true}
	r.Sum[0], r.Sum[31] = 7, 9
	b := r.encode()
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatalf("decodeRecord: %v", err)
	}
	if got.GID != r.GID || got.Ver != r.Ver || got.CVer != r.CVer || !slices.Equal(got.V, r.V) || got.Handle != r.Handle ||
		got.Name != r.Name || got.Key != r.Key || got.Stamp != r.Stamp || !slices.Equal(got.Units, r.Units) ||
		got.Merged != r.Merged || got.Tomb != r.Tomb || got.When != r.When || got.Sum != r.Sum || !got.Racy {
		t.Errorf("record round trip = %+v, want %+v", got, r)
	}
	p, ok := peekStamp(b)
	if !ok || p.kind != KindFile || p.size != 12 || p.mod != 1e18 || string(p.hash) != "abc" || p.missing || !p.racy {
		t.Errorf("peekStamp = %+v %v", p, ok)
	}
	for i := 0; i < len(b); i++ {
		if _, err := decodeRecord(b[:i]); err == nil {
			t.Errorf("decodeRecord of %d of %d bytes succeeded", i, len(b))
		}
	}
}

// TestRecordFormat1 reads a record as Cradle wrote it before records carried content hashes (a
// handle file or a device snapshot of that time).
func TestRecordFormat1(t *testing.T) {
	var b []byte
	b = append(b, recordFormatV1, flagNameIsHandle|flagKeyIsName|flagCVerIsVer|flagNVerIsGID, byte(KindFile))
	b = appendVarint(b, 5)
	b = appendVarint(b, 1e18)
	b = appendString(b, "")
	b = appendVersion(b, v(rA, 1))
	b = appendVersion(b, v(rA, 2))
	b = appendVector(b, Vector{v(rA, 2)})
	b = appendString(b, "a.txt")
	b = appendVarint(b, 42)
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatalf("decodeRecord(format 1): %v", err)
	}
	if got.GID != v(rA, 1) || got.Ver != v(rA, 2) || got.CVer != v(rA, 2) || got.NVer != v(rA, 1) || got.Handle != "a.txt" ||
		got.Name != "a.txt" || got.Key != "a.txt" || got.Stamp.Size != 5 || got.hasSum() || got.Racy || got.When != 42 {
		t.Errorf("decodeRecord(format 1) = %+v", got)
	}
	if p, ok := peekStamp(b); !ok || p.size != 5 || p.mod != 1e18 {
		t.Errorf("peekStamp(format 1) = %+v %v", p, ok)
	}
	// Written again, it takes the current format and reads back the same.
	again, err := decodeRecord(got.encode())
	if err != nil || again.Ver != got.Ver || again.Handle != got.Handle || again.Stamp != got.Stamp {
		t.Errorf("re-encoded format-1 record = %+v, %v", again, err)
	}
}
