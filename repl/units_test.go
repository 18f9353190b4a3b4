package repl_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// unitWorld syncs two stores whose items are made of change units (contact cards).
type unitWorld struct {
	t    *testing.T
	hf   *repl.HandleFile
	a, b *memstore.UnitStore
	cfg  repl.Config
}

func newUnitWorld(t *testing.T, policy repl.Policy) *unitWorld {
	hf, err := repl.Open(filepath.Join(t.TempDir(), "Repl.dat"), repl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hf.Close() })
	return &unitWorld{t: t, hf: hf, a: memstore.NewUnits(memstore.Options{}), b: memstore.NewUnits(memstore.Options{}),
		cfg: repl.Config{Policy: policy}}
}

func (w *unitWorld) sync() *repl.Report {
	w.t.Helper()
	rep, err := w.hf.Sync(context.Background(), repl.Side{Name: "desktop", Store: w.a}, repl.Side{Name: "device", Store: w.b}, w.cfg)
	if err != nil {
		w.t.Fatalf("Sync: %v", err)
	}
	return rep
}

func (w *unitWorld) set(s *memstore.UnitStore, name string, u repl.Units) {
	w.t.Helper()
	if err := s.PutUnits(name, u); err != nil {
		w.t.Fatal(err)
	}
}

func (w *unitWorld) units(s *memstore.UnitStore, name string) repl.Units {
	w.t.Helper()
	u, err := s.ReadUnits(context.Background(), name)
	if err != nil {
		w.t.Fatalf("ReadUnits(%q): %v", name, err)
	}
	return u
}

func wantUnits(t *testing.T, what string, got repl.Units, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s[%s] = %q, want %q (all: %q)", what, k, got[k], v, got)
		}
	}
}

func TestUnitsMergeFieldByField(t *testing.T) {
	w := newUnitWorld(t, repl.Policy{Rule: repl.Ask})
	w.set(w.a, "ada", repl.Units{"N": []byte("Ada Lovelace"), "TEL": []byte("111"), "EMAIL": []byte("ada@old.example")})
	w.sync()
	// The desktop changes the phone number, the device the e-mail address and adds a note.
	w.set(w.a, "ada", repl.Units{"N": []byte("Ada Lovelace"), "TEL": []byte("222"), "EMAIL": []byte("ada@old.example")})
	w.set(w.b, "ada", repl.Units{"N": []byte("Ada Lovelace"), "TEL": []byte("111"), "EMAIL": []byte("ada@new.example"), "NOTE": []byte("met in 1843")})
	rep := w.sync()
	want := map[string]string{"N": "Ada Lovelace", "TEL": "222", "EMAIL": "ada@new.example", "NOTE": "met in 1843"}
	wantUnits(t, "desktop card", w.units(w.a, "ada"), want)
	wantUnits(t, "device card", w.units(w.b, "ada"), want)
	if len(rep.Conflicts) != 0 {
		t.Errorf("edits to different fields made conflicts: %+v", rep.Conflicts)
	}
	// A field removed on one side while another changes on the other.
	w.set(w.a, "ada", repl.Units{"N": []byte("Ada Lovelace"), "TEL": []byte("222"), "EMAIL": []byte("ada@new.example")})
	w.set(w.b, "ada", repl.Units{"N": []byte("Augusta Ada King"), "TEL": []byte("222"), "EMAIL": []byte("ada@new.example"), "NOTE": []byte("met in 1843")})
	w.sync()
	want = map[string]string{"N": "Augusta Ada King", "TEL": "222", "EMAIL": "ada@new.example"}
	wantUnits(t, "desktop card after a removal", w.units(w.a, "ada"), want)
	wantUnits(t, "device card after a removal", w.units(w.b, "ada"), want)
	if rep := w.sync(); rep.Bytes != 0 || len(rep.Conflicts) != 0 {
		t.Errorf("the session after a merge still did work: %+v", rep)
	}
}

func TestUnitsSameFieldConflict(t *testing.T) {
	t.Run("ask", func(t *testing.T) {
		w := newUnitWorld(t, repl.Policy{Rule: repl.Ask})
		w.set(w.a, "bob", repl.Units{"N": []byte("Bob"), "TEL": []byte("1")})
		w.sync()
		w.set(w.a, "bob", repl.Units{"N": []byte("Bob"), "TEL": []byte("desktop")})
		w.set(w.b, "bob", repl.Units{"N": []byte("Bob"), "TEL": []byte("device")})
		w.sync()
		if n := len(mustConflicts(t, w.hf)); n != 1 {
			t.Errorf("the same field edited on both sides: %d conflicts, want 1", n)
		}
		wantUnits(t, "desktop under ask", w.units(w.a, "bob"), map[string]string{"N": "Bob", "TEL": "desktop"})
		wantUnits(t, "device under ask", w.units(w.b, "bob"), map[string]string{"N": "Bob", "TEL": "device"})
	})
	t.Run("device wins the field, other fields merge", func(t *testing.T) {
		w := newUnitWorld(t, repl.Policy{Rule: repl.Wins, Winner: "device"})
		w.set(w.a, "bob", repl.Units{"N": []byte("Bob"), "TEL": []byte("1"), "ORG": []byte("x")})
		w.sync()
		w.set(w.a, "bob", repl.Units{"N": []byte("Bob"), "TEL": []byte("desktop"), "ORG": []byte("Analytical Engines Ltd")})
		w.set(w.b, "bob", repl.Units{"N": []byte("Bob"), "TEL": []byte("device"), "ORG": []byte("x")})
		rep := w.sync()
		want := map[string]string{"N": "Bob", "TEL": "device", "ORG": "Analytical Engines Ltd"}
		wantUnits(t, "desktop", w.units(w.a, "bob"), want)
		wantUnits(t, "device", w.units(w.b, "bob"), want)
		if len(rep.Decisions) != 1 || rep.Decisions[0].Kept != "device" {
			t.Errorf("decisions = %+v, want one keeping the device's TEL", rep.Decisions)
		}
	})
}

func mustConflicts(t *testing.T, hf *repl.HandleFile) []repl.Conflict {
	t.Helper()
	c, err := hf.Conflicts()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
