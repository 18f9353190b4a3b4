package repl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// testdata/format2.dat is a handle file written by Cradle's main branch at 50093f6 (records of
// format 2 in four indexes per replica), by a test that syncs the stores described in
// testdata/format2.json: a first sync that merged a file found on both sides, a rename, a delete,
// an edit, a conflict waiting on both.txt, a racily clean file, a session cut short by an
// unplugged device (intents left for big.bin), a delete detected but not synced (a tombstone of
// Keep.txt), and two more replicas of contact cards with change units. Opened, it is rewritten in
// format 3; it must keep its conflict, its intents and its items, sync on as before, and export a
// snapshot another file imports.
func TestHandleFileFormat2Upgrades(t *testing.T) {
	raw, err := os.ReadFile("testdata/format2.dat")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "Repl.dat")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	stores := loadStores(t, "testdata/format2.json")
	hf, err := repl.Open(path, repl.Options{})
	if err != nil {
		t.Fatalf("Open(format 2): %v", err)
	}
	defer hf.Close()
	reps, err := hf.Replicas()
	if err != nil {
		t.Fatal(err)
	}
	items := map[string]int{}
	for _, r := range reps {
		items[r.Name] = r.Items
	}
	if want := map[string]int{"desktop": 10, "device": 10, "cards": 1, "phone-cards": 1}; !maps.Equal(items, want) {
		t.Errorf("live items after the upgrade = %v, want %v", items, want)
	}
	cs, err := hf.Conflicts()
	if err != nil || len(cs) != 1 || cs[0].Name != "both.txt" {
		t.Fatalf("Conflicts() of the upgraded file = %+v, %v; want the one on both.txt", cs, err)
	}
	ctx := context.Background()
	a, b := stores["desktop"], stores["device"]
	sides := []repl.Side{{Name: "desktop", Store: a}, {Name: "device", Store: b}}
	rep, err := hf.Sync(ctx, sides[0], sides[1], repl.Config{})
	if err != nil {
		t.Fatalf("Sync after the upgrade: %v", err)
	}
	// What the old file had pending goes on: the delete of Keep.txt, big.bin written again
	// after the interrupted session; nothing else moves, and the conflict still waits.
	if got := counts(rep, "device"); got != (repl.Counts{Created: 1, Deleted: 1}) {
		t.Errorf("the first session after the upgrade did %+v to the device, want big.bin created and Keep.txt deleted", got)
	}
	if got := counts(rep, "desktop"); got.Total() != 0 {
		t.Errorf("the first session after the upgrade changed the desktop: %+v", got)
	}
	if cs, _ := hf.Conflicts(); len(cs) != 1 {
		t.Errorf("conflicts after the first session: %+v, want the one on both.txt", cs)
	}
	if err := hf.Resolve(ctx, cs[0].ID, "device", sides...); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if err := a.Put("notes.txt", []byte("notes, edited again"), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if err := b.Rename("racy.txt", "Music/racy.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := hf.Sync(ctx, sides[0], sides[1], repl.Config{}); err != nil {
		t.Fatal(err)
	}
	wantSame(t, a, b)
	if got, _ := a.Get("both.txt"); string(got) != "device edit!" {
		t.Errorf("both.txt holds %q after the conflict was resolved for the device", got)
	}
	if _, ok := a.Get("Music/racy.txt"); !ok {
		t.Errorf("the rename on the device did not reach the desktop: %v", a.Names())
	}
	// The cards, with their units, sync on too.
	ca, cb := stores["cards"], stores["phone-cards"]
	if err := ca.Put("carol.vcf", []byte("N:Q2Fyb2w=\n"), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	uc := []repl.Side{{Name: "cards", Store: &memstore.UnitStore{Store: ca}}, {Name: "phone-cards", Store: &memstore.UnitStore{Store: cb}}}
	rep, err = hf.Sync(ctx, uc[0], uc[1], repl.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := counts(rep, "phone-cards"); got != (repl.Counts{Created: 1}) {
		t.Errorf("cards after the upgrade: %+v to the phone, want carol.vcf created", got)
	}
	wantSame(t, ca, cb)
	// The device replica's snapshot, exported from the upgraded file, is read by another.
	var snap bytes.Buffer
	if _, err := hf.ExportReplica("device", &snap); err != nil {
		t.Fatalf("ExportReplica: %v", err)
	}
	other, err := repl.Open(filepath.Join(t.TempDir(), "other.dat"), repl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ok, err := other.ImportReplica(ctx, "device", &snap); err != nil || !ok {
		t.Fatalf("ImportReplica of the upgraded file's snapshot = %v, %v", ok, err)
	}
	desk := memstore.New(memstore.Options{})
	rep, err = other.Sync(ctx, repl.Side{Name: "desktop", Store: desk}, repl.Side{Name: "device", Store: b}, repl.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := counts(rep, "device"); got.Total() != 0 {
		t.Errorf("another computer's first session changed the device: %+v", got)
	}
	wantSame(t, desk, b)
	if err := hf.Close(); err != nil {
		t.Fatal(err)
	}
	hf2, err := repl.Open(path, repl.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	hf2.Close()
}

// loadStores builds the stores a test data file describes: for each store name, its items with
// their content and modification times.
func loadStores(t *testing.T, file string) map[string]*memstore.Store {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var desc map[string][]struct {
		Name   string
		Folder bool
		Data   string
		Mod    time.Time
	}
	if err := json.Unmarshal(raw, &desc); err != nil {
		t.Fatal(err)
	}
	key := func(name string, _ []byte) string { return strings.ToLower(name) }
	opts := map[string]memstore.Options{
		"desktop": {NaturalKey: key},
		"device":  {TimeGranularity: time.Second, NonAtomic: true, Hashes: true, NaturalKey: key, WriteChunk: 4},
	}
	out := map[string]*memstore.Store{}
	for name, items := range desc {
		s := memstore.New(opts[name])
		slices.SortFunc(items, func(x, y struct {
			Name   string
			Folder bool
			Data   string
			Mod    time.Time
		}) int {
			return strings.Compare(x.Name, y.Name)
		})
		for _, it := range items {
			var err error
			if it.Folder {
				err = s.Mkdir(it.Name)
			} else {
				err = s.Put(it.Name, []byte(it.Data), it.Mod)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		out[name] = s
	}
	return out
}
