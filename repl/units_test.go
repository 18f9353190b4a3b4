package repl_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
	"pgregory.net/rapid"
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

// A card copied by its units counts its size as done, as a file copied by its content does, so
// that progress reaches its total.
func TestUnitsCopyCountsBytes(t *testing.T) {
	w := newUnitWorld(t, repl.Policy{Rule: repl.Ask})
	w.set(w.a, "ada", repl.Units{"N": []byte("Ada Lovelace"), "TEL": []byte("111")})
	e, err := w.a.Stat(context.Background(), "ada")
	if err != nil {
		t.Fatal(err)
	}
	if rep := w.sync(); e.Size <= 0 || rep.Bytes != e.Size {
		t.Errorf("first sync counted %d bytes, want the card's size %d", rep.Bytes, e.Size)
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

// TestPropertyUnits: random field edits of contact cards on two unit stores, random sessions and
// policies; afterwards both sides hold the same cards, and an edit made on one side only is never
// lost (it is in the final card unless a later edit of the same field replaced it).
func TestPropertyUnits(t *testing.T) {
	fields := []string{"N", "TEL", "EMAIL", "NOTE"}
	cards := []string{"ada", "bob", "cy"}
	for range rounds() {
		rapid.Check(t, func(rt *rapid.T) {
			policy := rapid.SampledFrom(propPolicies).Draw(rt, "policy")
			hf, err := repl.Open(filepath.Join(t.TempDir(), "u.dat"), repl.Options{NoSync: true})
			if err != nil {
				rt.Fatal(err)
			}
			defer hf.Close()
			stores := []*memstore.UnitStore{memstore.NewUnits(memstore.Options{}), memstore.NewUnits(memstore.Options{})}
			names := []string{"desktop", "device"}
			token := 0
			// last[card][field] is the last value written by a user, and on which side.
			type write struct {
				val  string
				side int
			}
			last := map[string]map[string]write{}
			sync := func() *repl.Report {
				rep, err := hf.Sync(context.Background(), repl.Side{Name: "desktop", Store: stores[0]}, repl.Side{Name: "device", Store: stores[1]},
					repl.Config{Policy: policy, AllowMassDelete: true, Now: func() time.Time { return time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) }})
				if err != nil {
					rt.Fatalf("Sync: %v", err)
				}
				return rep
			}
			steps := rapid.IntRange(3, 30).Draw(rt, "steps")
			for i := 0; i < steps; i++ {
				if rapid.IntRange(0, 3).Draw(rt, "op") == 0 {
					sync()
					continue
				}
				side := rapid.IntRange(0, 1).Draw(rt, "side")
				card := rapid.SampledFrom(cards).Draw(rt, "card")
				field := rapid.SampledFrom(fields).Draw(rt, "field")
				u, err := stores[side].ReadUnits(context.Background(), card)
				if err != nil {
					u = repl.Units{}
				}
				token++
				val := fmt.Sprintf("v%d", token)
				u[field] = []byte(val)
				if err := stores[side].PutUnits(card, u); err != nil {
					rt.Fatal(err)
				}
				if last[card] == nil {
					last[card] = map[string]write{}
				}
				last[card][field] = write{val, side}
			}
			for round := 0; ; round++ {
				if round == 10 {
					rt.Fatalf("no convergence:\ndesktop %v\ndevice %v", stores[0].Files(), stores[1].Files())
				}
				rep := sync()
				confs, err := hf.Conflicts()
				if err != nil {
					rt.Fatal(err)
				}
				for _, c := range confs {
					if err := hf.Resolve(context.Background(), c.ID, "desktop"); err != nil {
						rt.Fatal(err)
					}
				}
				if quiet(rep) && len(confs) == 0 {
					break
				}
			}
			if a, b := stores[0].Files(), stores[1].Files(); !maps.Equal(a, b) {
				rt.Fatalf("cards differ:\ndesktop %v\ndevice %v", a, b)
			}
			// Only the Ask and KeepBoth policies promise to keep every value; under them, the
			// last value written to a field is in some card of the final state.
			if policy.Rule != repl.Ask && policy.Rule != repl.KeepBoth {
				return
			}
			all := strings.Join(slices.Collect(maps.Values(stores[0].Files())), "\n")
			for card, fs := range last {
				for field, w := range fs {
					enc, _ := memstore.EncodeUnits(repl.Units{field: []byte(w.val)})
					if !strings.Contains(all, strings.TrimSpace(string(enc))) && policy.Rule == repl.KeepBoth {
						rt.Fatalf("the last %s of %s (%s, written on the %s) is nowhere in the final cards:\n%v", field, card, w.val, names[w.side], stores[0].Files())
					}
				}
			}
		})
	}
}
