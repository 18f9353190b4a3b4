package repl_test

import (
	"strings"
	"testing"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// Constraint conflicts: a file and a folder that took one name, an item whose folder became a
// file. They are not two edits of one content, so no policy has to drop anything: the file moves
// aside under a conflict name and the folder keeps the name, under every policy. They used to be
// skipped at every session, for ever.

func TestFileReplacedByFolderWhileEdited(t *testing.T) {
	for _, pol := range propPolicies {
		t.Run(pol.Rule.String()+pol.Winner, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			w.cfg.Policy = pol
			w.put(w.a, "x", "a file")
			w.sync()
			// The computer turns x into a folder with a file in it; the phone edits the file x.
			w.remove(w.a, "x")
			if err := w.a.Mkdir("x"); err != nil {
				t.Fatal(err)
			}
			w.put(w.a, "x/inside.txt", "in the folder")
			w.put(w.b, "x", "the phone's edit of the file")
			settleAndCheck(t, w, "the phone's edit of the file", "in the folder")
		})
	}
}

func TestFolderReplacedByFileWhileItsFileIsEdited(t *testing.T) {
	for _, swapper := range []string{"desktop", "device"} {
		for _, pol := range propPolicies {
			t.Run(swapper+"/"+pol.Rule.String()+pol.Winner, func(t *testing.T) {
				w := newWorld(t, memstore.Options{}, memstore.Options{})
				w.cfg.Policy = pol
				if err := w.a.Mkdir("x"); err != nil {
					t.Fatal(err)
				}
				w.put(w.a, "x/inside.txt", "first")
				w.sync()
				// One side replaces the folder x with a file x; the other edits x/inside.txt.
				swap, edit := w.a, w.b
				if swapper == "device" {
					swap, edit = w.b, w.a
				}
				w.remove(swap, "x")
				w.put(swap, "x", "a file now")
				w.put(edit, "x/inside.txt", "the other side's edit")
				rep := w.sync()
				if len(rep.Skipped) != 0 {
					t.Errorf("the first session skipped %+v", rep.Skipped)
				}
				settleAndCheck(t, w, "a file now", "the other side's edit")
			})
		}
	}
}

// settleAndCheck syncs until nothing changes (at most a few sessions; Ask conflicts resolved
// keeping both) and checks that both stores hold the same items, each content in want among them.
func settleAndCheck(t *testing.T, w *world, want ...string) {
	t.Helper()
	for i := 0; ; i++ {
		rep := w.sync()
		for _, c := range w.conflicts() {
			if err := w.hf.Resolve(t.Context(), c.ID, repl.ResolveBoth); err != nil {
				t.Fatalf("Resolve(%s): %v", c.ID, err)
			}
		}
		if quietReport(rep) && len(w.conflicts()) == 0 {
			break
		}
		if i == 4 {
			t.Fatalf("no quiet session after 5: %+v\n desktop %s\n device %s", rep, show(w.a.Files()), show(w.b.Files()))
		}
	}
	wantSame(t, w.a, w.b)
	got := map[string]bool{}
	for _, c := range w.a.Files() {
		got[c] = true
	}
	for _, c := range want {
		if !got[c] {
			t.Errorf("%q was lost: desktop %s", c, show(w.a.Files()))
		}
	}
	for n := range w.a.Files() {
		if strings.Count(n, "(conflict") > 1 {
			t.Errorf("a conflict copy of a conflict copy: %q", n)
		}
	}
}
