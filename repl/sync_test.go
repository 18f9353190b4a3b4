package repl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

func TestSyncCreatesUpdatesDeletes(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "notes.txt", "desk 1")
	w.put(w.a, "photos/2026/a.jpg", "jpeg a")
	w.put(w.b, "music/song.mp3", "song")
	rep := w.sync()
	want := map[string]string{"notes.txt": "desk 1", "photos/2026/a.jpg": "jpeg a", "music/song.mp3": "song"}
	wantFiles(t, "desktop after first sync", w.a, want)
	wantFiles(t, "device after first sync", w.b, want)
	wantSame(t, w.a, w.b)
	if !rep.Complete {
		t.Errorf("first sync not complete: %+v", rep)
	}
	if c := counts(rep, "device"); c.Created != 4 { // notes, photos, photos/2026, a.jpg
		t.Errorf("device got %+v, want 4 creates", c)
	}

	// Edit on the device, delete on the desktop.
	w.cfg.AllowMassDelete = true // the folder removal below deletes 3 of the 5 items
	w.put(w.b, "notes.txt", "device edit")
	w.remove(w.a, "music/song.mp3")
	rep = w.sync()
	want = map[string]string{"notes.txt": "device edit", "photos/2026/a.jpg": "jpeg a"}
	wantFiles(t, "desktop after edits", w.a, want)
	wantFiles(t, "device after edits", w.b, want)
	if c := counts(rep, "desktop"); c.Updated != 1 {
		t.Errorf("desktop counts %+v, want 1 update", c)
	}
	if c := counts(rep, "device"); c.Deleted != 1 {
		t.Errorf("device counts %+v, want 1 delete", c)
	}
	if len(w.conflicts()) != 0 {
		t.Errorf("conflicts after one-sided changes: %+v", w.conflicts())
	}

	// A folder removed with what it holds.
	w.remove(w.b, "photos")
	w.sync()
	wantFiles(t, "desktop after folder removal", w.a, map[string]string{"notes.txt": "device edit"})
	wantSame(t, w.a, w.b)
}

func TestSyncAgainWritesNothing(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	for i := 0; i < 30; i++ {
		w.put(w.a, fmt.Sprintf("d%d/f%d.txt", i%3, i), fmt.Sprint("content ", i))
	}
	w.sync()
	wa, wb := w.a.Count(memstore.OpWrite), w.b.Count(memstore.OpWrite)
	rep := w.sync()
	if rep.Bytes != 0 || counts(rep, "desktop").Total()+counts(rep, "device").Total() != 0 {
		t.Errorf("second sync of unchanged stores did work: bytes %d, %+v %+v", rep.Bytes, counts(rep, "desktop"), counts(rep, "device"))
	}
	if w.a.Count(memstore.OpWrite) != wa || w.b.Count(memstore.OpWrite) != wb {
		t.Errorf("second sync wrote to a store")
	}
	for _, d := range rep.Detected {
		if d.Changes() != 0 {
			t.Errorf("second sync detected changes in %s: %+v (the engine's own writes must not look like changes)", d.Side, d)
		}
	}
}

func TestRenameKeepsIdentity(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	big := strings.Repeat("a long video ", 1000)
	w.put(w.a, "video.mp4", big)
	w.sync()
	if err := w.a.Rename("video.mp4", "clips/holiday.mp4"); err != nil {
		t.Fatal(err)
	}
	rep := w.sync()
	if d := rep.Detected[0]; d.Renamed != 1 || d.Created != 1 || d.Deleted != 0 { // the new folder is created
		t.Errorf("detection of a rename on the desktop = %+v, want 1 rename (and the new folder)", d)
	}
	if c := counts(rep, "device"); c.Renamed != 1 || c.Deleted != 0 {
		t.Errorf("device counts %+v, want the item renamed, not deleted and created", c)
	}
	wantFiles(t, "device", w.b, map[string]string{"clips/holiday.mp4": big})
	wantSame(t, w.a, w.b)
}

