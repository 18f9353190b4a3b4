package repl_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
)

// deferring is a Flusher over a memory store: its changes reach the store at once (its own reads
// must see them), but crash undoes those made since the last Persist, as a process killed before
// it wrote them down would lose them.
type deferring struct {
	*memstore.Store
	undo        []func() // of the changes since the last Persist, in order
	persists    int
	flushes     int
	failPersist int   // the Persist (1-based) that fails; 0: none
	failFlush   error // what Flush returns
	calls       []string
}

var _ repl.Flusher = (*deferring)(nil)

func (d *deferring) remember(names ...string) {
	for _, n := range names {
		if n == "" {
			continue
		}
		data, ok := d.Get(n)
		e, _ := d.Lookup(n)
		d.undo = append(d.undo, func() {
			if ok {
				_ = d.Put(n, data, e.ModTime)
			} else {
				_ = d.Remove(n)
			}
		})
	}
}

func (d *deferring) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	d.remember(req.Handle, req.Name)
	d.calls = append(d.calls, "write")
	return d.Store.Write(ctx, req)
}

func (d *deferring) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	d.remember(handle)
	d.calls = append(d.calls, "delete")
	return d.Store.Delete(ctx, handle, expected)
}

func (d *deferring) Persist(context.Context) error {
	d.persists++
	d.calls = append(d.calls, "persist")
	if d.persists == d.failPersist {
		return errors.New("disk full in the state folder")
	}
	d.undo = nil
	return nil
}

func (d *deferring) Flush(context.Context) error {
	d.flushes++
	d.calls = append(d.calls, "flush")
	return d.failFlush
}

// crash undoes what was not persisted: the process died before it wrote it down.
func (d *deferring) crash() {
	for i := len(d.undo) - 1; i >= 0; i-- {
		d.undo[i]()
	}
	d.undo = nil
}

// A Flusher's changes are made durable before each batch's records are committed, and flushed
// once at the end of the session: a process killed at the flush, after every commit, loses no
// item on either side.
func TestFlusherKilledBeforeFlush(t *testing.T) {
	const items = 25
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	d := &deferring{Store: w.b, failFlush: fmt.Errorf("killed: %w", context.Canceled)}
	w.sb = d
	w.cfg.BatchSize = 4
	for i := range items {
		w.put(w.a, fmt.Sprintf("f%02d.txt", i), fmt.Sprint("content ", i))
	}
	_, err := w.syncErr()
	if !errors.Is(err, context.Canceled) || !errors.Is(err, repl.ErrUnflushed) || repl.ErrorSide(err) != "device" {
		t.Fatalf("Sync with the flush cut = %v (side %q), want context.Canceled and ErrUnflushed on the device", err, repl.ErrorSide(err))
	}
	if d.flushes != 1 {
		t.Errorf("Flush called %d times, want once", d.flushes)
	}
	if want := (items + w.cfg.BatchSize - 1) / w.cfg.BatchSize; d.persists < want {
		t.Errorf("Persist called %d times for %d batches", d.persists, want)
	}
	if i := slices.Index(d.calls, "flush"); i != len(d.calls)-1 {
		t.Errorf("calls = %v, want the flush last", d.calls)
	}
	d.crash()
	d.failFlush = nil
	rep := w.sync()
	if !rep.Complete {
		t.Errorf("the session after the crash is not complete: %+v", rep)
	}
	if got := len(w.a.Files()); got != items {
		t.Errorf("desktop holds %d items after the crash, want %d", got, items)
	}
	wantSame(t, w.a, w.b)
}

// A batch whose changes cannot be made durable is not recorded as applied: after a crash, the
// next session writes its items again and nothing is lost.
func TestFlusherPersistFails(t *testing.T) {
	const items = 25
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	d := &deferring{Store: w.b, failPersist: 3}
	w.sb = d
	w.cfg.BatchSize = 4
	for i := range items {
		w.put(w.a, fmt.Sprintf("f%02d.txt", i), fmt.Sprint("content ", i))
	}
	_, err := w.syncErr()
	if err == nil || repl.ErrorSide(err) != "device" {
		t.Fatalf("Sync with Persist failing = %v (side %q), want an error on the device", err, repl.ErrorSide(err))
	}
	if d.flushes != 1 {
		t.Errorf("Flush called %d times after the error, want once", d.flushes)
	}
	if errors.Is(err, repl.ErrUnflushed) {
		t.Errorf("Sync = %v, marked ErrUnflushed though the flush went well", err)
	}
	d.crash()
	if got := len(w.b.Files()); got != 8 {
		t.Errorf("device holds %d items after the crash, want the 8 of the two batches persisted", got)
	}
	d.failPersist = 0
	rep := w.sync()
	if c := counts(rep, "device"); c.Created != items-8 {
		t.Errorf("the next session created %d items on the device, want %d", c.Created, items-8)
	}
	wantSame(t, w.a, w.b)
	if got := len(w.a.Files()); got != items {
		t.Errorf("desktop holds %d items, want %d", got, items)
	}
}

// Resolve carries out a resolution through a Flusher and flushes it.
func TestFlusherResolve(t *testing.T) {
	w := newWorld(t, memstore.Options{}, memstore.Options{})
	d := &deferring{Store: w.b}
	w.sb = d
	w.put(w.a, "plan.txt", "v1")
	w.sync()
	w.put(w.a, "plan.txt", "desktop edit")
	w.put(w.b, "plan.txt", "device edit")
	rep := w.sync()
	if len(rep.Conflicts) != 1 {
		t.Fatalf("conflicts = %+v, want one", rep.Conflicts)
	}
	before := d.flushes
	if err := w.hf.Resolve(context.Background(), rep.Conflicts[0].ID, "desktop", w.sides2()...); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if d.flushes != before+1 {
		t.Errorf("Resolve flushed %d times, want once", d.flushes-before)
	}
	if d.undo != nil {
		t.Errorf("Resolve left changes not persisted")
	}
	wantSame(t, w.a, w.b)
}
