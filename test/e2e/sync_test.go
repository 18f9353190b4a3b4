package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirstSyncUnion: a first sync leaves both sides with everything either had.
func TestFirstSyncUnion(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "report.txt"), "desktop report", at(0))
	put(t, filepath.Join(e.desktop, "Projects", "plan.md"), "the plan", at(1))
	mkdir(t, filepath.Join(e.desktop, "Empty folder"))
	put(t, filepath.Join(e.devDir(), "phone note.txt"), "written on the phone", at(2))
	put(t, filepath.Join(e.devDir(), "Projects", "sketch.txt"), "a sketch", at(3))
	put(t, filepath.Join(e.devDir(), "Café ünïcode.txt"), "ünïcode", at(4))

	// devices --json: the contract's fields.
	r := e.ok("devices", "--json")
	var devs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil || len(devs) != 1 {
		t.Fatalf("devices --json = %q (%v)", r.stdout, err)
	}
	for _, k := range []string{"serial", "manufacturer", "model", "kind", "storages"} {
		if _, ok := devs[0][k]; !ok {
			t.Errorf("devices --json: no %q in %v", k, devs[0])
		}
	}
	st := devs[0]["storages"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "description", "free", "capacity"} {
		if _, ok := st[k]; !ok {
			t.Errorf("devices --json: storage has no %q: %v", k, st)
		}
	}

	e.partner()
	ss := e.syncJSON()
	if len(ss) != 1 || ss[0].Outcome != "ok" {
		t.Fatalf("sync = %+v, want one ok session", ss)
	}
	if ss[0].ToDevice.Created < 3 || ss[0].ToDesktop.Created < 3 {
		t.Errorf("sync counts = %+v, want items created both ways", ss[0])
	}
	sameTrees(t, e.desktop, e.devDir())
	if got := get(t, filepath.Join(e.desktop, "phone note.txt")); got != "written on the phone" {
		t.Errorf("desktop phone note.txt = %q", got)
	}
	if !exists(filepath.Join(e.devDir(), "Empty folder")) {
		t.Errorf("the empty folder did not reach the phone")
	}
	if cs := e.conflicts(); len(cs) != 0 {
		t.Errorf("conflicts after a first sync = %+v, want none", cs)
	}
	// The device replica's metadata is on the device.
	snaps, _ := filepath.Glob(filepath.Join(e.phone, ".cradle", "*.snapshot"))
	if len(snaps) != 1 {
		t.Errorf("device metadata: %d snapshots in .cradle, want 1", len(snaps))
	}
}

// TestEditsAndDeletesBothWays: edits and deletes on either side reach the other.
func TestEditsAndDeletesBothWays(t *testing.T) {
	e := newEnv(t)
	for i, name := range []string{"a.txt", "b.txt", "c.txt", "d.txt"} {
		put(t, filepath.Join(e.desktop, name), "v1 "+name, at(i))
	}
	e.partner()
	e.syncJSON()
	put(t, filepath.Join(e.desktop, "a.txt"), "v2 a, edited on the desktop", at(10))
	put(t, filepath.Join(e.devDir(), "b.txt"), "v2 b, edited on the phone", at(11))
	os.Remove(filepath.Join(e.desktop, "c.txt"))
	os.Remove(filepath.Join(e.devDir(), "d.txt"))
	ss := e.syncJSON()
	if ss[0].Outcome != "ok" {
		t.Fatalf("sync = %+v", ss)
	}
	if got := get(t, filepath.Join(e.devDir(), "a.txt")); got != "v2 a, edited on the desktop" {
		t.Errorf("phone a.txt = %q", got)
	}
	if got := get(t, filepath.Join(e.desktop, "b.txt")); got != "v2 b, edited on the phone" {
		t.Errorf("desktop b.txt = %q", got)
	}
	if exists(filepath.Join(e.devDir(), "c.txt")) || exists(filepath.Join(e.desktop, "d.txt")) {
		t.Errorf("a deletion did not propagate")
	}
	sameTrees(t, e.desktop, e.devDir())
	if c := ss[0]; c.ToDevice.Updated != 1 || c.ToDevice.Deleted != 1 || c.ToDesktop.Updated != 1 || c.ToDesktop.Deleted != 1 {
		t.Errorf("counts = %+v, want one update and one delete each way", c)
	}
}

// conflictSetup makes notes.txt differ on both sides after a first sync: the phone's edit is the
// newer one.
func conflictSetup(t *testing.T, policy string) *env {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "notes.txt"), "original", at(0))
	e.partner("--on-conflict", policy)
	e.syncJSON()
	put(t, filepath.Join(e.desktop, "notes.txt"), "desktop edit, longer than the other", at(10))
	put(t, filepath.Join(e.devDir(), "notes.txt"), "phone edit", at(20))
	return e
}