func TestFolderDeleteKeepsNewContent(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "album/one.jpg", "1")
	w.put(w.a, "album/two.jpg", "2")
	w.sync()
	w.cfg.AllowMassDelete = true // 3 of the 3 items: the user meant it
	w.remove(w.a, "album")
	w.put(w.b, "album/three.jpg", "3 (new on the device)")
	w.sync()
	want := map[string]string{"album/three.jpg": "3 (new on the device)"}
	wantFiles(t, "desktop", w.a, want)
	wantFiles(t, "device", w.b, want)
	wantSame(t, w.a, w.b)
}

func TestEditBeatsDelete(t *testing.T) {
	for _, deleter := range []string{"desktop", "device"} {
		t.Run("deleted on "+deleter, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.put(w.a, "report.doc", "v1")
			w.sync()
			del, edit := w.a, w.b
			if deleter == "device" {
				del, edit = w.b, w.a
			}
			w.remove(del, "report.doc")
			w.put(edit, "report.doc", "v2 edited")
			w.sync()
			want := map[string]string{"report.doc": "v2 edited"}
			wantFiles(t, "desktop", w.a, want)
			wantFiles(t, "device", w.b, want)
			if c := w.conflicts(); len(c) != 0 {
				t.Errorf("edit against delete left conflicts %+v", c)
			}
			// And it stays settled.
			rep := w.sync()
			if counts(rep, "desktop").Total()+counts(rep, "device").Total() != 0 {
				t.Errorf("a later sync still changed things: %+v %+v", counts(rep, "desktop"), counts(rep, "device"))
			}
		})
	}
}

func TestIdenticalChangesAreNotConflicts(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "same.txt", "identical")
	w.put(w.b, "same.txt", "identical")
	rep := w.sync()
	if len(w.conflicts()) != 0 || len(rep.Decisions) != 0 {
		t.Errorf("same file on both sides on first sync: conflicts %+v decisions %+v", w.conflicts(), rep.Decisions)
	}
	if rep.Bytes != 0 {
		t.Errorf("joining identical files copied %d bytes", rep.Bytes)
	}
	w.put(w.a, "same.txt", "both edited alike")
	w.put(w.b, "same.txt", "both edited alike")
	rep = w.sync()
	if len(w.conflicts()) != 0 || len(rep.Decisions) != 0 {
		t.Errorf("the same edit on both sides: conflicts %+v decisions %+v", w.conflicts(), rep.Decisions)
	}
	w.put(w.a, "same.txt", "later desktop edit")
	w.sync()
	wantFiles(t, "device", w.b, map[string]string{"same.txt": "later desktop edit"})
	if len(w.conflicts()) != 0 {
		t.Errorf("an edit after a join is a conflict: %+v", w.conflicts())
	}
}

func TestConflictAskRecordsAndResolves(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "plan.txt", "v1")
	w.sync()
	w.put(w.a, "plan.txt", "desktop edit")
	w.put(w.b, "plan.txt", "device edit, longer")
	rep := w.sync()
	if len(rep.Conflicts) != 1 {
		t.Fatalf("concurrent edits under Ask: report lists conflicts %+v, want exactly one", rep.Conflicts)
	}
	wantFiles(t, "desktop under ask", w.a, map[string]string{"plan.txt": "desktop edit"})
	wantFiles(t, "device under ask", w.b, map[string]string{"plan.txt": "device edit, longer"})
	confs := w.conflicts()
	if len(confs) != 1 {
		t.Fatalf("Conflicts() = %+v, want exactly one", confs)
	}
	c := confs[0]
	d, _ := c.Side("desktop")
	v, _ := c.Side("device")
	if c.Name != "plan.txt" || !d.Exists || !v.Exists || d.Size != int64(len("desktop edit")) || v.Size != int64(len("device edit, longer")) {
		t.Errorf("conflict record = %+v, want plan.txt with both sides' sizes", c)
	}
	// Syncing again neither records a duplicate nor changes anything.
	w.sync()
	if n := len(w.conflicts()); n != 1 {
		t.Errorf("after another sync there are %d conflicts, want still 1", n)
	}
	// A new edit on the device updates the record.
	w.put(w.b, "plan.txt", "device edit 2")
	w.sync()
	confs = w.conflicts()
	if len(confs) != 1 || confs[0].ID != c.ID {
		t.Fatalf("after a new edit: conflicts %+v, want the same record (ID %s) updated", confs, c.ID)
	}
	if v, _ := confs[0].Side("device"); v.Size != int64(len("device edit 2")) {
		t.Errorf("updated record has device size %d, want %d", v.Size, len("device edit 2"))
	}
	if err := w.hf.Resolve(context.Background(), c.ID, "device"); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	// Without the stores the choice waits for the next session.
	if confs := w.conflicts(); len(confs) != 1 || confs[0].Pending != "device" {
		t.Errorf("after Resolve without stores, conflicts = %+v, want the record with Pending \"device\"", confs)
	}
	w.sync()
	if n := len(w.conflicts()); n != 0 {
		t.Errorf("after the session that carried out the resolution %d conflicts remain", n)
	}
	want := map[string]string{"plan.txt": "device edit 2"}
	wantFiles(t, "desktop after resolve", w.a, want)
	wantFiles(t, "device after resolve", w.b, want)
	if err := w.hf.Resolve(context.Background(), c.ID, "device"); !errors.Is(err, repl.ErrNoConflict) {
		t.Errorf("resolving again = %v, want ErrNoConflict", err)
	}
}

