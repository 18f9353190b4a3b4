package repl_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// meetingStore's enumeration waits for the other side's to begin before it lists anything: it
// fails unless the two sides are listed at the same time.
type meetingStore struct {
	repl.Store
	here, there chan struct{}
}

func (s meetingStore) Enumerate(ctx context.Context) (repl.Iterator, error) {
	close(s.here)
	select {
	case <-s.there:
		return s.Store.Enumerate(ctx)
	case <-time.After(5 * time.Second):
		return nil, errors.New("the other side was not being listed while this one was")
	}
}

// TestDetectionListsBothSidesAtOnce: a session lists the desktop folder and the device at the
// same time (a no-op sync costs the slower of the two listings, not their sum).
func TestDetectionListsBothSidesAtOnce(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	w.put(w.a, "notes/a.txt", "from the desktop")
	w.put(w.b, "DCIM/b.jpg", "from the device")
	toA, toB := make(chan struct{}), make(chan struct{})
	w.sa = meetingStore{Store: w.a, here: toB, there: toA}
	w.sb = meetingStore{Store: w.b, here: toA, there: toB}
	w.sync()
	wantSame(t, w.a, w.b)
}

// TestFailedListingKeepsNotifications: when the device's listing fails, the desktop's notified
// changes, taken for the same session, wait for the next one; none is forgotten.
func TestFailedListingKeepsNotifications(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	for i := range 20 {
		w.put(w.a, fmt.Sprintf("f%02d", i), "x")
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
	if _, err := w.hf.Sync(context.Background(), sideA, sideB, w.cfg); err != nil {
		t.Fatalf("first watched session: %v", err)
	}
	w.put(w.a, "f07", "edited on the desktop")
	waitFor(t, func() bool { return cs.Pending() })

	w.b.FailAfter(3, fmt.Errorf("unplugged: %w", repl.ErrGone), memstore.OpNext)
	if _, err := w.hf.Sync(context.Background(), sideA, sideB, w.cfg); !isGone(err) || repl.ErrorSide(err) != sideB.Name {
		t.Fatalf("Sync with the device's listing failing = %v (side %q), want ErrGone from %q", err, repl.ErrorSide(err), sideB.Name)
	}
	w.b.SetFault(nil)
	rep, err := w.hf.Sync(context.Background(), sideA, sideB, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Detected[0].Full {
		t.Errorf("desktop detection after the failed session = %+v, want the notified handles only", rep.Detected[0])
	}
	if got, _ := w.b.Get("f07"); string(got) != "edited on the desktop" {
		t.Errorf("device's f07 = %q, want the desktop's edit", got)
	}
}

// orderedStore enumerates its items in the order order gives them (a walk of folders, a device's
// own order), reporting some twice when dup names them.
type orderedStore struct {
	*memstore.Store
	order func([]repl.Entry) []repl.Entry
}

type listIter struct{ entries []repl.Entry }

func (it *listIter) Next(context.Context) (repl.Entry, error) {
	if len(it.entries) == 0 {
		return repl.Entry{}, io.EOF
	}
	e := it.entries[0]
	it.entries = it.entries[1:]
	return e, nil
}

func (it *listIter) Close() error { return nil }

func (s orderedStore) Enumerate(ctx context.Context) (repl.Iterator, error) {
	it, err := s.Store.Enumerate(ctx)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var all []repl.Entry
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		all = append(all, e)
	}
	return &listIter{entries: s.order(all)}, nil
}

// TestFullPassInAnyOrder: a full pass finds the same changes whatever order the store lists its
// items in (handle order, a walk that lists "a/b" before "a.txt", reversed), and refuses a
// listing that reports an item twice.
func TestFullPassInAnyOrder(t *testing.T) {
	byHandle := func(es []repl.Entry) []repl.Entry {
		slices.SortFunc(es, func(x, y repl.Entry) int { return strings.Compare(x.Handle, y.Handle) })
		return es
	}
	walk := func(es []repl.Entry) []repl.Entry {
		// A folder's items right after it: compare path components.
		slices.SortFunc(es, func(x, y repl.Entry) int {
			return slices.Compare(strings.Split(x.Handle, "/"), strings.Split(y.Handle, "/"))
		})
		return es
	}
	reversed := func(es []repl.Entry) []repl.Entry {
		es = byHandle(es)
		slices.Reverse(es)
		return es
	}
	for name, order := range map[string]func([]repl.Entry) []repl.Entry{"handle order": byHandle, "walk": walk, "reversed": reversed} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, memstore.Options{}, memstore.Options{})
			for _, n := range []string{"a/b", "a/c/d", "a.txt", "a-1/x", "b", "c/e", "c.d/f", "z"} {
				w.put(w.a, n, "content of "+n)
			}
			w.sa = orderedStore{Store: w.a, order: order}
			w.sync()
			wantSame(t, w.a, w.b)
			w.put(w.a, "a/b", "edited")
			w.remove(w.a, "a-1/x")
			w.remove(w.a, "c.d/f")
			w.put(w.a, "a/new", "new")
			w.put(w.a, "a.a", "new too")
			rep, err := w.hf.Detect(context.Background(), repl.Side{Name: "desktop", Store: w.sa})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Created != 2 || rep.Changed != 1 || rep.Deleted != 2 || rep.Seen != len(w.a.Names()) {
				t.Errorf("Detect = %+v, want 2 created, 1 changed, 2 deleted of %d seen", rep, len(w.a.Names()))
			}
			w.sync()
			wantSame(t, w.a, w.b)
			for _, twice := range []string{"a/c/d", "z", "new-name"} {
				if twice == "new-name" {
					w.put(w.a, twice, "x")
				}
				w.sa = orderedStore{Store: w.a, order: func(es []repl.Entry) []repl.Entry {
					es = order(es)
					for _, e := range es {
						if e.Handle == twice {
							return append(es, e)
						}
					}
					return es
				}}
				if _, err := w.hf.Detect(context.Background(), repl.Side{Name: "desktop", Store: w.sa}); err == nil || !strings.Contains(err.Error(), "twice") {
					t.Errorf("Detect of a listing with %q twice = %v, want an error", twice, err)
				}
			}
		})
	}
}
