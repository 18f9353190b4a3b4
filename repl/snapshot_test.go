package repl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// computer is one desktop partnered with a shared device: its own handle file, its desktop store,
// and the device's snapshot travelling on the device.
type computer struct {
	name    string
	hf      *repl.HandleFile
	desktop *memstore.Store
}

// device is the shared handheld: its store and the snapshot file in .cradle/.
type device struct {
	store *memstore.Store
	snap  []byte
}

func newComputer(t *testing.T, name string) *computer {
	hf, err := repl.Open(filepath.Join(t.TempDir(), name+".dat"), repl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hf.Close() })
	return &computer{name: name, hf: hf, desktop: memstore.New(memstore.Options{})}
}

// syncWith runs what the manager does: import the device's snapshot if newer, sync, export the
// snapshot to the device and confirm it. writeSnapshot false simulates a session interrupted
// before the snapshot was written.
func (c *computer) syncWith(t *testing.T, d *device, cfg repl.Config, writeSnapshot bool) (*repl.Report, error) {
	t.Helper()
	ctx := context.Background()
	if d.snap != nil {
		if _, err := c.hf.ImportReplica(ctx, "device", bytes.NewReader(d.snap)); err != nil {
			t.Fatalf("%s: ImportReplica: %v", c.name, err)
		}
	}
	rep, err := c.hf.Sync(ctx, repl.Side{Name: "desktop", Store: c.desktop}, repl.Side{Name: "device", Store: d.store}, cfg)
	if !writeSnapshot {
		return rep, err
	}
	var buf bytes.Buffer
	info, xerr := c.hf.ExportReplica("device", &buf)
	if xerr != nil {
		t.Fatalf("%s: ExportReplica: %v", c.name, xerr)
	}
	d.snap = buf.Bytes()
	if cerr := c.hf.ConfirmExport("device", info); cerr != nil {
		t.Fatalf("%s: ConfirmExport: %v", c.name, cerr)
	}
	return rep, err
}

// mustSync syncs c with d as the manager does, writing the snapshot, and fails on an error.
func (c *computer) mustSync(t *testing.T, d *device) *repl.Report {
	t.Helper()
	rep, err := c.syncWith(t, d, repl.Config{}, true)
	if err != nil {
		t.Fatalf("%s: Sync: %v", c.name, err)
	}
	return rep
}