func TestResolveKeepBoth(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "a/plan.txt", "v1")
	w.sync()
	w.put(w.b, "a/plan.txt", "device edit (older)")
	w.put(w.a, "a/plan.txt", "desktop edit (newer)")
	w.sync()
	confs := w.conflicts()
	if len(confs) != 1 {
		t.Fatalf("conflicts = %+v", confs)
	}
	if err := w.hf.Resolve(context.Background(), confs[0].ID, repl.ResolveBoth); err != nil {
		t.Fatal(err)
	}
	w.sync()
	day := time.Now().Format("2006-01-02")
	want := map[string]string{"a/plan.txt": "desktop edit (newer)", "a/plan (conflict " + day + " device).txt": "device edit (older)"}
	wantFiles(t, "desktop", w.a, want)
	wantFiles(t, "device", w.b, want)
	if n := len(w.conflicts()); n != 0 {
		t.Errorf("%d conflicts left", n)
	}
}

func TestConflictPolicies(t *testing.T) {
	day := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		policy      repl.Policy
		deviceNewer bool
		want        map[string]string
		kept        string
	}{
		{"desktop wins", repl.Policy{Rule: repl.Wins, Winner: "desktop"}, true, map[string]string{"r.txt": "desktop"}, "desktop"},
		{"device wins", repl.Policy{Rule: repl.Wins, Winner: "device"}, false, map[string]string{"r.txt": "device"}, "device"},
		{"newest: device", repl.Policy{Rule: repl.Newest}, true, map[string]string{"r.txt": "device"}, "device"},
		{"newest: desktop", repl.Policy{Rule: repl.Newest}, false, map[string]string{"r.txt": "desktop"}, "desktop"},
		{"keep both: device newer", repl.Policy{Rule: repl.KeepBoth}, true,
			map[string]string{"r.txt": "device", "r (conflict 2026-11-21 desktop).txt": "desktop"}, "device"},
		{"keep both: desktop newer", repl.Policy{Rule: repl.KeepBoth}, false,
			map[string]string{"r.txt": "desktop", "r (conflict 2026-11-21 device).txt": "device"}, "desktop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.cfg.Policy = tc.policy
			w.cfg.Now = func() time.Time { return day }
			w.put(w.a, "r.txt", "original")
			w.sync()
			if tc.deviceNewer {
				w.put(w.a, "r.txt", "desktop")
				w.put(w.b, "r.txt", "device")
			} else {
				w.put(w.b, "r.txt", "device")
				w.put(w.a, "r.txt", "desktop")
			}
			rep := w.sync()
			wantFiles(t, "desktop", w.a, tc.want)
			wantFiles(t, "device", w.b, tc.want)
			if len(rep.Decisions) != 1 || rep.Decisions[0].Kept != tc.kept {
				t.Errorf("decisions = %+v, want one keeping %s", rep.Decisions, tc.kept)
			}
			if tc.policy.Rule != repl.KeepBoth && rep.Decisions[0].Dropped.Size == 0 {
				t.Errorf("decision does not describe the dropped version: %+v", rep.Decisions[0])
			}
			if len(w.conflicts()) != 0 {
				t.Errorf("policy %v left conflicts %+v", tc.policy, w.conflicts())
			}
			rep = w.sync()
			if counts(rep, "desktop").Total()+counts(rep, "device").Total() != 0 || len(rep.Decisions) != 0 {
				t.Errorf("the sync after a settled conflict did more: %+v %+v %+v", counts(rep, "desktop"), counts(rep, "device"), rep.Decisions)
			}
		})
	}
}

