package repl_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// Content identity: the stamp says whether to look, the content says what changed. Each test here
// is a history that lost an edit, or left the two sides different with nothing pending, while the
// engine decided from stamps alone.

// storeClock is the clock of both stores of a test: the times they give items and report as now.
type storeClock struct{ t time.Time }

func (c *storeClock) now() time.Time { return c.t }

// newClockedWorld is a world whose stores share clock c; the device keeps times to granularity g
// (MTP: a second).
func newClockedWorld(t *testing.T, c *storeClock, g time.Duration) *world {
	return newWorld(t, memstore.Options{Now: c.now}, memstore.Options{Now: c.now, TimeGranularity: g})
}

// A device file rewritten with other content of the same size, in the second its recorded time
// falls in, keeps its stamp: only its content shows the edit. It used to stay unseen, and a later
// edit on the computer wrote over it.
func TestSameSecondSameSizeEditIsSeen(t *testing.T) {
	for _, g := range []time.Duration{time.Second, 2 * time.Second} {
		t.Run(g.String(), func(t *testing.T) {
			c := &storeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 100e6, time.UTC)}
			w := newClockedWorld(t, c, g)
			if err := w.b.Put("notes.txt", []byte("first version"), c.t); err != nil {
				t.Fatal(err)
			}
			w.sync()
			wantSame(t, w.a, w.b)
			// The phone saves again within the same tick of its clock: same size, same time.
			c.t = c.t.Add(300 * time.Millisecond)
			if err := w.b.Put("notes.txt", []byte("secnd version"), c.t); err != nil {
				t.Fatal(err)
			}
			w.sync()
			wantFiles(t, "desktop", w.a, map[string]string{"notes.txt": "secnd version"})
			wantSame(t, w.a, w.b)
			// A later edit on the computer is an edit of what the phone wrote: no loss, no
			// conflict.
			c.t = c.t.Add(time.Hour)
			if err := w.a.Put("notes.txt", []byte("third, on the computer"), c.t); err != nil {
				t.Fatal(err)
			}
			rep := w.sync()
			if len(rep.Conflicts) != 0 || len(rep.Decisions) != 0 {
				t.Errorf("an edit of the synced content made conflicts %v, decisions %v", rep.Conflicts, rep.Decisions)
			}
			wantSame(t, w.a, w.b)
		})
	}
}

