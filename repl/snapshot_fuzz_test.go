package repl

import (
	"crypto/sha256"
	"testing"
)

func seedSnapshot() []byte {
	var k Knowledge
	k.Add(Version{rA, 1})
	k.Add(Version{rA, 2})
	k.Add(Version{rB, 5})
	recs := [][]byte{
		(&record{GID: Version{rA, 1}, Ver: Version{rA, 2}, CVer: Version{rA, 1}, V: Vector{{rA, 2}}, Handle: "a/b.txt", Name: "a/b.txt", Key: "a/b.txt",
			Stamp: Stamp{Kind: KindFile, Size: 3, ModTime: 12345}}).encode(),
		(&record{GID: Version{rB, 5}, Ver: Version{rB, 5}, CVer: Version{rB, 5}, V: Vector{{rA, 2}, {rB, 5}}, Tomb: true, Merged: Version{rA, 1},
			Handle: "gone", Name: "gone", Key: "k", Units: []unitRec{{Name: "TEL", Ver: Version{rB, 5}}}}).encode(),
	}
	var forgotten Knowledge
	forgotten.Add(Version{rA, 1})
	partners := map[ReplicaID]partnerMark{{3}: {know: &k, seen: 42}}
	b, _ := encodeSnapshot(ReplicaID{1}, ReplicaID{2}, 7, &k, &forgotten, partners, recs)
	return b
}

// FuzzDecodeSnapshot feeds the snapshot decoder hostile bytes. The input is taken as a snapshot's
// body and given a valid checksum, so the fuzzer reaches the parser rather than stopping at the
// checksum. The decoder must never panic, and what it accepts must survive a re-encoding.
func FuzzDecodeSnapshot(f *testing.F) {
	seed := seedSnapshot()
	f.Add(seed[:len(seed)-32])
	f.Add([]byte("CRADLE-SNAPSHOT\n"))
	f.Add(append([]byte("CRADLE-SNAPSHOT\n\x01"), make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := sha256.Sum256(body)
		data := append(append([]byte{}, body...), sum[:]...)
		snap, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		var recs [][]byte
		for _, r := range snap.records {
			recs = append(recs, r.encode())
		}
		again, _ := encodeSnapshot(snap.info.Replica, snap.info.Writer, snap.info.Gen, snap.know, snap.forgotten, snap.partners, recs)
		snap2, err := decodeSnapshot(again)
		if err != nil {
			t.Fatalf("a snapshot the decoder accepted does not decode after re-encoding: %v", err)
		}
		if snap2.info.Replica != snap.info.Replica || snap2.info.Gen != snap.info.Gen || len(snap2.records) != len(snap.records) {
			t.Fatalf("re-encoded snapshot differs: %+v vs %+v", snap2.info, snap.info)
		}
	})
}

// FuzzDecodeRecord checks the record decoder (the handle file's values) the same way.
func FuzzDecodeRecord(f *testing.F) {
	f.Add((&record{GID: Version{rA, 1}, Ver: Version{rA, 1}, CVer: Version{rA, 1}, V: Vector{{rA, 1}}, Handle: "x", Name: "y", Key: "z"}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if _, err := decodeRecord(r.encode()); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		peekStamp(b)
	})
}

func TestSeedSnapshotDecodes(t *testing.T) {
	snap, err := decodeSnapshot(seedSnapshot())
	if err != nil {
		t.Fatalf("decodeSnapshot(seed): %v", err)
	}
	if snap.info.Gen != 7 || len(snap.records) != 2 || !snap.records[1].Tomb || snap.records[1].Merged != (Version{rA, 1}) ||
		!snap.forgotten.Contains(Version{rA, 1}) || snap.partners[ReplicaID{3}].seen != 42 {
		t.Errorf("decoded seed = %+v %+v", snap.info, snap.records)
	}
}
