package repl_test

import (
	"context"
	"errors"
	"fmt"
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
