package torture

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMassDeleteAsks (R6): a sync that would delete more than the threshold (half of a side's
// items by default, however few they are) stops before deleting anything and says how to
// confirm; confirmed, it deletes, and what it deleted is in the versions; under the threshold it
// does not ask.
func TestMassDeleteAsks(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	clk := newClock()
	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("f%02d.txt", i)
		if err := writeAt(filepath.Join(e.desktop, names[i]), []byte("keep me "+names[i]), clk.next()); err != nil {
			t.Fatal(err)
		}
	}
	e.partner()
	e.syncJSON()
	rec := record{ID: "R6", What: "syncs that would delete more than the mass-delete threshold, from either side"}
	count := func(dir string) int { // the user's files: Cradle's .cradle (its versions) aside
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if e.Name() != ".cradle" {
				n++
			}
		}
		return n
	}
	asks := func(when, other string, keep int) {
		t.Helper()
		rec.Count++
		r := e.run("sync")
		switch {
		case r.code == 0:
			rec.Failed++
			t.Errorf("%s: the sync exited 0, want it to stop and ask:\n%v", when, r)
		case !strings.Contains(r.stderr, "--allow-mass-delete"):
			rec.Failed++
			t.Errorf("%s: the message does not say how to confirm:\n%s", when, r.stderr)
		case strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine "):
			rec.Failed++
			t.Errorf("%s: a stack trace on stderr:\n%s", when, r.stderr)
		}
		if n := count(other); n != keep {
			rec.Failed++
			rec.Lost += keep - n
			t.Errorf("%s: the stopped sync left %d files in %s, want all %d", when, n, other, keep)
		}
		t.Logf("%s: %s", when, strings.TrimSpace(r.stderr))
	}

	// Under the threshold: 5 of 40 deleted on the desktop sync without asking.
	for _, n := range names[:5] {
		os.Remove(filepath.Join(e.desktop, n))
	}
	rec.Count++
	if s := e.syncJSON(); s.ToDevice.Deleted != 5 {
		rec.Failed++
		t.Errorf("5 of 40 deleted on the desktop: %+v, want 5 deleted on the device", s)
	}

	// 20 of 35 deleted on the desktop.
	for _, n := range names[5:25] {
		os.Remove(filepath.Join(e.desktop, n))
	}
	asks("20 of 35 files deleted on the desktop", e.devDir(), 35)
	if s := e.syncJSON("--allow-mass-delete"); s.ToDevice.Deleted != 20 || count(e.devDir()) != 15 {
		rec.Failed++
		t.Errorf("confirmed: deleted %d on the device, %d left; want 20 deleted, 15 left", s.ToDevice.Deleted, count(e.devDir()))
	}

	// 8 of 15 deleted on the device: the desktop's files are kept until confirmed.
	for _, n := range names[25:33] {
		os.Remove(filepath.Join(e.devDir(), n))
	}
	asks("8 of 15 files deleted on the device", e.desktop, 15)
	if s := e.syncJSON("--allow-mass-delete"); s.ToDesktop.Deleted != 8 || count(e.desktop) != 7 {
		rec.Failed++
		t.Errorf("confirmed: deleted %d on the desktop, %d left; want 8 deleted, 7 left", s.ToDesktop.Deleted, count(e.desktop))
	}
	if n := len(kept(t, e.desktop)); n != 8 {
		rec.Failed++
		rec.Lost += 8 - n
		t.Errorf("the 8 files the confirmed sync deleted on the desktop: %d kept in its versions, want 8", n)
	}

	// A small side is no exception: 4 of the 7 files left deleted on the desktop.
	for _, n := range names[33:37] {
		os.Remove(filepath.Join(e.desktop, n))
	}
	asks("4 of 7 files deleted on the desktop", e.devDir(), 7)
	rec.Seconds = time.Since(start).Seconds()
	report(t, rec)
}

// kept lists the files in the versions a partnership folder holds (its .cradle/versions).
func kept(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(filepath.Join(dir, ".cradle", "versions"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}
