package repl_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// TestInterruptedSessionResumes stops a session at every point in turn (the device unplugged
// after n writes) and checks that the next session finishes the job without sending again what
// was already applied.
func TestInterruptedSessionResumes(t *testing.T) {
	const items = 25
	for _, n := range []int{0, 1, 7, 13, 24} {
		t.Run(fmt.Sprintf("after %d writes", n), func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.cfg.BatchSize = 4
			for i := 0; i < items; i++ {
				w.put(w.a, fmt.Sprintf("f%02d.txt", i), fmt.Sprint("content ", i))
			}
			failOn(w.b, memstore.OpWrite, n, errUnplugged)
			rep, err := w.syncErr()
			if !isGone(err) {
				t.Fatalf("Sync with the device unplugged = %v, want ErrGone", err)
			}
			if !strings.Contains(err.Error(), "f") || !strings.Contains(err.Error(), "device") {
				t.Errorf("error %q names neither the item nor the side", err)
			}
			if rep.Complete {
				t.Errorf("an interrupted session reports Complete")
			}
			if got := len(w.b.Files()); got != n {
				t.Errorf("device holds %d files after %d writes succeeded", got, n)
			}
			w.b.FailAfter(-1, nil)
			before := w.b.Count(memstore.OpWrite)
			rep = w.sync()
			if !rep.Complete {
				t.Errorf("the resumed session is not complete: %+v", rep)
			}
			if writes := w.b.Count(memstore.OpWrite) - before; writes != items-n {
				t.Errorf("the resumed session wrote %d items, want the %d missing ones", writes, items-n)
			}
			wantSame(t, w.a, w.b)
		})
	}
}

func TestCancelledSessionIsConsistent(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	for i := 0; i < 30; i++ {
		w.put(w.a, fmt.Sprintf("f%02d", i), strings.Repeat("x", 1000))
	}
	ctx, cancel := context.WithCancel(context.Background())
	writes := 0
	w.b.SetFault(func(op memstore.Op, _ string) error {
		if op == memstore.OpWriteData {
			if writes++; writes == 10 {
				cancel()
			}
		}
		return nil
	})
	a, b := w.sides()
	_, err := w.hf.Sync(ctx, a, b, w.cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Sync = %v, want context.Canceled", err)
	}
	w.b.SetFault(nil)
	// Every file on the device is whole (the store is atomic) and the next session completes.
	for name, c := range w.b.Files() {
		if len(c) != 1000 {
			t.Errorf("device has a partial %q (%d bytes)", name, len(c))
		}
	}
	w.sync()
	wantSame(t, w.a, w.b)
}

func TestStoreErrorsStopWithClearMessages(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"disk full", fmt.Errorf("write: %w", repl.ErrNoSpace), repl.ErrNoSpace},
		{"device gone", errUnplugged, repl.ErrGone},
		{"read-only", repl.ErrReadOnly, repl.ErrReadOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.put(w.a, "big/movie.mkv", "frames")
			failOn(w.b, memstore.OpWrite, 1, tc.err) // the folder goes, the file does not
			_, err := w.syncErr()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Sync = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), "big/movie.mkv") {
				t.Errorf("error %q does not name the item", err)
			}
			if _, b := w.sides(); repl.ErrorSide(err) != b.Name {
				t.Errorf("ErrorSide(%v) = %q, want %q: the caller must tell which replica failed", err, repl.ErrorSide(err), b.Name)
			}
		})
	}
	// Other errors skip the item, report it, and the next session retries it.
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "a.txt", "a")
	w.put(w.a, "b.txt", "b")
	w.b.SetFault(func(op memstore.Op, h string) error {
		if op == memstore.OpWrite && h == "a.txt" {
			return repl.ErrPermission
		}
		return nil
	})
	rep, err := w.syncErr()
	if err != nil {
		t.Fatalf("Sync with one unwritable item = %v, want the others synced", err)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Name != "a.txt" || !errors.Is(rep.Skipped[0].Err, repl.ErrPermission) || rep.Complete {
		t.Errorf("report = %+v, want a.txt skipped with ErrPermission and not complete", rep)
	}
	wantFiles(t, "device", w.b, map[string]string{"b.txt": "b"})
	w.b.SetFault(nil)
	w.sync()
	wantSame(t, w.a, w.b)
}

