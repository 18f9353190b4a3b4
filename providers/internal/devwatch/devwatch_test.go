package devwatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/repl"
)

// run feeds evs to Run for storage 1 and returns what it notified and which object events it
// passed on, once Run has returned (or after the events, when it does not).
func run(t *testing.T, evs ...device.Event) (notes []repl.Notification, objects []device.Event, returned bool) {
	t.Helper()
	ch := make(chan device.Event, len(evs))
	for _, ev := range evs {
		ch <- ev
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ch, 1, func(n repl.Notification) { notes = append(notes, n) }, func(ev device.Event) { objects = append(objects, ev) })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		return notes, objects, true
	case <-time.After(200 * time.Millisecond):
		cancel()
		<-done
		return notes, objects, false
	}
}

func TestRun(t *testing.T) {
	// Object events of the storage (or of no storage in particular) go to the provider; others not.
	_, objs, returned := run(t,
		device.Event{Kind: device.ObjectAdded, Storage: 1, Path: "a"},
		device.Event{Kind: device.ObjectChanged, Storage: 2, Path: "elsewhere"},
		device.Event{Kind: device.ObjectRemoved, Storage: 0, Path: ""},
		device.Event{Kind: device.StorageRemoved, Storage: 2}, // another storage: go on
	)
	if returned || len(objs) != 2 || objs[0].Path != "a" || objs[1].Kind != device.ObjectRemoved {
		t.Errorf("object events passed on = %+v (Run returned: %v), want the two of storage 1 and 0, and Run still going", objs, returned)
	}
	// Lost events: an Overflow.
	if notes, _, _ := run(t, device.Event{Kind: device.EventOverflow}); len(notes) != 1 || notes[0].Kind != repl.Overflow {
		t.Errorf("after lost events: %+v, want one Overflow", notes)
	}
	// The device gone, its events ending, or the store's storage removed: a Shutdown, and Run returns.
	for _, tc := range []struct {
		name string
		evs  []device.Event
	}{
		{"device gone", []device.Event{{Kind: device.DeviceGone}, {Kind: device.ObjectAdded, Storage: 1, Path: "late"}}},
		{"storage removed", []device.Event{{Kind: device.StorageRemoved, Storage: 1}}},
	} {
		notes, objs, returned := run(t, tc.evs...)
		if !returned || len(notes) != 1 || notes[0].Kind != repl.Shutdown || !errors.Is(notes[0].Err, repl.ErrGone) || len(objs) != 0 {
			t.Errorf("%s: notified %+v, objects %+v, returned %v; want one Shutdown (ErrGone) and Run returned", tc.name, notes, objs, returned)
		}
	}
	ch := make(chan device.Event)
	close(ch)
	var notes []repl.Notification
	if err := Run(context.Background(), ch, 1, func(n repl.Notification) { notes = append(notes, n) }, func(device.Event) {}); err != nil || len(notes) != 1 || notes[0].Kind != repl.Shutdown {
		t.Errorf("events closed: Run = %v, notified %+v; want nil and one Shutdown", err, notes)
	}
}

func TestKind(t *testing.T) {
	for k, want := range map[device.EventKind]repl.NotifyKind{
		device.ObjectAdded: repl.ItemCreated, device.ObjectRemoved: repl.ItemDeleted, device.ObjectChanged: repl.ItemModified,
	} {
		if got := Kind(k); got != want {
			t.Errorf("Kind(%v) = %v, want %v", k, got, want)
		}
	}
}
