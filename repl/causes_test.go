package repl_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// TestStoresAreToldWhy: every write over an item and every delete tells the store why (what a
// versions area records): an update from the other side, a delete on the other side, a conflict
// the user resolved (now or at the next session), the policy's decision (in either pass); a
// rename loses nothing and says so.
func TestStoresAreToldWhy(t *testing.T) {
	type step struct {
		name string
		do   func(w *world)
		want []string
	}
	for _, tc := range []struct {
		name   string
		policy repl.Policy
		steps  []step
	}{
		{name: "plain changes", steps: []step{
			{"edit on the device", func(w *world) { w.put(w.b, "a.txt", "a2") }, []string{`desktop update "a.txt" update`}},
			{"delete on the device", func(w *world) { w.remove(w.b, "a.txt") }, []string{`desktop delete "a.txt" delete`}},
			{"rename on the desktop", func(w *world) {
				if err := w.a.Rename("b.txt", "c.txt"); err != nil {
					t.Fatal(err)
				}
			}, []string{`device rename "c.txt" none`}},
		}},
		{name: "the device wins", policy: repl.Policy{Rule: repl.Wins, Winner: "device"}, steps: []step{
			{"both edit", func(w *world) { w.put(w.a, "a.txt", "desk"); w.put(w.b, "a.txt", "dev") }, []string{`desktop update "a.txt" policy`}},
		}},
		{name: "the desktop wins", policy: repl.Policy{Rule: repl.Wins, Winner: "desktop"}, steps: []step{
			{"both edit", func(w *world) { w.put(w.a, "a.txt", "desk"); w.put(w.b, "a.txt", "dev") }, []string{`device update "a.txt" policy`}},
		}},
		{name: "newest", policy: repl.Policy{Rule: repl.Newest}, steps: []step{
			{"both edit", func(w *world) { w.put(w.b, "a.txt", "dev"); w.put(w.a, "a.txt", "desk, later") }, []string{`device update "a.txt" policy`}},
		}},
		{name: "ask", steps: []step{
			{"both edit", func(w *world) { w.put(w.a, "a.txt", "desk"); w.put(w.b, "a.txt", "dev") }, nil},
			{"resolved for the device, carried out by the session", func(w *world) {
				if err := w.hf.Resolve(context.Background(), w.conflicts()[0].ID, "device"); err != nil {
					t.Fatal(err)
				}
			}, []string{`desktop update "a.txt" conflict`}},
			{"both edit b", func(w *world) { w.put(w.a, "b.txt", "desk"); w.put(w.b, "b.txt", "dev") }, nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			var log []string
			w.sa, w.sb = recStore{w.a, "desktop", &log}, recStore{w.b, "device", &log}
			w.cfg.Policy = tc.policy
			w.put(w.a, "a.txt", "a1")
			w.put(w.a, "b.txt", "b1")
			w.sync()
			for _, s := range tc.steps {
				log = nil
				s.do(w)
				w.sync()
				slices.Sort(log)
				if !slices.Equal(log, s.want) {
					t.Errorf("%s: the stores were told %q, want %q", s.name, log, s.want)
				}
			}
			if tc.name != "ask" {
				return
			}
			// Resolved with both stores at hand: written at once, as a resolution.
			log = nil
			a, b := w.sides()
			if err := w.hf.Resolve(context.Background(), w.conflicts()[0].ID, "desktop", a, b); err != nil {
				t.Fatal(err)
			}
			if want := []string{`device update "b.txt" conflict`}; !slices.Equal(log, want) {
				t.Errorf("resolved at once: the stores were told %q, want %q", log, want)
			}
		})
	}
}