func TestFirstSyncMatchesByName(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	matched := 0 // bytes of the files found alike on both sides
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("lib/%02d.txt", i)
		w.put(w.a, name, fmt.Sprint("same ", i))
		if i%8 == 0 {
			w.put(w.b, name, fmt.Sprint("different on the device ", i))
		} else {
			w.put(w.b, name, fmt.Sprint("same ", i))
			matched += len(fmt.Sprint("same ", i))
		}
	}
	w.put(w.b, "only-device.txt", "d")
	w.put(w.a, "only-desktop.txt", "a")
	rep := w.sync()
	// The 5 files that differ are collisions: both kept, the newer (the device's) under the name.
	if n := len(w.conflicts()); n != 0 {
		t.Errorf("first sync recorded %d conflicts, want none (collisions keep both)", n)
	}
	if got := len(w.a.Files()); got != 47 {
		t.Errorf("desktop has %d files after the first sync, want 47 (42, and the 5 that differ kept beside)", got)
	}
	wantSame(t, w.a, w.b)
	if rep.Bytes >= int64(matched) {
		t.Errorf("first sync copied %d bytes, want far fewer than the %d of the matched files (they are not copied)", rep.Bytes, matched)
	}
	for i := 0; i < 40; i += 8 {
		if got, _ := w.a.Get(fmt.Sprintf("lib/%02d.txt", i)); string(got) != fmt.Sprint("different on the device ", i) {
			t.Errorf("lib/%02d.txt = %q, want the newer, the device's", i, got)
		}
	}
	if rep := w.sync(); !quietReport(rep) {
		t.Errorf("the session after did more: %+v", rep)
	}
}

func TestMassDeleteGuard(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	for i := 0; i < 20; i++ {
		w.put(w.a, fmt.Sprintf("f%02d", i), "x")
	}
	w.sync()
	for i := 0; i < 15; i++ {
		w.remove(w.a, fmt.Sprintf("f%02d", i))
	}
	w.put(w.a, "new.txt", "created with the deletes")
	before := w.b.Files()
	_, err := w.syncErr()
	var md *repl.MassDeleteError
	if !errors.As(err, &md) || !errors.Is(err, repl.ErrMassDelete) {
		t.Fatalf("Sync deleting 15 of 20 = %v, want a MassDeleteError", err)
	}
	if md.Side != "device" || md.Deletes != 15 || md.Items != 20 {
		t.Errorf("MassDeleteError = %+v, want device 15 of 20", md)
	}
	if !strings.Contains(err.Error(), "15 of the 20 items on the device side, more than half of them") {
		t.Errorf("message %q does not say how many, where, and the rule", err)
	}
	wantFiles(t, "device after the guard stopped the sync", w.b, before)
	w.cfg.AllowMassDelete = true
	w.sync()
	wantSame(t, w.a, w.b)
	if len(w.b.Files()) != 6 {
		t.Errorf("device has %d files after the allowed sync, want 6", len(w.b.Files()))
	}
}