// TestSkippedItemReportedOnce: an item of the first direction that cannot be written is tried
// again by that direction's last pass, and is still one skipped item, not one per try ("66 items
// could not be synced" for 33).
func TestSkippedItemReportedOnce(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.b, "a.txt", "a")
	w.put(w.b, "b.txt", "b")
	w.a.SetFault(func(op memstore.Op, h string) error {
		if op == memstore.OpWrite && h == "a.txt" {
			return repl.ErrPermission
		}
		return nil
	})
	rep, err := w.syncErr()
	if err != nil {
		t.Fatalf("Sync with one unwritable item = %v, want the others synced", err)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Name != "a.txt" || rep.Complete {
		t.Errorf("Skipped = %+v, want a.txt once", rep.Skipped)
	}
}

func TestSourceChangesDuringSync(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "grows.log", "short")
	w.put(w.a, "vanishes.txt", "v")
	// Between detection and sending, the desktop file grows and another disappears.
	w.a.SetFault(func(op memstore.Op, h string) error {
		if op == memstore.OpOpen && h == "grows.log" {
			w.a.SetFault(nil)
			_ = w.a.Put("grows.log", []byte("short, and then much longer"), w.now())
			_ = w.a.Remove("vanishes.txt")
		}
		return nil
	})
	rep, err := w.syncErr()
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if rep.Complete {
		t.Errorf("a session whose source changed under it reports Complete")
	}
	for name, c := range w.b.Files() {
		if name == "grows.log" && c != "short, and then much longer" {
			t.Errorf("device got a mix of versions of grows.log: %q", c)
		}
	}
	w.sync()
	wantFiles(t, "device", w.b, map[string]string{"grows.log": "short, and then much longer"})
}

func TestHandleFileInUse(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	start := time.Now()
	_, err := repl.Open(w.path, repl.Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, repl.ErrInUse) {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("second Open took %v", time.Since(start))
	}
	if !strings.Contains(err.Error(), w.path) || !strings.Contains(err.Error(), "another Cradle") {
		t.Errorf("message %q should name the file and say another Cradle has it", err)
	}
}

// TestCorruptHandleFileRebuild damages the handle file in different ways; each time Open (or the
// next session) reports a CorruptError naming the file, and after MoveAside a fresh file rebuilds
// from both stores without duplicates or loss.
func TestCorruptHandleFileRebuild(t *testing.T) {
	damages := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"cut to 20 KiB", func(t *testing.T, path string) {
			// What a disk that filled or a copy that stopped leaves: bbolt would read the pages
			// its header points to past the end of the file (a fault, not an error).
			if err := os.Truncate(path, 20<<10); err != nil {
				t.Fatal(err)
			}
		}},
		{"meta pages zeroed", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			const files = 400
			for i := 0; i < files; i++ {
				w.put(w.a, fmt.Sprintf("dir/f%02d.txt", i), fmt.Sprint("file ", i))
			}
			w.sync()
			// Changes made while the metadata is lost: both sides edit, one deletes.
			w.put(w.a, "dir/f01.txt", "desktop edit")
			w.put(w.b, "dir/f02.txt", "device edit")
			w.put(w.b, "dir/new-on-device.txt", "new")
			w.hf.Close()
			d.damage(t, w.path)
			hf, err := repl.Open(w.path, repl.Options{})
			if d.name != "deleted" {
				var ce *repl.CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, repl.ErrCorrupt) {
					t.Fatalf("Open of a damaged file = %v, want a CorruptError", err)
				}
				if !strings.Contains(err.Error(), w.path) || !strings.Contains(err.Error(), "rebuilt") {
					t.Errorf("message %q should name the file and say it will be rebuilt", err)
				}
				if strings.HasPrefix(d.name, "cut") && !strings.Contains(err.Error(), "cut short") {
					t.Errorf("message %q should say the file was cut short (found before bbolt reads past its end)", err)
				}
				aside, err := repl.MoveAside(w.path)
				if err != nil {
					t.Fatalf("MoveAside: %v", err)
				}
				if _, err := os.Stat(aside); err != nil || !strings.Contains(aside, ".corrupt-") {
					t.Errorf("MoveAside kept %q: %v", aside, err)
				}
				if hf, err = repl.Open(w.path, repl.Options{}); err != nil {
					t.Fatalf("Open after MoveAside: %v", err)
				}
			} else if err != nil {
				t.Fatalf("Open of a missing file: %v", err)
			}
			w.hf = hf
			t.Cleanup(func() { hf.Close() })
			rep := w.sync()
			// No loss, and no duplicates of what is the same on both sides: the two items edited
			// while the metadata was lost have no history to tell which content is the newer
			// one's, so each is a collision and both contents are kept (the newer under the
			// name); everything else is joined without copying.
			if got := len(w.a.Files()); got != files+3 {
				t.Errorf("desktop holds %d files after the rebuild, want %d: %v", got, files+3, sortedNames(w.a.Files()))
			}
			wantSame(t, w.a, w.b)
			if n := len(w.conflicts()); n != 0 {
				t.Errorf("rebuild left %d conflicts, want none (collisions keep both)", n)
			}
			have := map[string]bool{}
			for _, c := range w.a.Files() {
				have[c] = true
			}
			for _, c := range []string{"desktop edit", "device edit", "file 1", "file 2", "new"} {
				if !have[c] {
					t.Errorf("%q was lost in the rebuild", c)
				}
			}
			if got, _ := w.a.Get("dir/f01.txt"); string(got) != "desktop edit" {
				t.Errorf("dir/f01.txt = %q, want the newer, the desktop's edit", got)
			}
			if got, _ := w.b.Get("dir/f02.txt"); string(got) != "device edit" {
				t.Errorf("dir/f02.txt = %q, want the newer, the device's edit", got)
			}
			if rep.Bytes > 200 {
				t.Errorf("rebuild copied %d bytes, want only the new file and the two collisions' contents", rep.Bytes)
			}
		})
	}
}