// putNow writes content at name in s, modified now (a clock that moves forward).
func putNow(t *testing.T, s *memstore.Store, name, content string) {
	t.Helper()
	if err := s.Put(name, []byte(content), nextTime()); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceSharedByTwoComputers(t *testing.T) {
	d := &device{store: memstore.New(memstore.Options{})}
	home, work := newComputer(t, "home"), newComputer(t, "work")
	put := func(s *memstore.Store, name, content string) {
		if err := s.Put(name, []byte(content), nextTime()); err != nil {
			t.Fatal(err)
		}
	}
	put(home.desktop, "shared/todo.txt", "from home")
	put(work.desktop, "shared/report.txt", "from work")
	mustSync := func(c *computer) *repl.Report {
		t.Helper()
		rep, err := c.syncWith(t, d, repl.Config{}, true)
		if err != nil {
			t.Fatalf("%s: Sync: %v", c.name, err)
		}
		return rep
	}
	mustSync(home)
	mustSync(work)
	mustSync(home)
	want := map[string]string{"shared/todo.txt": "from home", "shared/report.txt": "from work"}
	wantFiles(t, "home", home.desktop, want)
	wantFiles(t, "work", work.desktop, want)
	wantFiles(t, "device", d.store, want)

	// An edit at work reaches home through the device, without a false conflict: home's copy
	// of the device replica learns from the snapshot that the device already had home's version.
	put(work.desktop, "shared/todo.txt", "edited at work")
	mustSync(work)
	rep := mustSync(home)
	if len(rep.Conflicts)+len(rep.Decisions) != 0 {
		t.Errorf("home saw conflicts %+v / decisions %+v for a one-sided edit", rep.Conflicts, rep.Decisions)
	}
	if got, _ := home.desktop.Get("shared/todo.txt"); string(got) != "edited at work" {
		t.Errorf("home has %q, want the work edit", got)
	}
	for _, c := range []*computer{home, work} {
		if confs, _ := c.hf.Conflicts(); len(confs) != 0 {
			t.Errorf("%s has conflicts %+v", c.name, confs)
		}
	}

	// Home syncs but is interrupted before writing the snapshot: its local copy is newer and is
	// used next time (nothing is sent twice, nothing conflicts).
	put(home.desktop, "shared/new.txt", "new at home")
	if _, err := home.syncWith(t, d, repl.Config{}, false); err != nil {
		t.Fatal(err)
	}
	before := d.store.Count(memstore.OpWrite)
	rep = mustSync(home)
	if d.store.Count(memstore.OpWrite) != before || rep.Bytes != 0 {
		t.Errorf("after an unsaved snapshot, the next session wrote again (%d bytes)", rep.Bytes)
	}
	mustSync(work)
	wantFiles(t, "work", work.desktop, map[string]string{"shared/todo.txt": "edited at work", "shared/report.txt": "from work", "shared/new.txt": "new at home"})
	if confs, _ := work.hf.Conflicts(); len(confs) != 0 {
		t.Errorf("work has conflicts %+v", confs)
	}
}

func TestSnapshotNewerRule(t *testing.T) {
	ctx := context.Background()
	d := &device{store: memstore.New(memstore.Options{})}
	a, b := newComputer(t, "a"), newComputer(t, "b")
	a.desktop.Put("x", []byte("x"), nextTime())
	if _, err := a.syncWith(t, d, repl.Config{}, true); err != nil {
		t.Fatal(err)
	}
	first := d.snap
	// Importing the snapshot this file wrote itself changes nothing.
	if ok, err := a.hf.ImportReplica(ctx, "device", bytes.NewReader(first)); err != nil || ok {
		t.Errorf("import of our own snapshot = %v, %v; want false", ok, err)
	}
	// Another computer imports it.
	if ok, err := b.hf.ImportReplica(ctx, "device", bytes.NewReader(first)); err != nil || !ok {
		t.Errorf("first import on b = %v, %v; want true", ok, err)
	}
	if ok, err := b.hf.ImportReplica(ctx, "device", bytes.NewReader(first)); err != nil || ok {
		t.Errorf("second import of the same snapshot = %v, %v; want false", ok, err)
	}
	if _, err := b.syncWith(t, d, repl.Config{}, true); err != nil {
		t.Fatal(err)
	}
	// a now sees b's newer snapshot; an older one (first) is not taken back.
	if ok, err := a.hf.ImportReplica(ctx, "device", bytes.NewReader(d.snap)); err != nil || !ok {
		t.Errorf("import of b's newer snapshot on a = %v, %v; want true", ok, err)
	}
	if ok, err := a.hf.ImportReplica(ctx, "device", bytes.NewReader(first)); err != nil || ok {
		t.Errorf("import of an older generation = %v, %v; want false", ok, err)
	}
}

func TestSnapshotRejectsDamage(t *testing.T) {
	ctx := context.Background()
	d := &device{store: memstore.New(memstore.Options{})}
	a := newComputer(t, "a")
	for i := 0; i < 10; i++ {
		a.desktop.Put(fmt.Sprintf("f%d", i), []byte("x"), nextTime())
	}
	if _, err := a.syncWith(t, d, repl.Config{}, true); err != nil {
		t.Fatal(err)
	}
	b := newComputer(t, "b")
	good := d.snap
	cases := map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)/2],
		"flipped":   append(append([]byte{}, good[:40]...), append([]byte{good[40] ^ 1}, good[41:]...)...),
		"foreign":   []byte("PK\x03\x04 a zip file"),
	}
	for name, data := range cases {
		ok, err := b.hf.ImportReplica(ctx, "device", bytes.NewReader(data))
		if !errors.Is(err, repl.ErrBadSnapshot) || ok {
			t.Errorf("import of a %s snapshot = %v, %v; want ErrBadSnapshot", name, ok, err)
		}
	}
	if reps, _ := b.hf.Replicas(); len(reps) != 0 {
		t.Errorf("refused snapshots created replicas %+v", reps)
	}
}

// workEditedOriginal is the start of the edit-beats-delete stories: x.txt "original" made at
// home and synced by both computers, then edited at work ("work edit") and synced to the device.
func workEditedOriginal(t *testing.T) (d *device, home, work *computer) {
	d = &device{store: memstore.New(memstore.Options{})}
	home, work = newComputer(t, "home"), newComputer(t, "work")
	putNow(t, home.desktop, "x.txt", "original")
	home.mustSync(t, d)
	work.mustSync(t, d)
	putNow(t, work.desktop, "x.txt", "work edit")
	work.mustSync(t, d)
	return d, home, work
}

// An edit that beats a delete goes over the delete only. Here the device saw work's edit before
// deleting the file, and home edited the original without seeing work's edit: home's edit beats
// the delete, but it must not pass for a successor of work's edit, which lives on at work under
// a new name. Work's edit and home's edit are concurrent and neither is dropped silently.
func TestEditBeatingDeleteClaimsOnlyTheDelete(t *testing.T) {
	d, home, work := workEditedOriginal(t)
	if err := work.desktop.Rename("x.txt", "y.txt"); err != nil {
		t.Fatal(err)
	}
	if err := d.store.Remove("x.txt"); err != nil {
		t.Fatal(err)
	}
	putNow(t, home.desktop, "x.txt", "home edit")
	rep := home.mustSync(t, d) // home's edit beats the device's delete
	wantFiles(t, "device after home", d.store, map[string]string{"x.txt": "home edit"})
	if len(rep.Conflicts) != 0 {
		t.Errorf("home: conflicts %+v for an edit against a delete", rep.Conflicts)
	}

	rep = work.mustSync(t, d)
	if len(rep.Conflicts) != 1 {
		t.Fatalf("work: conflicts %+v decisions %+v, want one conflict between the two edits", rep.Conflicts, rep.Decisions)
	}
	found := map[string]bool{}
	for _, s := range []*memstore.Store{work.desktop, d.store} {
		for _, content := range s.Files() {
			found[content] = true
		}
	}
	if !found["work edit"] || !found["home edit"] {
		t.Errorf("after work's session, work has %v and the device %v: an edit was lost", work.desktop.Files(), d.store.Files())
	}
}

