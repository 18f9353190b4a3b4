package repl_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// world is a partnership: a handle file and two memory stores, "desktop" (a) and "device" (b).
type world struct {
	t    *testing.T
	path string
	hf   *repl.HandleFile
	a, b *memstore.Store
	sa   repl.Store // what the engine sees of a (a, or a bare view)
	sb   repl.Store
	cfg  repl.Config
	tick time.Time
}

func newWorld(t *testing.T, oa, ob memstore.Options) *world {
	t.Helper()
	w := &world{t: t, path: filepath.Join(t.TempDir(), "Repl.dat"), tick: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w.a, w.b = memstore.New(oa), memstore.New(ob)
	w.sa, w.sb = w.a, w.b
	w.open()
	return w
}

func (w *world) open() {
	w.t.Helper()
	hf, err := repl.Open(w.path, repl.Options{})
	if err != nil {
		w.t.Fatalf("Open(%s): %v", w.path, err)
	}
	w.hf = hf
	w.t.Cleanup(func() { hf.Close() })
}

func (w *world) sides() (repl.Side, repl.Side) {
	return repl.Side{Name: "desktop", Store: w.sa}, repl.Side{Name: "device", Store: w.sb}
}

func (w *world) syncErr() (*repl.Report, error) {
	a, b := w.sides()
	return w.hf.Sync(context.Background(), a, b, w.cfg)
}

func (w *world) sync() *repl.Report {
	w.t.Helper()
	rep, err := w.syncErr()
	if err != nil {
		w.t.Fatalf("Sync: %v", err)
	}
	for _, s := range rep.Skipped {
		w.t.Errorf("Sync skipped %q (%s to %s): %v", s.Name, s.From, s.To, s.Err)
	}
	return rep
}

// now returns a new, later modification time for each call.
func (w *world) now() time.Time {
	w.tick = w.tick.Add(time.Minute)
	return w.tick
}

func (w *world) put(s *memstore.Store, name, content string) {
	w.t.Helper()
	if err := s.Put(name, []byte(content), w.now()); err != nil {
		w.t.Fatalf("Put(%q): %v", name, err)
	}
}

func (w *world) remove(s *memstore.Store, name string) {
	w.t.Helper()
	if err := s.Remove(name); err != nil {
		w.t.Fatalf("Remove(%q): %v", name, err)
	}
}

func (w *world) conflicts() []repl.Conflict {
	w.t.Helper()
	c, err := w.hf.Conflicts()
	if err != nil {
		w.t.Fatalf("Conflicts: %v", err)
	}
	return c
}

// wantFiles checks that s holds exactly the files in want (name -> content).
func wantFiles(t *testing.T, what string, s *memstore.Store, want map[string]string) {
	t.Helper()
	got := s.Files()
	if !maps.Equal(got, want) {
		t.Errorf("%s holds %s, want %s", what, show(got), show(want))
	}
}

// wantSame checks that both stores hold the same items (files with the same content, the same
// folders).
func wantSame(t *testing.T, a, b *memstore.Store) {
	t.Helper()
	if fa, fb := a.Files(), b.Files(); !maps.Equal(fa, fb) {
		t.Errorf("stores differ:\n desktop %s\n device  %s", show(fa), show(fb))
	}
	if na, nb := a.Names(), b.Names(); !slices.Equal(na, nb) {
		t.Errorf("stores hold different items:\n desktop %v\n device  %v", na, nb)
	}
}

func show(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteString("}")
	return b.String()
}

func counts(rep *repl.Report, side string) repl.Counts {
	if c := rep.Applied[side]; c != nil {
		return *c
	}
	return repl.Counts{}
}

func sortedNames(m map[string]string) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}

// failOn makes s fail op on the n-th matching call (0-based) and every later one with err.
func failOn(s *memstore.Store, op memstore.Op, n int, err error) {
	s.FailAfter(n, err, op)
}

var errUnplugged = fmt.Errorf("usb: device disconnected: %w", repl.ErrGone)

func isGone(err error) bool { return errors.Is(err, repl.ErrGone) }

var clock = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// nextTime returns a later time at each call.
func nextTime() time.Time {
	clock = clock.Add(time.Second)
	return clock
}

// sides2 is sides as a slice (Resolve takes them so).
func (w *world) sides2() []repl.Side {
	a, b := w.sides()
	return []repl.Side{a, b}
}