// TestMassDeleteGuardEdges: the guard stops a sync that would delete more than the threshold of
// one side's items, at any count (the rule README states); exactly the threshold goes through.
func TestMassDeleteGuardEdges(t *testing.T) {
	for _, tc := range []struct {
		items, deletes int
		threshold      float64
		fromDevice     bool
		stops          bool
	}{
		{items: 1, deletes: 1, stops: true}, // emptying a side of one file
		{items: 2, deletes: 1, stops: false},
		{items: 2, deletes: 2, stops: true},
		{items: 3, deletes: 2, stops: true, fromDevice: true},
		{items: 9, deletes: 4, stops: false},
		{items: 9, deletes: 5, stops: true}, // went through when small sides were not guarded
		{items: 10, deletes: 5, stops: false},
		{items: 10, deletes: 6, stops: true, fromDevice: true},
		{items: 40, deletes: 20, stops: false},
		{items: 40, deletes: 21, stops: true},
		{items: 4, deletes: 1, threshold: 0.25, stops: false},
		{items: 4, deletes: 2, threshold: 0.25, stops: true},
		{items: 5, deletes: 5, threshold: 1, stops: false}, // 100%: never asks
		{items: 5, deletes: 5, threshold: -1, stops: false},
	} {
		name := fmt.Sprintf("%d of %d, threshold %v, from the device %v", tc.deletes, tc.items, tc.threshold, tc.fromDevice)
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.cfg.MassDeleteThreshold = tc.threshold
			for i := 0; i < tc.items; i++ {
				w.put(w.a, fmt.Sprintf("f%02d", i), "x")
			}
			w.sync()
			from, to, side := w.a, w.b, "device"
			if tc.fromDevice {
				from, to, side = w.b, w.a, "desktop"
			}
			for i := 0; i < tc.deletes; i++ {
				w.remove(from, fmt.Sprintf("f%02d", i))
			}
			before := to.Files()
			_, err := w.syncErr()
			var md *repl.MassDeleteError
			switch {
			case tc.stops && !errors.As(err, &md):
				t.Fatalf("Sync = %v, want a MassDeleteError", err)
			case tc.stops && (md.Side != side || md.Deletes != tc.deletes || md.Items != tc.items):
				t.Errorf("MassDeleteError = %+v, want %d of %d on the %s", md, tc.deletes, tc.items, side)
			case tc.stops:
				wantFiles(t, "after the guard stopped the sync", to, before)
			case err != nil:
				t.Fatalf("Sync = %v, want it to go through", err)
			default:
				wantSame(t, w.a, w.b)
			}
		})
	}
	// A folder deleted with what it holds counts every item: 1 folder and 3 files of 6 items.
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	for _, n := range []string{"album/1.jpg", "album/2.jpg", "album/3.jpg", "a.txt", "b.txt"} {
		w.put(w.a, n, "x")
	}
	w.sync()
	w.remove(w.a, "album")
	var md *repl.MassDeleteError
	if _, err := w.syncErr(); !errors.As(err, &md) || md.Deletes != 4 || md.Items != 6 {
		t.Errorf("deleting a folder of 3 of 6 items: Sync = %v, want 4 of 6 deletes stopped", err)
	}
}

func TestForecastChangesNothing(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "keep.txt", "k")
	w.put(w.a, "edit.txt", "e1")
	w.put(w.a, "gone.txt", "g")
	w.put(w.a, "clash.txt", "c1")
	w.sync()
	w.put(w.a, "edit.txt", "e2")
	w.remove(w.b, "gone.txt")
	w.put(w.b, "new.txt", "n")
	w.put(w.a, "clash.txt", "c-desktop")
	w.put(w.b, "clash.txt", "c-device")
	wa, wb := w.a.Count(memstore.OpWrite)+w.a.Count(memstore.OpDelete), w.b.Count(memstore.OpWrite)+w.b.Count(memstore.OpDelete)
	a, b := w.sides()
	fc, err := w.hf.Forecast(context.Background(), a, b, w.cfg)
	if err != nil {
		t.Fatalf("Forecast: %v", err)
	}
	got := map[string]repl.Action{}
	for _, pa := range fc.Actions {
		got[pa.To+":"+pa.Name] = pa.Action
	}
	want := map[string]repl.Action{
		"device:edit.txt":   repl.ActUpdate,
		"desktop:gone.txt":  repl.ActDelete,
		"desktop:new.txt":   repl.ActCreate,
		"desktop:clash.txt": repl.ActConflict, // once, met in the first pass (device to desktop)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("forecast for %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("forecast lists %v, want %v", got, want)
	}
	if w.a.Count(memstore.OpWrite)+w.a.Count(memstore.OpDelete) != wa || w.b.Count(memstore.OpWrite)+w.b.Count(memstore.OpDelete) != wb {
		t.Errorf("Forecast wrote to a store")
	}
	if fc.Bytes != int64(len("e2")+len("n")) {
		t.Errorf("forecast bytes = %d", fc.Bytes)
	}
	if entries, _ := os.ReadDir(filepath.Dir(w.path)); len(entries) != 1 {
		t.Errorf("the forecast left files beside the handle file: %v", entries)
	}
}