// A device that keeps no modification times shows a same-size edit only by its content.
func TestSameSizeEditOnStoreWithoutTimes(t *testing.T) {
	c := &storeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	w := newWorld(t, memstore.Options{Now: c.now}, memstore.Options{Now: c.now, NoTimes: true})
	w.put(w.a, "a.txt", "AAAA")
	w.sync()
	wantSame(t, w.a, w.b)
	c.t = c.t.Add(time.Hour)
	if err := w.b.Put("a.txt", []byte("BBBB"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	w.sync()
	wantFiles(t, "desktop", w.a, map[string]string{"a.txt": "BBBB"})
	wantSame(t, w.a, w.b)
}

// A touch (a new modification time over the same content) is no edit: the phone's concurrent
// edit goes through under every policy, with no conflict and nothing dropped.
func TestTouchIsNoEdit(t *testing.T) {
	for _, pol := range []repl.Policy{{Rule: repl.Ask}, {Rule: repl.Newest}, {Rule: repl.Wins, Winner: "desktop"}, {Rule: repl.KeepBoth}} {
		t.Run(pol.Rule.String(), func(t *testing.T) {
			c := &storeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
			w := newClockedWorld(t, c, time.Second)
			w.cfg.Policy = pol
			if err := w.a.Put("report.txt", []byte("draft"), c.t); err != nil {
				t.Fatal(err)
			}
			w.sync()
			c.t = c.t.Add(time.Hour)
			if err := w.b.Put("report.txt", []byte("edited on the phone"), c.t); err != nil {
				t.Fatal(err)
			}
			c.t = c.t.Add(time.Minute)
			if err := w.a.Touch("report.txt", c.t); err != nil {
				t.Fatal(err)
			}
			rep := w.sync()
			if len(rep.Conflicts) != 0 || len(rep.Decisions) != 0 {
				t.Errorf("a touch against an edit made conflicts %+v, decisions %+v", rep.Conflicts, rep.Decisions)
			}
			wantFiles(t, "desktop", w.a, map[string]string{"report.txt": "edited on the phone"})
			wantSame(t, w.a, w.b)
		})
	}
}

// A deleted file and an unrelated new one of the same size and time are no rename: the new file's
// content stays, and the phone's edit of the deleted one beats the delete.
func TestUnrelatedFileOfSameSizeAndTimeIsNoRename(t *testing.T) {
	c := &storeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	w := newClockedWorld(t, c, time.Second)
	mt := c.t.Add(-time.Hour)
	if err := w.a.Put("old.txt", []byte("old content"), mt); err != nil {
		t.Fatal(err)
	}
	w.sync()
	c.t = c.t.Add(time.Hour)
	w.remove(w.a, "old.txt")
	if err := w.a.Put("other.txt", []byte("new thing!!"), mt); err != nil { // same size, same time
		t.Fatal(err)
	}
	if err := w.b.Put("old.txt", []byte("phone's edit of old"), c.t); err != nil {
		t.Fatal(err)
	}
	w.sync()
	want := map[string]string{"other.txt": "new thing!!", "old.txt": "phone's edit of old"}
	wantFiles(t, "desktop", w.a, want)
	wantSame(t, w.a, w.b)
}

// A renamed file is still found to be one (its content proves it), so an edit on the other side
// follows it to its new name.
func TestRenameProvedByContentCarriesEdit(t *testing.T) {
	c := &storeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	w := newClockedWorld(t, c, time.Second)
	if err := w.a.Put("a.txt", []byte("some content"), c.t.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.sync()
	c.t = c.t.Add(time.Hour)
	if err := w.a.Rename("a.txt", "b.txt"); err != nil {
		t.Fatal(err)
	}
	if err := w.a.Touch("b.txt", c.t); err != nil { // some tools change the time too
		t.Fatal(err)
	}
	if err := w.b.Put("a.txt", []byte("edited on the phone"), c.t); err != nil {
		t.Fatal(err)
	}
	w.sync()
	wantFiles(t, "desktop", w.a, map[string]string{"b.txt": "edited on the phone"})
	wantSame(t, w.a, w.b)
}

// Two unrelated new files with one name, made on both sides between two syncs, are a collision:
// both are kept under every policy, the policy only says which keeps the name.
func TestSameNameNewFilesKeepBoth(t *testing.T) {
	for _, pol := range []repl.Policy{{Rule: repl.Newest}, {Rule: repl.Wins, Winner: "desktop"}, {Rule: repl.Wins, Winner: "device"}, {Rule: repl.KeepBoth}} {
		name := pol.Rule.String() + pol.Winner
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.cfg.Policy = pol
			w.put(w.a, "x.txt", "seed")
			w.sync()
			w.put(w.a, "plan.txt", "the computer's plan")
			w.put(w.b, "plan.txt", "the phone's plan, unrelated")
			w.sync()
			wantSame(t, w.a, w.b)
			var gotA, gotB bool
			for n, content := range w.a.Files() {
				switch content {
				case "the computer's plan":
					gotA = true
				case "the phone's plan, unrelated":
					gotB = true
				}
				if n != "plan.txt" && n != "x.txt" && !strings.Contains(n, "(conflict ") {
					t.Errorf("unexpected name %q", n)
				}
			}
			if !gotA || !gotB {
				t.Errorf("a content was lost: %s", show(w.a.Files()))
			}
		})
	}
}

// A source saved again while it is copied is not written over the destination as what detection
// saw: that item waits for the next session, which copies the new content.
func TestSourceChangedDuringCopyWaits(t *testing.T) {
	c := &storeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	w := newClockedWorld(t, c, time.Second)
	if err := w.a.Put("doc.txt", []byte("version one"), c.t.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	saved := false
	w.a.SetFault(func(op memstore.Op, h string) error {
		if op == memstore.OpOpen && h == "doc.txt" && !saved {
			saved = true
			if err := w.a.Put("doc.txt", []byte("version two"), c.t); err != nil { // the same size
				t.Error(err)
			}
		}
		return nil
	})
	rep, err := w.syncErr()
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	w.a.SetFault(nil)
	if rep.Complete || len(rep.Skipped) != 1 {
		t.Errorf("a copy of a source that changed meanwhile: complete %v, skipped %v; want it skipped", rep.Complete, rep.Skipped)
	}
	if got, ok := w.b.Get("doc.txt"); ok {
		t.Errorf("the device got %q for a version it was never given", got)
	}
	w.sync()
	wantFiles(t, "device", w.b, map[string]string{"doc.txt": "version two"})
}

// A rename written over an interrupted session leaves the new name written and the old one still
// there (the desktop store writes the new name, then removes the old). The next session finishes
// the rename: no "(conflict ...)" copy for content that is the same, and no duplicate.
func TestInterruptedRenameIsFinished(t *testing.T) {
	for _, crashed := range []string{"device", "desktop"} {
		t.Run(crashed, func(t *testing.T) {
			c := &storeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
			w := newClockedWorld(t, c, time.Second)
			mt := c.t.Add(-time.Hour)
			if err := w.a.Put("a.txt", []byte("the content"), mt); err != nil {
				t.Fatal(err)
			}
			w.sync()
			c.t = c.t.Add(time.Hour)
			renamer, crash := w.a, w.b
			if crashed == "desktop" {
				renamer, crash = w.b, w.a
			}
			if err := renamer.Rename("a.txt", "b.txt"); err != nil {
				t.Fatal(err)
			}
			// What the interrupted write left on the other side: the new name, the old one too.
			if err := crash.Put("b.txt", []byte("the content"), mt); err != nil {
				t.Fatal(err)
			}
			rep := w.sync()
			if len(rep.Decisions) != 0 || len(rep.Conflicts) != 0 {
				t.Errorf("finishing a rename made decisions %+v, conflicts %+v", rep.Decisions, rep.Conflicts)
			}
			want := map[string]string{"b.txt": "the content"}
			wantFiles(t, "desktop", w.a, want)
			wantFiles(t, "device", w.b, want)
			if rep := w.sync(); !quietReport(rep) {
				t.Errorf("the session after did something: %+v", rep)
			}
		})
	}
}

// quietReport tells whether a session found nothing to do.
func quietReport(rep *repl.Report) bool {
	for _, c := range rep.Applied {
		if c.Total() > 0 {
			return false
		}
	}
	return rep.Complete && len(rep.Decisions) == 0 && len(rep.Conflicts) == 0
}

// An upload cut off on a device that cannot rename and keeps two-second times (a FAT card) is
// Cradle's own partial write, though its time is the announced one rounded: the next session
// removes it, and it never goes over the computer's file as the device's "edit".
func TestPartialUploadOnTwoSecondStoreIsOurs(t *testing.T) {
	c := &storeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	w := newWorld(t, memstore.Options{Now: c.now}, memstore.Options{Now: c.now, TimeGranularity: 2 * time.Second, NonAtomic: true})
	w.cfg.Policy = repl.Policy{Rule: repl.Wins, Winner: "device"}
	big := func(b byte) []byte { return []byte(strings.Repeat(string(b), 100<<10)) }
	if err := w.a.Put("big.bin", big('a'), c.t.Add(-time.Hour-time.Second)); err != nil {
		t.Fatal(err)
	}
	w.sync()
	// The computer's file is edited (an odd second), and the upload is cut off after 32 kB.
	c.t = c.t.Add(time.Hour)
	if err := w.a.Put("big.bin", big('b'), c.t.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	failOn(w.b, memstore.OpWriteData, 1, errUnplugged)
	if _, err := w.syncErr(); !isGone(err) {
		t.Fatalf("Sync with the device pulled out: %v, want it gone", err)
	}
	w.b.FailAfter(-1, nil)
	if got, _ := w.b.Get("big.bin"); len(got) == 0 || len(got) >= 100<<10 {
		t.Fatalf("the device holds %d bytes, want a piece of the upload", len(got))
	}
	// The computer's file changes again before the device comes back.
	c.t = c.t.Add(time.Hour)
	if err := w.a.Put("big.bin", big('c'), c.t); err != nil {
		t.Fatal(err)
	}
	w.sync()
	wantFiles(t, "desktop", w.a, map[string]string{"big.bin": string(big('c'))})
	wantSame(t, w.a, w.b)
}

// Under Ask too, a collision keeps both at once: nothing is overwritten, so there is nothing to
// ask; the newer keeps the name, and an edit of either later follows it.
func TestCollisionUnderAskKeepsBoth(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "x.txt", "seed")
	w.sync()
	w.put(w.a, "plan.txt", "the computer's plan")
	w.put(w.b, "plan.txt", "the phone's plan, unrelated")
	rep := w.sync()
	if len(w.conflicts()) != 0 || len(rep.Decisions) != 1 || rep.Decisions[0].Reason != "two different items with one name" {
		t.Fatalf("conflicts %+v, decisions %+v; want one collision decision", w.conflicts(), rep.Decisions)
	}
	wantSame(t, w.a, w.b)
	if got, _ := w.a.Get("plan.txt"); string(got) != "the phone's plan, unrelated" {
		t.Errorf("plan.txt = %q, want the newer, the phone's", got)
	}
	copyName := rep.Decisions[0].Copy
	if got, _ := w.b.Get(copyName); string(got) != "the computer's plan" {
		t.Errorf("%s on the phone = %q, want the computer's plan", copyName, got)
	}
	// The computer's plan, beside, is still the same item: an edit of it on the phone reaches
	// the computer under its new name.
	w.put(w.b, copyName, "the computer's plan, edited on the phone")
	w.sync()
	if got, _ := w.a.Get(copyName); string(got) != "the computer's plan, edited on the phone" {
		t.Errorf("%s on the computer = %q after the phone's edit", copyName, got)
	}
	wantSame(t, w.a, w.b)
}