// The same with a rename in place of home's edit: the content that survives the delete is the
// original, which the device had replaced with work's edit before deleting it. Work still holds
// its edit; it must not take it for newer than the survivor and write it over the rename (found
// by TestPropertyThreeReplicas). The two meet as concurrent edits.
func TestEditBeatingDeleteKeepsItsContent(t *testing.T) {
	d, home, work := workEditedOriginal(t)
	if err := d.store.Remove("x.txt"); err != nil { // the device's user deletes work's edit
		t.Fatal(err)
	}
	if err := home.desktop.Rename("x.txt", "y.txt"); err != nil { // home never saw work's edit
		t.Fatal(err)
	}
	home.mustSync(t, d) // the rename beats the delete: the original lives on as y.txt
	wantFiles(t, "device after home", d.store, map[string]string{"y.txt": "original"})

	rep := work.mustSync(t, d)
	found := map[string]bool{}
	for _, s := range []*memstore.Store{work.desktop, d.store} {
		for _, content := range s.Files() {
			found[content] = true
		}
	}
	if !found["original"] || !found["work edit"] {
		t.Errorf("after work's session, work has %v and the device %v (conflicts %+v, decisions %+v): a version was lost",
			work.desktop.Files(), d.store.Files(), rep.Conflicts, rep.Decisions)
	}
	if len(rep.Conflicts) != 1 {
		t.Errorf("work: conflicts %+v decisions %+v, want one conflict between the original and work's edit", rep.Conflicts, rep.Decisions)
	}
}

// A session whose snapshot never reached the device leaves this computer's copy of the device
// replica with versions nobody else will see once another computer has synced the device and
// written its own snapshot. Importing that newer snapshot drops them, and the desktop's items
// built on them give up their claims on the dropped branch: the next session meets them as
// concurrent versions (identical here, so quietly).
func TestImportDropsOrphanClaims(t *testing.T) {
	ctx := context.Background()
	d := &device{store: memstore.New(memstore.Options{})}
	home, work := newComputer(t, "home"), newComputer(t, "work")
	put := func(s *memstore.Store, name, content string) {
		t.Helper()
		if err := s.Put(name, []byte(content), nextTime()); err != nil {
			t.Fatal(err)
		}
	}
	mustSync := func(c *computer) *repl.Report {
		t.Helper()
		rep, err := c.syncWith(t, d, repl.Config{}, true)
		if err != nil {
			t.Fatalf("%s: Sync: %v", c.name, err)
		}
		if len(rep.Conflicts)+len(rep.Decisions) != 0 {
			t.Errorf("%s: conflicts %+v decisions %+v", c.name, rep.Conflicts, rep.Decisions)
		}
		return rep
	}
	deviceAuthor := func(c *computer) repl.ReplicaID {
		t.Helper()
		infos, err := c.hf.Replicas()
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			if in.Name == "device" {
				return in.Author
			}
		}
		t.Fatalf("%s has no device replica", c.name)
		return repl.ReplicaID{}
	}
	put(home.desktop, "x.txt", "original")
	mustSync(home)
	mustSync(work)

	put(d.store, "x.txt", "device edit")
	if _, err := home.syncWith(t, d, repl.Config{}, false); err != nil {
		t.Fatal(err)
	}
	orphans := deviceAuthor(home)
	if v, err := repl.ItemVector(home.hf, "desktop", "x.txt"); err != nil || v.Get(orphans) == 0 {
		t.Fatalf("setup: home's x.txt has %v (%v), want a version of the device's author", v, err)
	}
	mustSync(work)

	if ok, err := home.hf.ImportReplica(ctx, "device", bytes.NewReader(d.snap)); err != nil || !ok {
		t.Fatalf("ImportReplica = %v, %v; want the newer snapshot imported", ok, err)
	}
	if deviceAuthor(home) == orphans {
		t.Fatalf("home goes on minting under the author of the dropped branch")
	}
	v, err := repl.ItemVector(home.hf, "desktop", "x.txt")
	if err != nil {
		t.Fatal(err)
	}
	if v.Get(orphans) != 0 {
		t.Errorf("home's x.txt still claims the dropped branch: %v\n%s", v, repl.DumpReplica(home.hf, "desktop"))
	}
	mustSync(home)
	mustSync(work)
	want := map[string]string{"x.txt": "device edit"}
	wantFiles(t, "home", home.desktop, want)
	wantFiles(t, "work", work.desktop, want)
	wantFiles(t, "device", d.store, want)
}