func TestProgressReports(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	total := int64(0)
	for i := 0; i < 50; i++ {
		c := strings.Repeat("x", 100+i)
		total += int64(len(c))
		w.put(w.a, fmt.Sprintf("f%02d", i), c)
	}
	var calls []repl.Progress
	w.cfg.Progress = func(p repl.Progress) { calls = append(calls, p) }
	w.cfg.ProgressInterval = time.Hour // only the forced reports
	w.sync()
	if len(calls) == 0 || len(calls) > 4 {
		t.Fatalf("progress called %d times with a 1h interval, want a few forced calls", len(calls))
	}
	last := calls[len(calls)-1]
	if last.Phase != repl.PhaseDone || last.ItemsDone != last.ItemsTotal || last.ItemsTotal != 50 || last.BytesDone != total || last.BytesTotal != total {
		t.Errorf("last progress = %+v, want done with 50/50 items and %d/%d bytes", last, total, total)
	}
	calls = nil
	w.cfg.ProgressInterval = time.Nanosecond
	for i := 0; i < 50; i++ {
		w.put(w.b, fmt.Sprintf("f%02d", i), "edited")
	}
	w.sync()
	if len(calls) < 50 {
		t.Errorf("progress called %d times for 50 items with a 1ns interval", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].ItemsDone < calls[i-1].ItemsDone || calls[i].BytesDone < calls[i-1].BytesDone {
			t.Errorf("progress went backwards: %+v then %+v", calls[i-1], calls[i])
		}
	}
}

func TestBareStores(t *testing.T) {
	// Without Stater, Hasher or Notifier the engine falls back to full passes and byte comparison.
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.sa, w.sb = memstore.Bare(w.a), memstore.Bare(w.b)
	w.put(w.a, "x", "1")
	w.put(w.b, "x", "1")
	w.put(w.b, "y", "2")
	w.sync()
	wantSame(t, w.a, w.b)
	w.put(w.a, "x", "edit")
	// The user edits y on the desktop between detection and the write: ErrChanged, then a full
	// re-detection finds the concurrent change.
	w.put(w.b, "y", "device edit")
	w.a.SetFault(func(op memstore.Op, h string) error {
		if op == memstore.OpWrite && h == "y" {
			w.a.SetFault(nil)
			_ = w.a.Put("y", []byte("desktop edit at the last moment"), w.now())
		}
		return nil
	})
	w.sync()
	if got, _ := w.a.Get("y"); string(got) != "desktop edit at the last moment" {
		t.Errorf("the user's last-moment edit was overwritten: %q", got)
	}
	if n := len(w.conflicts()); n != 1 {
		t.Errorf("%d conflicts, want 1 (y edited on both sides)", n)
	}
	wantFiles(t, "device", w.b, map[string]string{"x": "edit", "y": "device edit"})
}

func TestResolveAtOnce(t *testing.T) {
	for _, keep := range []string{"desktop", "device", repl.ResolveBoth} {
		t.Run(keep, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.put(w.a, "doc.txt", "v1")
			w.sync()
			w.put(w.b, "doc.txt", "device (older)")
			w.put(w.a, "doc.txt", "desktop (newer)")
			w.sync()
			confs := w.conflicts()
			if len(confs) != 1 {
				t.Fatalf("conflicts = %+v", confs)
			}
			a, b := w.sides()
			if err := w.hf.Resolve(context.Background(), confs[0].ID, keep, a, b); err != nil {
				t.Fatalf("Resolve with both stores: %v", err)
			}
			// Done at once: both stores agree before any further session.
			wantSame(t, w.a, w.b)
			want := map[string]string{"doc.txt": "desktop (newer)"}
			switch keep {
			case "device":
				want = map[string]string{"doc.txt": "device (older)"}
			case repl.ResolveBoth:
				want["doc (conflict "+time.Now().Format("2006-01-02")+" device).txt"] = "device (older)"
			}
			wantFiles(t, "desktop", w.a, want)
			if rep := w.sync(); counts(rep, "desktop").Total()+counts(rep, "device").Total() != 0 {
				t.Errorf("the session after an immediate resolution still changed items: %+v %+v", counts(rep, "desktop"), counts(rep, "device"))
			}
		})
	}
}

