package repl

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// withReplica runs fn with a replica of a new handle file, in a writable transaction.
func withReplica(t *testing.T, fn func(r *rtx)) {
	t.Helper()
	hf, err := Open(filepath.Join(t.TempDir(), "Repl.dat"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if err := hf.update(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, "desktop", true)
		if err != nil {
			return err
		}
		fn(r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func sameRecord(a, b *record) bool {
	return a.GID == b.GID && a.Ver == b.Ver && a.CVer == b.CVer && a.NVer == b.NVer && slices.Equal(a.V, b.V) &&
		a.Handle == b.Handle && a.Name == b.Name && a.Key == b.Key && a.Stamp == b.Stamp && slices.Equal(a.Units, b.Units) &&
		a.Merged == b.Merged && a.Tomb == b.Tomb && a.Missing == b.Missing && a.When == b.When && a.Sum == b.Sum && a.Racy == b.Racy
}

func TestRecordFormat3(t *testing.T) {
	var sum [32]byte
	sum[0], sum[31] = 7, 9
	recs := []struct {
		rec    *record
		inline bool
	}{
		// An ordinary synced file: one byte of flags, no versions but its ID.
		{&record{GID: v(rA, 100000), Ver: v(rA, 100000), CVer: v(rA, 100000), NVer: v(rA, 100000), V: Vector{v(rA, 100000)},
			Handle: "top00/sub000/file000.txt", Name: "top00/sub000/file000.txt", Key: "top00/sub000/file000.txt",
			Stamp: Stamp{Kind: KindFile, Size: 30, ModTime: 1714564800e9}, Sum: sum}, false},
		// A file of the computer, with its inode's change time (later than its time, or earlier).
		{&record{GID: v(rA, 3), Ver: v(rA, 3), CVer: v(rA, 3), NVer: v(rA, 3), V: Vector{v(rA, 3)}, Handle: "a.txt", Name: "a.txt", Key: "a.txt",
			Stamp: Stamp{Kind: KindFile, Size: 30, ModTime: 1714564800e9, Change: 1765000000123456789}, Sum: sum}, false},
		{&record{GID: v(rA, 4), Ver: v(rA, 4), CVer: v(rA, 4), NVer: v(rA, 4), V: Vector{v(rA, 4)}, Handle: "b.txt", Name: "b.txt", Key: "b.txt",
			Stamp: Stamp{Kind: KindFile, Size: 30, ModTime: 1765000000123456789, Change: 1714564800e9 + 1}, Sum: sum}, false},
		// Everything differs.
		{&record{GID: v(rA, 1), Ver: v(rB, 7), CVer: v(rA, 5), NVer: v(rC, 2), V: Vector{v(rA, 5), v(rB, 7)},
			Handle: "dir/x.txt", Name: "Dir/X.txt", Key: "KEY", Stamp: Stamp{Kind: KindFile, Size: 12, ModTime: 1e18 + 3, Hash: "abc"},
			Units: []unitRec{{Name: "EMAIL", Ver: v(rA, 2), Hash: unitHash([]byte("x"))}, {Name: "TEL", Ver: v(rB, 7), Deleted: true}},
			Racy:  true, Sum: sum}, false},
		// A tombstone of a merged item, kept whole with its handle and its time.
		{&record{GID: v(rC, 3), Ver: v(rB, 9), CVer: v(rC, 3), NVer: v(rC, 3), V: Vector{v(rB, 9), v(rC, 3)}, Tomb: true,
			Merged: v(rA, 1), Handle: "gone", Name: "gone", Key: "gone", Stamp: Stamp{Kind: KindFile, Size: 1, ModTime: -5e9}, When: 42}, true},
		// A folder, and an item whose data the engine removed.
		{&record{GID: v(rB, 4), Ver: v(rB, 4), CVer: v(rB, 4), NVer: v(rB, 4), V: Vector{v(rB, 4)}, Handle: "Music", Name: "Music",
			Key: "music", Stamp: Stamp{Kind: KindFolder}}, false},
		{&record{GID: v(rB, 5), Ver: v(rB, 6), CVer: v(rB, 6), NVer: v(rB, 5), V: Vector{v(rB, 6)}, Missing: true, Handle: "part",
			Name: "part", Key: "part", Stamp: Stamp{Kind: KindFile, Size: 1 << 40, ModTime: 1714564800e9}}, true},
	}
	withReplica(t, func(r *rtx) {
		for _, c := range recs {
			b, err := r.encode3(c.rec, c.inline)
			if err != nil {
				t.Fatalf("encode3(%+v): %v", c.rec, err)
			}
			handle := c.rec.Handle
			if c.inline {
				handle = ""
			}
			got, err := r.decode(b, handle)
			if err != nil {
				t.Fatalf("decode(encode3(%+v)): %v", c.rec, err)
			}
			if !sameRecord(got, c.rec) {
				t.Errorf("record round trip = %+v, want %+v", got, c.rec)
			}
			p, ok := peekStamp(b)
			if !ok || p.kind != c.rec.Stamp.Kind || p.size != c.rec.Stamp.Size || p.mod != c.rec.Stamp.ModTime || p.change != c.rec.Stamp.Change ||
				string(p.hash) != c.rec.Stamp.Hash || p.missing != c.rec.Missing || p.racy != c.rec.Racy {
				t.Errorf("peekStamp(%+v) = %+v %v", c.rec.Stamp, p, ok)
			}
			for i := 0; i < len(b); i++ {
				if _, err := r.decode(b[:i], handle); err == nil {
					t.Errorf("decode of %d of %d bytes succeeded", i, len(b))
				}
			}
			other := "x"
			if !c.inline {
				other = ""
			}
			if _, err := r.decode(b, other); err == nil {
				t.Errorf("a record stored %s its handle decoded with key %q", map[bool]string{true: "with", false: "without"}[c.inline], other)
			}
		}
		// A synced file costs a few bytes beyond its hash (its handle is its key).
		if b, _ := r.encode3(recs[0].rec, false); len(b) > 32+12 {
			t.Errorf("an ordinary record takes %d bytes: %x", len(b), b)
		}
	})
}

func TestVersionKeysSort(t *testing.T) {
	type nt struct{ n, tick uint64 }
	in := []nt{{0, 0}, {1, 0}, {1, 1}, {1, 255}, {1, 256}, {1, 1 << 40}, {1, 1<<64 - 1}, {2, 1}, {254, 9}, {255, 0}, {255, 3}, {256, 1}, {65535, 1 << 20}}
	var keys [][]byte
	for _, x := range in {
		k := appendVKey(nil, x.n, x.tick)
		n, tick, rest, ok := splitVKey(k)
		if !ok || n != x.n || tick != x.tick || len(rest) != 0 {
			t.Errorf("splitVKey(appendVKey(%d, %d)) = %d, %d, %x, %v", x.n, x.tick, n, tick, rest, ok)
		}
		keys = append(keys, k)
	}
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		t.Errorf("version keys do not sort like their versions: %x", keys)
	}
	for _, bad := range [][]byte{nil, {1}, {1, 9}, {1, 2, 0, 1}, {0xff, 0, 1, 1, 1}, {1, 3, 1}} {
		if _, _, _, ok := splitVKey(bad); ok {
			t.Errorf("splitVKey(%x) accepted", bad)
		}
	}
}