// TestCorruptRecordIsReported damages one record inside a valid bbolt file.
func TestCorruptRecordIsReported(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "x.txt", "x")
	w.sync()
	if err := repl.DamageRecord(w.hf, "desktop", "x.txt"); err != nil {
		t.Fatal(err)
	}
	w.put(w.a, "x.txt", "edited")
	_, err := w.syncErr()
	var ce *repl.CorruptError
	if !errors.As(err, &ce) || ce.Path != w.path {
		t.Fatalf("Sync over a damaged record = %v, want a CorruptError for %s", err, w.path)
	}
}

func TestNonAtomicStoreRecoversPartialWrites(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{NonAtomic: true})
	big := strings.Repeat("0123456789", 20000) // 200 kB: several chunks
	w.put(w.a, "keep.txt", "kept")
	w.put(w.a, "video.mp4", "old version")
	w.sync()
	w.put(w.a, "video.mp4", big)
	w.put(w.a, "new.bin", big)
	// The device goes away in the middle of the second chunk of the first big write.
	chunks := 0
	w.b.SetFault(func(op memstore.Op, _ string) error {
		if op == memstore.OpWriteData {
			if chunks++; chunks == 2 {
				return errUnplugged
			}
		}
		return nil
	})
	if _, err := w.syncErr(); !isGone(err) {
		t.Fatalf("Sync = %v, want ErrGone", err)
	}
	partial := 0
	for _, c := range w.b.Files() {
		if len(c) > 0 && len(c) < len(big) && strings.HasPrefix(big, c) {
			partial++
		}
	}
	if partial != 1 {
		t.Fatalf("the interrupted non-atomic write left %d partial items, want 1 (the test relies on it): %v", partial, sortedNames(w.b.Files()))
	}
	w.b.SetFault(nil)
	rep := w.sync()
	want := map[string]string{"keep.txt": "kept", "video.mp4": big, "new.bin": big}
	wantFiles(t, "device", w.b, want)
	wantFiles(t, "desktop", w.a, want)
	if len(w.conflicts()) != 0 || len(rep.Decisions) != 0 {
		t.Errorf("cleaning up a partial write made conflicts %+v / decisions %+v", w.conflicts(), rep.Decisions)
	}
	for _, d := range rep.Detected {
		if d.Side == "device" && d.Changes() != 0 {
			t.Errorf("the partial item was detected as a user's change: %+v", d)
		}
	}
}

