package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// change is one object of `cradle sync --dry-run --json`, with the fields the contract names.
type change struct {
	Partnership *string
	Action      *string
	Direction   *string
	Path        *string
	Size        *int64
	Reason      *string
}

// keptVersion is one object of `cradle versions --json`, with the fields the contract names.
type keptVersion struct {
	ID          *string
	Partnership *string
	Path        *string
	Time        *string
	Size        *int64
	Reason      *string
}

// TestDryRunContract: `cradle sync --dry-run --json` prints one JSON array of actions, each with
// partnership, action, direction, path, size and reason, changes nothing, and the sync right
// after it does what it listed.
func TestDryRunContract(t *testing.T) {
	e := newEnv(t)
	for i := range 4 {
		put(t, filepath.Join(e.desktop, fmt.Sprintf("f%d.txt", i)), fmt.Sprintf("file %d", i), at(i))
	}
	e.partner()
	e.syncJSON()
	put(t, filepath.Join(e.desktop, "new.txt"), "new", at(10))
	put(t, filepath.Join(e.desktop, "f0.txt"), "file 0, edited", at(11))
	put(t, filepath.Join(e.devDir(), "f1.txt"), "file 1, edited on the phone", at(12))
	os.Remove(filepath.Join(e.devDir(), "f2.txt"))
	desk, dev := tree(t, e.desktop), tree(t, e.devDir())

	r := e.ok("sync", "--dry-run", "--json")
	var cs []change
	if err := json.Unmarshal([]byte(r.stdout), &cs); err != nil {
		t.Fatalf("sync --dry-run --json printed %q: %v", r.stdout, err)
	}
	var got []string
	for _, c := range cs {
		if c.Partnership == nil || c.Action == nil || c.Direction == nil || c.Path == nil || c.Size == nil || c.Reason == nil || *c.Reason == "" {
			t.Fatalf("an action lacks a field the contract names: %s", r.stdout)
		}
		got = append(got, fmt.Sprintf("%s %s %s %d", *c.Action, *c.Direction, *c.Path, *c.Size))
	}
	slices.Sort(got)
	want := []string{"create to-device new.txt 3", "delete to-desktop f2.txt 0", "update to-desktop f1.txt 27", "update to-device f0.txt 14"}
	if !slices.Equal(got, want) {
		t.Errorf("dry run:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !mapsEqual(desk, tree(t, e.desktop)) || !mapsEqual(dev, tree(t, e.devDir())) {
		t.Error("the dry run changed a side")
	}
	human := e.ok("sync", "--dry-run")
	if !strings.Contains(human.stdout, "new.txt") || !strings.Contains(human.stdout, "deleted on the device") {
		t.Errorf("sync --dry-run printed:\n%s", human)
	}
	ss := e.syncJSON()
	if len(ss) != 1 || ss[0].ToDesktop != (counts{Updated: 1, Deleted: 1}) {
		t.Errorf("the sync after the dry run: %+v", ss)
	}
	if r := e.ok("sync", "--dry-run", "--json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("after the sync, the dry run lists %s", r.stdout)
	}
}

// TestVersionsAndRestore: a file a sync deleted is listed by `cradle versions --json` with the
// fields the contract names, `cradle restore ID` puts it back, the next sync carries it to the
// device; `--to` writes a copy elsewhere and never over a file.
func TestVersionsAndRestore(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "Travel/Lisbon.md"), "# Lisbon\n", at(0))
	put(t, filepath.Join(e.desktop, "Travel/Porto.md"), "# Porto\n", at(1))
	put(t, filepath.Join(e.desktop, "notes.txt"), "notes", at(2))
	e.partner()
	e.syncJSON()
	if err := os.Remove(filepath.Join(e.devDir(), "Travel/Lisbon.md")); err != nil {
		t.Fatal(err)
	}
	e.syncJSON()
	if _, err := os.Stat(filepath.Join(e.desktop, "Travel/Lisbon.md")); err == nil {
		t.Fatal("the deletion on the phone did not reach the desktop")
	}
	r := e.ok("versions", "--json")
	var vs []keptVersion
	if err := json.Unmarshal([]byte(r.stdout), &vs); err != nil || len(vs) != 1 {
		t.Fatalf("versions --json printed %q (%v), want one version", r.stdout, err)
	}
	v := vs[0]
	if v.ID == nil || v.Partnership == nil || v.Path == nil || v.Time == nil || v.Size == nil || v.Reason == nil {
		t.Fatalf("a version lacks a field the contract names: %s", r.stdout)
	}
	if *v.Path != "Travel/Lisbon.md" || *v.Reason != "delete" || *v.Size != 9 || *v.Partnership != "1" {
		t.Errorf("version = %s", r.stdout)
	}
	for _, args := range [][]string{{"versions", "docs", "Travel"}, {"versions", "Travel/Lisbon.md"}, {"versions", "1"}} {
		if r := e.ok(args...); !strings.Contains(r.stdout, *v.ID) || !strings.Contains(r.stdout, "deleted on the device") {
			t.Errorf("cradle %s printed:\n%s", strings.Join(args, " "), r)
		}
	}

	e.ok("restore", *v.ID)
	if got := get(t, filepath.Join(e.desktop, "Travel/Lisbon.md")); got != "# Lisbon\n" {
		t.Errorf("after restore the desktop holds %q", got)
	}
	e.syncJSON()
	if got := get(t, filepath.Join(e.devDir(), "Travel/Lisbon.md")); got != "# Lisbon\n" {
		t.Errorf("after restore and sync the phone holds %q", got)
	}
	out := filepath.Join(t.TempDir(), "old.md")
	e.ok("restore", *v.ID, "--to", out)
	if get(t, out) != "# Lisbon\n" {
		t.Errorf("restore --to wrote %q", get(t, out))
	}
	if r := e.run("restore", *v.ID, "--to", out); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("restore --to an existing file: %v", r)
	}
	if r := e.run("restore", "1.nothere"); r.code != 1 || !strings.Contains(r.stderr, "cradle versions") {
		t.Errorf("restore of an unknown ID: %v", r)
	}
	if r := e.run("restore"); r.code != 2 {
		t.Errorf("restore without an ID: %v", r)
	}
}

