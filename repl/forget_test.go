package repl_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// Tombstones used to be kept for ever: 5,000 live files through three rounds of churn grew the
// device's snapshot from 0.46 to 2.17 MB and the handle file from 4 to 16 MB. Those every partner
// has learned are dropped now: after ten rounds of deleting and making the files (the live count
// the same), both stay within 1.5 times their size after the first round. (2,000 files keep the
// test short; at 5,000 the handle file ends at 1.06 times and the snapshot at 1.04.)
func TestChurnKeepsMetadataSize(t *testing.T) {
	const files, rounds = 2000, 10
	d := &device{store: memstore.New(memstore.Options{})}
	home := newComputer(t, "home")
	round := func(r int) {
		for i := range files {
			if r > 0 {
				s := home.desktop
				if i%2 == 1 {
					s = d.store
				}
				if err := s.Remove(fmt.Sprintf("r%d/f%04d.txt", r-1, i)); err != nil {
					t.Fatal(err)
				}
			}
			s := home.desktop
			if i%3 == 0 {
				s = d.store
			}
			if err := s.Put(fmt.Sprintf("r%d/f%04d.txt", r, i), []byte(fmt.Sprintf("round %d file %d", r, i)), clock); err != nil {
				t.Fatal(err)
			}
		}
		if err := home.desktop.Remove(fmt.Sprintf("r%d", r-1)); r > 0 && err != nil {
			t.Fatal(err)
		}
		if _, err := home.syncWith(t, d, repl.Config{AllowMassDelete: true}, true); err != nil {
			t.Fatalf("round %d: %v", r, err)
		}

	}
	size := func() (int64, int) {
		fi, err := os.Stat(home.hf.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size(), len(d.snap)
	}
	round(0)
	round(1)
	file1, snap1 := size()
	for r := 2; r <= rounds; r++ {
		round(r)
	}
	file, snap := size()
	t.Logf("after round 1: handle file %d B, snapshot %d B; after round %d: %d B, %d B", file1, snap1, rounds, file, snap)
	if float64(file) > 1.5*float64(file1) {
		t.Errorf("the handle file grew from %d B to %d B over %d rounds of churn", file1, file, rounds-1)
	}
	if float64(snap) > 1.5*float64(snap1) {
		t.Errorf("the device's snapshot grew from %d B to %d B over %d rounds of churn", snap1, snap, rounds-1)
	}
	if n := d.store.Len(); n != files+1 {
		t.Errorf("the device holds %d items, want %d", n, files+1)
	}
}

// A computer away longer than tombstones are kept comes back to a device that forgot the deletes
// it made meanwhile: a full comparison deletes what the device deleted and forgot, and never what
// the computer changed meanwhile (an edit beats a delete, even a forgotten one).
func TestPartnerAwayLongerThanTombstonesAreKept(t *testing.T) {
	d := &device{store: memstore.New(memstore.Options{})}
	home, work := newComputer(t, "home"), newComputer(t, "work")
	putNow(t, home.desktop, "gone.txt", "deleted at home")
	putNow(t, home.desktop, "edited.txt", "edited at work, deleted at home")
	putNow(t, home.desktop, "kept.txt", "kept")
	home.mustSync(t, d)
	work.mustSync(t, d)
	// Work goes away. Home deletes two files and keeps tombstones for a nanosecond only.
	putNow(t, work.desktop, "edited.txt", "work's edit")
	if err := home.desktop.Remove("gone.txt"); err != nil {
		t.Fatal(err)
	}
	if err := home.desktop.Remove("edited.txt"); err != nil {
		t.Fatal(err)
	}
	cfg := repl.Config{TombstoneAge: time.Nanosecond, AllowMassDelete: true} // 2 of 3: the user meant it
	if _, err := home.syncWith(t, d, cfg, true); err != nil {
		t.Fatal(err)
	}
	if _, err := home.syncWith(t, d, cfg, true); err != nil { // and forgets them
		t.Fatal(err)
	}
	for _, c := range []*computer{work, home, work} {
		if _, err := c.syncWith(t, d, cfg, true); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"kept.txt": "kept", "edited.txt": "work's edit"}
	wantFiles(t, "work", work.desktop, want)
	wantFiles(t, "device", d.store, want)
	wantFiles(t, "home", home.desktop, want)
}