// TestConflictPolicies: a conflict under each policy ends as the policy says.
func TestConflictPolicies(t *testing.T) {
	const desk, phone = "desktop edit, longer than the other", "phone edit"
	for _, tc := range []struct {
		policy        string
		wantDesk      string
		wantPhone     string
		wantConflicts int
		wantCopy      bool
	}{
		{"ask", desk, phone, 1, false},
		{"desktop", desk, desk, 0, false},
		{"device", phone, phone, 0, false},
		{"newest", phone, phone, 0, false},
		{"keep-both", phone, phone, 0, true},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			e := conflictSetup(t, tc.policy)
			ss := e.syncJSON()
			if ss[0].Conflicts != tc.wantConflicts {
				t.Errorf("session conflicts = %d, want %d", ss[0].Conflicts, tc.wantConflicts)
			}
			if got := get(t, filepath.Join(e.desktop, "notes.txt")); got != tc.wantDesk {
				t.Errorf("desktop notes.txt = %q, want %q", got, tc.wantDesk)
			}
			if got := get(t, filepath.Join(e.devDir(), "notes.txt")); got != tc.wantPhone {
				t.Errorf("phone notes.txt = %q, want %q", got, tc.wantPhone)
			}
			cs := e.conflicts()
			if len(cs) != tc.wantConflicts {
				t.Fatalf("conflicts = %+v, want %d", cs, tc.wantConflicts)
			}
			if tc.policy == "ask" {
				c := cs[0]
				if c.Path != "notes.txt" || !c.Desktop.Exists || !c.Device.Exists ||
					c.Desktop.Size != int64(len(desk)) || c.Device.Size != int64(len(phone)) ||
					!c.Device.Modified.Equal(at(20)) || !c.Desktop.Modified.Equal(at(10)) {
					t.Errorf("conflict = %+v, want both sides' size and time", c)
				}
				return
			}
			if tc.wantCopy {
				copies, _ := filepath.Glob(filepath.Join(e.desktop, "notes (conflict*"))
				if len(copies) != 1 || get(t, copies[0]) != desk {
					t.Errorf("keep-both copies = %v, want one holding the desktop's version", copies)
				}
			}
			sameTrees(t, e.desktop, e.devDir())
			// Settled conflicts stay settled.
			if ss := e.syncJSON(); ss[0].Conflicts != 0 || ss[0].ToDesktop.Created+ss[0].ToDevice.Created+ss[0].ToDesktop.Updated+ss[0].ToDevice.Updated != 0 {
				t.Errorf("second sync = %+v, want nothing to do", ss[0])
			}
		})
	}
}

// TestResolve: a conflict under "ask" resolved with each choice, and --all.
func TestResolve(t *testing.T) {
	const desk, phone = "desktop edit, longer than the other", "phone edit"
	for _, keep := range []string{"desktop", "device", "both"} {
		t.Run(keep, func(t *testing.T) {
			e := conflictSetup(t, "ask")
			e.syncJSON()
			cs := e.conflicts()
			if len(cs) != 1 {
				t.Fatalf("conflicts = %+v, want 1", cs)
			}
			r := e.ok("resolve", cs[0].ID, "--keep", keep)
			if !strings.Contains(r.stderr, "Resolved") {
				t.Errorf("resolve said %q", r.stderr)
			}
			if left := e.conflicts(); len(left) != 0 {
				t.Errorf("conflicts after resolve = %+v", left)
			}
			want := map[string]string{"desktop": desk, "device": phone, "both": phone}[keep]
			if got := get(t, filepath.Join(e.desktop, "notes.txt")); got != want {
				t.Errorf("desktop notes.txt = %q, want %q", got, want)
			}
			sameTrees(t, e.desktop, e.devDir())
			if keep == "both" {
				copies, _ := filepath.Glob(filepath.Join(e.desktop, "notes (conflict*"))
				if len(copies) != 1 || get(t, copies[0]) != desk {
					t.Errorf("keep both: copies = %v, want one with the desktop's version", copies)
				}
			}
		})
	}
	t.Run("all", func(t *testing.T) {
		e := newEnv(t)
		put(t, filepath.Join(e.desktop, "one.txt"), "1", at(0))
		put(t, filepath.Join(e.desktop, "two.txt"), "2", at(0))
		e.partner()
		e.syncJSON()
		for _, n := range []string{"one.txt", "two.txt"} {
			put(t, filepath.Join(e.desktop, n), "desktop "+n, at(5))
			put(t, filepath.Join(e.devDir(), n), "phone "+n, at(6))
		}
		e.syncJSON()
		if cs := e.conflicts(); len(cs) != 2 {
			t.Fatalf("conflicts = %+v, want 2", cs)
		}
		e.ok("resolve", "--all", "--keep", "device")
		if cs := e.conflicts(); len(cs) != 0 {
			t.Errorf("conflicts after resolve --all = %+v", cs)
		}
		for _, n := range []string{"one.txt", "two.txt"} {
			if got := get(t, filepath.Join(e.desktop, n)); got != "phone "+n {
				t.Errorf("desktop %s = %q", n, got)
			}
		}
	})
	t.Run("device away", func(t *testing.T) {
		e := conflictSetup(t, "ask")
		e.syncJSON()
		id := e.conflicts()[0].ID
		// Without --emulate the phone is not connected: the choice waits for the next sync.
		r := cradle(t, "--config", e.config, "resolve", id, "--keep", "desktop")
		if r.code != 0 || !strings.Contains(r.stderr, "next sync") {
			t.Fatalf("resolve without the device: %v", r)
		}
		if got := get(t, filepath.Join(e.devDir(), "notes.txt")); got != phone {
			t.Errorf("phone changed while away: %q", got)
		}
		e.syncJSON()
		if got := get(t, filepath.Join(e.devDir(), "notes.txt")); got != desk {
			t.Errorf("phone notes.txt after the next sync = %q, want the desktop's", got)
		}
	})
}