// TestMassDeleteSmallFolder: the guard holds at any count: 2 of 3 files deleted on the phone
// stop the sync, with the rule in the message; the dry run says so too.
func TestMassDeleteSmallFolder(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		put(t, filepath.Join(e.desktop, fmt.Sprintf("f%d.txt", i)), "keep me", at(i))
	}
	e.partner()
	e.syncJSON()
	os.Remove(filepath.Join(e.devDir(), "f0.txt"))
	os.Remove(filepath.Join(e.devDir(), "f1.txt"))
	if r := e.ok("sync", "--dry-run"); !strings.Contains(r.stderr, "would stop") || !strings.Contains(r.stderr, "2 of the 3 items") {
		t.Errorf("dry run of a mass delete: %v", r)
	}
	r := e.run("sync")
	if r.code == 0 || !strings.Contains(r.stderr, "2 of the 3 items on the desktop side, more than half") {
		t.Errorf("sync of 2 of 3 deleted: %v", r)
	}
	if n := len(tree(t, e.desktop)); n != 3 {
		t.Errorf("the stopped sync left %d files", n)
	}
	e.ok("sync", "--allow-mass-delete")
	if r := e.ok("versions", "--json"); strings.Count(r.stdout, `"reason": "delete"`) != 2 {
		t.Errorf("the allowed deletions are not both kept: %s", r.stdout)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// listedCounts counts the actions of `sync --dry-run --json` as `sync --json` counts what it did.
func listedCounts(t *testing.T, stdout string) (toDesktop, toDevice counts) {
	t.Helper()
	var cs []change
	if err := json.Unmarshal([]byte(stdout), &cs); err != nil {
		t.Fatalf("sync --dry-run --json printed %q: %v", stdout, err)
	}
	for _, c := range cs {
		n := &toDesktop
		if *c.Direction == "to-device" {
			n = &toDevice
		}
		switch *c.Action {
		case "create":
			n.Created++
		case "update":
			n.Updated++
		case "rename":
			n.Renamed++
		case "delete":
			n.Deleted++
		}
	}
	return toDesktop, toDevice
}

// A file on the desktop and a folder of the same name on the phone at the first sync: the file
// moves aside and becomes a folder, and the sync counts that update as the dry run lists it. (The
// session wrote the folder in the file's place without counting it: "to the desktop: 3 new"
// after a preview of 3 new and 1 updated.)
func TestDryRunFileMeetsFolder(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "b.txt"), "a file", at(0))
	mkdir(t, filepath.Join(e.devDir(), "b.txt"))
	put(t, filepath.Join(e.devDir(), "b.txt", "x.txt"), "in the folder", at(1))
	e.partner()
	toDesktop, toDevice := listedCounts(t, e.ok("sync", "--dry-run", "--json").stdout)
	o := e.syncOnce()
	if o.ToDesktop != toDesktop || o.ToDevice != toDevice {
		t.Errorf("the dry run listed to the desktop %+v, to the device %+v; the sync did %+v and %+v",
			toDesktop, toDevice, o.ToDesktop, o.ToDevice)
	}
	sameTrees(t, e.desktop, e.devDir())
	if len(holding(t, e.desktop, "a file")) != 1 || len(holding(t, e.desktop, "in the folder")) != 1 {
		t.Errorf("desktop after the sync:\n%s", describe(t, e.desktop))
	}
}
