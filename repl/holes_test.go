package repl_test

import (
	"fmt"
	"testing"

	"github.com/cradle-sync/cradle/repl/memstore"
)

// A conflict waiting for the user used to stop every later change from being learned as part of
// the source's knowledge: each became an exception (500 after five rounds of 100 edits), all
// re-encoded at every commit. The change a conflict leaves unapplied is a single hole now, and the
// knowledge stays a few entries however many changes pass it.
func TestPendingConflictKeepsKnowledgeSmall(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "clash.txt", "v0")
	for i := range 100 {
		w.put(w.a, fmt.Sprintf("f%03d.txt", i), "v0")
	}
	w.sync()
	w.put(w.a, "clash.txt", "desktop's")
	w.put(w.b, "clash.txt", "device's")
	w.sync()
	if n := len(w.conflicts()); n != 1 {
		t.Fatalf("%d conflicts, want 1", n)
	}
	for round := 1; round <= 5; round++ {
		for i := range 100 {
			s := w.a
			if i%2 == 1 {
				s = w.b
			}
			w.put(s, fmt.Sprintf("f%03d.txt", i), fmt.Sprintf("round %d", round))
		}
		w.sync()
	}
	if n := len(w.conflicts()); n != 1 {
		t.Fatalf("%d conflicts after the rounds, want the 1 still waiting", n)
	}
	infos, err := w.hf.Replicas()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range infos {
		k := r.Knowledge
		if n := len(k.Vector()) + len(k.Exceptions()) + len(k.Holes()); n > 4 {
			t.Errorf("%s knows %v: %d entries, want a few", r.Name, k, n)
		}
	}
	// The conflict is still met: resolving it settles it, and then nothing is pending.
	c := w.conflicts()[0]
	if err := w.hf.Resolve(t.Context(), c.ID, "device", w.sides2()...); err != nil {
		t.Fatal(err)
	}
	w.sync()
	wantSame(t, w.a, w.b)
	if got, _ := w.a.Get("clash.txt"); string(got) != "device's" {
		t.Errorf("clash.txt = %q after keeping the device's", got)
	}
	infos, _ = w.hf.Replicas()
	for _, r := range infos {
		if h := r.Knowledge.Holes(); len(h) != 0 {
			t.Errorf("%s still holds holes %v after the conflict was settled", r.Name, h)
		}
	}
}