// Found by TestPropertyIntentTwoReplicas: a sync to a device that cannot rename stops before it
// writes d/x; before the next sync the computer's d/x is edited and the user saves a d/x of the
// same size on the device within the same second. The file matched the interrupted write's
// size and time, and the source could not vouch for it (it had changed), so the next sync
// removed it as a half-written copy: the device's file was lost.
func TestInterruptedWriteNeverRemovesAUsersFile(t *testing.T) {
	replicaIDs(t, 1, 2, 3, 4)
	w := newWorld(t, memstore.Options{}, memstore.Options{TimeGranularity: time.Second, NoRename: true})
	w.cfg.Policy = repl.Policy{Rule: repl.KeepBoth}
	t0 := time.Now().Add(-time.Hour).Truncate(2 * time.Second).Add(300 * time.Millisecond)
	mustPut(t, w.a, "d/x", "one", t0)
	w.b.FailAfter(0, errUnplugged, memstore.OpWrite)
	if _, err := w.syncErr(); !isGone(err) {
		t.Fatalf("Sync = %v, want ErrGone", err)
	}
	w.b.FailAfter(-1, nil)
	w.b.Revive()
	mustPut(t, w.a, "d/x", "two", t0.Add(3*time.Millisecond))
	mustPut(t, w.b, "d/x", "dev", t0.Add(3*time.Millisecond))
	w.sync()
	for _, s := range []*memstore.Store{w.a, w.b} {
		got := slices.Sorted(maps.Values(s.Files()))
		if !slices.Equal(got, []string{"dev", "two"}) {
			t.Errorf("a store holds %s, want both last edits (two, dev)", show(s.Files()))
		}
	}
}

func TestIncrementalDetection(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	for i := 0; i < 200; i++ {
		w.put(w.a, fmt.Sprintf("d%d/f%03d", i%5, i), "x")
	}
	w.sync()
	cs := repl.NewChangeSet()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.a.Watch(ctx, cs.Notify) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { w.put(w.a, "probe", "p"); return cs.Pending() })
	sideA, sideB := w.sides()
	sideA.Changes = cs
	// The first session after watching starts is a full pass (earlier changes are unknown).
	rep, err := w.hf.Sync(context.Background(), sideA, sideB, w.cfg)
	if err != nil || !rep.Detected[0].Full {
		t.Fatalf("first watched session: %v, detected %+v; want a full pass", err, rep.Detected)
	}
	w.put(w.a, "d1/f001", "edited")
	w.remove(w.a, "d2")
	rep, err = w.hf.Sync(context.Background(), sideA, sideB, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Detected[0]
	if d.Full || d.Changed != 1 || d.Deleted != 41 || d.Seen > 60 {
		t.Errorf("incremental detection = %+v, want 1 change and 41 deletes from the notified handles only", d)
	}
	wantSame(t, w.a, w.b)
	// Overflow asks for a full pass again.
	w.a.Overflow()
	waitFor(t, func() bool { return cs.Pending() })
	rep, err = w.hf.Sync(context.Background(), sideA, sideB, w.cfg)
	if err != nil || !rep.Detected[0].Full {
		t.Errorf("after an overflow: %v, %+v; want a full pass", err, rep.Detected[0])
	}
	// Shutdown: the engine stops using the store.
	w.a.Shutdown(errUnplugged)
	waitFor(t, func() bool { return cs.Gone() != nil })
	if _, err := w.hf.Sync(context.Background(), sideA, sideB, w.cfg); !isGone(err) || repl.ErrorSide(err) != sideA.Name {
		t.Errorf("Sync after the store shut down = %v (side %q), want ErrGone from %q", err, repl.ErrorSide(err), sideA.Name)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClassifyKeepsTheMessage: a store's error marked with a sentinel matches both, and reads as
// the store wrote it (a disk-full message once ended "no space left on device: no space left").
func TestClassifyKeepsTheMessage(t *testing.T) {
	cause := fmt.Errorf("write notes.txt: %w", syscall.ENOSPC)
	err := repl.Classify(cause, repl.ErrNoSpace)
	if !errors.Is(err, repl.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Classify: errors.Is ErrNoSpace %v, ENOSPC %v; want both", errors.Is(err, repl.ErrNoSpace), errors.Is(err, syscall.ENOSPC))
	}
	if err.Error() != cause.Error() {
		t.Errorf("Classify text = %q, want %q", err, cause)
	}
	if repl.Classify(nil, repl.ErrNoSpace) != nil {
		t.Error("Classify(nil) is not nil")
	}
}