func TestRenameAndEditMerge(t *testing.T) {
	for _, renamer := range []string{"desktop", "device"} {
		t.Run("renamed on "+renamer, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.put(w.a, "draft.txt", "first draft")
			w.sync()
			ren, ed := w.a, w.b
			if renamer == "device" {
				ren, ed = w.b, w.a
			}
			if err := ren.Rename("draft.txt", "final/report.txt"); err != nil {
				t.Fatal(err)
			}
			w.put(ed, "draft.txt", "second draft, edited")
			rep := w.sync()
			want := map[string]string{"final/report.txt": "second draft, edited"}
			wantFiles(t, "desktop", w.a, want)
			wantFiles(t, "device", w.b, want)
			if len(rep.Conflicts)+len(rep.Decisions) != 0 {
				t.Errorf("a rename and an edit should merge without a conflict: %+v %+v", rep.Conflicts, rep.Decisions)
			}
		})
	}
}

func TestOneWaySessions(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.cfg.Direction = repl.AToB
	w.put(w.a, "from-desktop.txt", "d")
	w.put(w.b, "from-device.txt", "v")
	w.sync()
	wantFiles(t, "desktop after a to-device session", w.a, map[string]string{"from-desktop.txt": "d"})
	wantFiles(t, "device after a to-device session", w.b, map[string]string{"from-desktop.txt": "d", "from-device.txt": "v"})
	w.cfg.Direction = repl.BToA
	w.sync()
	wantSame(t, w.a, w.b)
}

// TestNameClash: two different items, both known to both sides, want the same name.
func TestNameClash(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "one.txt", "first item")
	w.put(w.a, "two.txt", "second item")
	w.sync()
	// The desktop moves one.txt to shared.txt while the device moves two.txt there.
	if err := w.a.Rename("one.txt", "shared.txt"); err != nil {
		t.Fatal(err)
	}
	if err := w.b.Rename("two.txt", "shared.txt"); err != nil {
		t.Fatal(err)
	}
	w.sync()
	fa := w.a.Files()
	if len(fa) != 2 {
		t.Fatalf("desktop holds %s, want both items (one of them under a conflict name)", show(fa))
	}
	contents := map[string]bool{}
	for _, c := range fa {
		contents[c] = true
	}
	if !contents["first item"] || !contents["second item"] {
		t.Errorf("an item was lost in a name clash: %s", show(fa))
	}
	wantSame(t, w.a, w.b)
}

func TestForecastReportsMassDelete(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	for i := 0; i < 12; i++ {
		w.put(w.a, fmt.Sprintf("f%02d", i), "x")
	}
	w.sync()
	for i := 0; i < 10; i++ {
		w.remove(w.b, fmt.Sprintf("f%02d", i))
	}
	a, b := w.sides()
	fc, err := w.hf.Forecast(context.Background(), a, b, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fc.MassDelete == nil || fc.MassDelete.Side != "desktop" || fc.MassDelete.Deletes != 10 {
		t.Errorf("Forecast.MassDelete = %+v, want 10 deletes on the desktop", fc.MassDelete)
	}
	if n := fc.Counts["desktop"][repl.ActDelete]; n != 10 {
		t.Errorf("forecast counts %d deletes, want 10", n)
	}
}

func TestChangeSetShutdown(t *testing.T) {
	cs := repl.NewChangeSet()
	if !cs.Pending() {
		t.Error("a new ChangeSet does not ask for a first full pass")
	}
	cs.Notify(repl.Notification{Kind: repl.Shutdown})
	if !errors.Is(cs.Gone(), repl.ErrGone) {
		t.Errorf("Gone after a Shutdown without an error = %v, want ErrGone", cs.Gone())
	}
}