// TestNoopSyncRewritesNothing: a sync with nothing to do touches no file on either side, the
// device metadata included.
func TestNoopSyncRewritesNothing(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 20; i++ {
		put(t, filepath.Join(e.desktop, fmt.Sprintf("dir%d", i%3), fmt.Sprintf("f%02d.txt", i)), strings.Repeat("x", i*100), at(i))
		put(t, filepath.Join(e.devDir(), fmt.Sprintf("phone%d", i%2), fmt.Sprintf("p%02d.txt", i)), strings.Repeat("y", i*50), at(i))
	}
	e.partner()
	e.syncJSON()
	e.syncJSON() // settles anything the first sync left to bookkeeping
	before := fileIDs(t, e.desktop)
	beforeDev := fileIDs(t, e.phone)
	snaps, _ := filepath.Glob(filepath.Join(e.phone, ".cradle", "*"))
	ss := e.syncJSON()
	if c := ss[0]; c.ToDesktop != (counts{}) || c.ToDevice != (counts{}) {
		t.Errorf("no-op sync counts = %+v", c)
	}
	for name, ids := range map[string][2]map[string]fileID{"desktop": {before, fileIDs(t, e.desktop)}, "phone": {beforeDev, fileIDs(t, e.phone)}} {
		if len(ids[0]) != len(ids[1]) {
			t.Errorf("%s: %d entries before, %d after", name, len(ids[0]), len(ids[1]))
		}
		for p, id := range ids[0] {
			if ids[1][p] != id {
				t.Errorf("%s: %s was rewritten (%+v -> %+v)", name, p, id, ids[1][p])
			}
		}
	}
	after, _ := filepath.Glob(filepath.Join(e.phone, ".cradle", "*"))
	if strings.Join(snaps, ",") != strings.Join(after, ",") {
		t.Errorf("device metadata rewritten by a no-op sync: %v -> %v", snaps, after)
	}
}

// TestOneWay: to-device and to-desktop partnerships send changes one way only.
func TestOneWay(t *testing.T) {
	t.Run("to-device", func(t *testing.T) {
		e := newEnv(t)
		put(t, filepath.Join(e.desktop, "out.txt"), "to the phone", at(0))
		put(t, filepath.Join(e.devDir(), "stay.txt"), "stays on the phone", at(0))
		e.partner("--direction", "to-device")
		e.syncJSON()
		if get(t, filepath.Join(e.devDir(), "out.txt")) != "to the phone" {
			t.Errorf("out.txt did not reach the phone")
		}
		if exists(filepath.Join(e.desktop, "stay.txt")) {
			t.Errorf("a to-device partnership copied a phone file to the desktop")
		}
		put(t, filepath.Join(e.devDir(), "out.txt"), "edited on the phone", at(5))
		put(t, filepath.Join(e.desktop, "second.txt"), "second", at(6))
		e.syncJSON()
		if get(t, filepath.Join(e.desktop, "out.txt")) != "to the phone" {
			t.Errorf("a phone edit reached the desktop of a to-device partnership")
		}
		if get(t, filepath.Join(e.devDir(), "second.txt")) != "second" {
			t.Errorf("second.txt did not reach the phone")
		}
	})
	t.Run("to-desktop", func(t *testing.T) {
		e := newEnv(t)
		put(t, filepath.Join(e.desktop, "mine.txt"), "stays on the desktop", at(0))
		put(t, filepath.Join(e.devDir(), "in.txt"), "to the desktop", at(0))
		e.partner("--direction", "to-desktop")
		e.syncJSON()
		if get(t, filepath.Join(e.desktop, "in.txt")) != "to the desktop" {
			t.Errorf("in.txt did not reach the desktop")
		}
		if exists(filepath.Join(e.devDir(), "mine.txt")) {
			t.Errorf("a to-desktop partnership copied a desktop file to the phone")
		}
		os.Remove(filepath.Join(e.desktop, "in.txt"))
		e.syncJSON()
		if !exists(filepath.Join(e.devDir(), "in.txt")) {
			t.Errorf("a desktop deletion reached the phone in a to-desktop partnership")
		}
	})
}

