package repl_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// testdata/format1.dat is a handle file written by Cradle before records carried content hashes
// (records, knowledge and conflicts of format 1): items synced both ways, a delete, a rename, and
// a conflict waiting on both.txt. It must open, keep its conflict, and sync on as before.
func TestHandleFileFormat1Upgrades(t *testing.T) {
	raw, err := os.ReadFile("testdata/format1.dat")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "Repl.dat")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	hf, err := repl.Open(path, repl.Options{})
	if err != nil {
		t.Fatalf("Open(format 1): %v", err)
	}
	defer hf.Close()
	mt := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	a, b := memstore.New(memstore.Options{}), memstore.New(memstore.Options{TimeGranularity: time.Second})
	for _, f := range []struct {
		s          *memstore.Store
		name, data string
		mt         time.Time
	}{
		{a, "keep.txt", "kept", mt}, {a, "new-name.txt", "renamed", mt}, {a, "both.txt", "desktop edit", mt.Add(time.Hour)},
		{a, "from-device.txt", "device file", mt},
		{b, "keep.txt", "kept", mt}, {b, "new-name.txt", "renamed", mt}, {b, "both.txt", "device edit!", mt.Add(2 * time.Hour)},
		{b, "from-device.txt", "device file", mt},
	} {
		if err := f.s.Put(f.name, []byte(f.data), f.mt); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := hf.Conflicts()
	if err != nil || len(cs) != 1 || cs[0].Name != "both.txt" {
		t.Fatalf("Conflicts() of the upgraded file = %+v, %v; want the one on both.txt", cs, err)
	}
	sides := []repl.Side{{Name: "desktop", Store: a}, {Name: "device", Store: b}}
	rep, err := hf.Sync(context.Background(), sides[0], sides[1], repl.Config{})
	if err != nil {
		t.Fatalf("Sync after the upgrade: %v", err)
	}
	for side, c := range rep.Applied {
		if c.Total() != 0 {
			t.Errorf("the first session after the upgrade changed %s: %+v", side, *c)
		}
	}
	if err := hf.Resolve(context.Background(), cs[0].ID, "device", sides...); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if err := a.Put("keep.txt", []byte("kept, edited"), mt.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := hf.Sync(context.Background(), sides[0], sides[1], repl.Config{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep.txt": "kept, edited", "new-name.txt": "renamed", "both.txt": "device edit!", "from-device.txt": "device file"}
	wantFiles(t, "desktop", a, want)
	wantFiles(t, "device", b, want)
	// The file says format 2 now, and opens again.
	if err := hf.Close(); err != nil {
		t.Fatal(err)
	}
	hf2, err := repl.Open(path, repl.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	hf2.Close()
}