// TestLargeFile: a 64 MB file goes to the phone and back intact.
func TestLargeFile(t *testing.T) {
	e := newEnv(t)
	data := make([]byte, 64<<20)
	rand.Read(data)
	path := filepath.Join(e.desktop, "video.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.partner()
	ss := e.syncJSON()
	if ss[0].ToDevice.Created != 1 {
		t.Fatalf("sync = %+v", ss[0])
	}
	got, err := os.ReadFile(filepath.Join(e.devDir(), "video.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the 64 MB file on the phone differs (%d bytes, %v)", len(got), err)
	}
	// Changed on the phone, it comes back.
	data[12345] ^= 0xff
	if err := os.WriteFile(filepath.Join(e.devDir(), "video.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(e.devDir(), "video.bin"), at(30), at(30))
	e.syncJSON()
	got, _ = os.ReadFile(path)
	if !bytes.Equal(got, data) {
		t.Fatalf("the phone's edit of the 64 MB file did not come back intact")
	}
}

// TestRenamesAndFolderDeletes: renamed files and folders, and deleted folders with content.
func TestRenamesAndFolderDeletes(t *testing.T) {
	e := newEnv(t)
	put(t, filepath.Join(e.desktop, "old name.txt"), "renamed on the desktop", at(0))
	put(t, filepath.Join(e.desktop, "Album", "one.txt"), "1", at(0))
	put(t, filepath.Join(e.desktop, "Album", "two.txt"), "2", at(0))
	put(t, filepath.Join(e.desktop, "Trash me", "a.txt"), "a", at(0))
	put(t, filepath.Join(e.desktop, "Trash me", "deeper", "b.txt"), "b", at(0))
	put(t, filepath.Join(e.desktop, "phone renames.txt"), "renamed on the phone", at(0))
	e.partner()
	e.syncJSON()
	if err := os.Rename(filepath.Join(e.desktop, "old name.txt"), filepath.Join(e.desktop, "new name.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(e.desktop, "Album"), filepath.Join(e.desktop, "Holidays 2026")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(e.devDir(), "Trash me")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(e.devDir(), "phone renames.txt"), filepath.Join(e.devDir(), "renamed by the phone.txt")); err != nil {
		t.Fatal(err)
	}
	e.syncJSON()
	sameTrees(t, e.desktop, e.devDir())
	for _, p := range []string{"new name.txt", "Holidays 2026/one.txt", "Holidays 2026/two.txt", "renamed by the phone.txt"} {
		if !exists(filepath.Join(e.desktop, p)) {
			t.Errorf("%s missing", p)
		}
	}
	for _, p := range []string{"old name.txt", "Album", "Trash me", "phone renames.txt"} {
		if exists(filepath.Join(e.desktop, p)) || exists(filepath.Join(e.devDir(), p)) {
			t.Errorf("%s still there", p)
		}
	}
}

// TestTwoComputers: one phone partnered with two computers (two config folders) syncs with each
// without false conflicts.
func TestTwoComputers(t *testing.T) {
	a := newEnv(t)
	b := &env{t: t, config: filepath.Join(t.TempDir(), "config-b"), desktop: filepath.Join(t.TempDir(), "desktop-b"), phone: a.phone}
	mkdir(t, b.desktop)
	put(t, filepath.Join(a.desktop, "shared.txt"), "from computer A", at(0))
	put(t, filepath.Join(a.desktop, "both have it.txt"), "same bytes", at(1))
	put(t, filepath.Join(b.desktop, "both have it.txt"), "same bytes", at(1))
	put(t, filepath.Join(b.desktop, "from b.txt"), "from computer B", at(2))
	a.partner()
	b.partner()
	for round, step := range []struct {
		who  *env
		edit func()
	}{
		{a, nil},
		{b, nil},
		{a, nil},
		{b, func() { put(t, filepath.Join(b.desktop, "shared.txt"), "edited on B", at(10)) }},
		{a, nil},
		{a, func() {
			put(t, filepath.Join(a.desktop, "from b.txt"), "edited on A", at(11))
			os.Remove(filepath.Join(a.desktop, "both have it.txt"))
		}},
		{b, nil},
		{a, nil},
	} {
		if step.edit != nil {
			step.edit()
		}
		ss := step.who.syncJSON()
		if ss[0].Conflicts != 0 || ss[0].Outcome != "ok" {
			t.Fatalf("round %d: session %+v, want ok without conflicts", round, ss[0])
		}
	}
	sameTrees(t, a.desktop, b.desktop)
	sameTrees(t, a.desktop, a.devDir())
	if got := get(t, filepath.Join(a.desktop, "shared.txt")); got != "edited on B" {
		t.Errorf("A's shared.txt = %q", got)
	}
	if got := get(t, filepath.Join(b.desktop, "from b.txt")); got != "edited on A" {
		t.Errorf("B's from b.txt = %q", got)
	}
	if exists(filepath.Join(b.desktop, "both have it.txt")) {
		t.Errorf("a deletion on A did not reach B")
	}
	if cs := a.conflicts(); len(cs) != 0 {
		t.Errorf("A has conflicts: %+v", cs)
	}
	if cs := b.conflicts(); len(cs) != 0 {
		t.Errorf("B has conflicts: %+v", cs)
	}
}

// TestRandomRoundsConverge: rounds of random creates, edits, deletes and renames on both sides;
// after each sync both sides hold the same files, and a second sync has nothing to do.
func TestRandomRoundsConverge(t *testing.T) {
	e := newEnv(t)
	e.partner("--on-conflict", "newest")
	rng := mrand.New(mrand.NewPCG(7, 11))
	clock := 0
	names := []string{"a.txt", "b.txt", "c.txt", "sub/d.txt", "sub/e.txt", "sub/deep/f.txt", "g.txt", "h.txt"}
	for round := 0; round < 8; round++ {
		for _, side := range []string{e.desktop, e.devDir()} {
			for n := rng.IntN(5); n >= 0; n-- {
				clock++
				name := names[rng.IntN(len(names))]
				p := filepath.Join(side, filepath.FromSlash(name))
				switch op := rng.IntN(10); {
				case op < 6:
					put(t, p, fmt.Sprintf("round %d side %s op %d %s", round, filepath.Base(side), clock, strings.Repeat("z", rng.IntN(3000))), at(clock))
				case op < 8:
					os.Remove(p)
				default:
					to := filepath.Join(side, filepath.FromSlash(names[rng.IntN(len(names))]))
					if exists(p) && !exists(to) {
						mkdir(t, filepath.Dir(to))
						os.Rename(p, to)
					}
				}
			}
		}
		ss := e.syncJSON()
		if ss[0].Outcome != "ok" {
			t.Fatalf("round %d: %+v", round, ss[0])
		}
		sameTrees(t, e.desktop, e.devDir())
		again := e.syncJSON()[0]
		if again.ToDesktop != (counts{}) || again.ToDevice != (counts{}) {
			t.Fatalf("round %d: a second sync still changed %+v", round, again)
		}
	}
}

// TestMassDelete: a sync that would delete most of a side stops before changing anything and
// says how to go on; confirmed, it deletes.
func TestMassDelete(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 12; i++ {
		put(t, filepath.Join(e.desktop, fmt.Sprintf("f%02d.txt", i)), "keep me", at(i))
	}
	e.partner()
	e.syncJSON()
	for i := 0; i < 10; i++ {
		os.Remove(filepath.Join(e.devDir(), fmt.Sprintf("f%02d.txt", i)))
	}
	r := e.run("sync")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; r.code == 0 || !strings.HasPrefix(last, "cradle sync: ") {
		t.Errorf("mass delete: exit %d, last line %q; want an error line", r.code, last)
	}
	if !strings.Contains(r.stderr, "--allow-mass-delete") {
		t.Errorf("mass delete: stderr %q does not say how to confirm", r.stderr)
	}
	if n := len(tree(t, e.desktop)); n != 12 {
		t.Fatalf("the stopped sync changed the desktop: %d files left", n)
	}
	e.ok("sync", "--allow-mass-delete")
	if n := len(tree(t, e.desktop)); n != 2 {
		t.Errorf("after the confirmed sync the desktop holds %d files, want 2", n)
	}
}
