package repltest

// The checks of the optional abilities a store may have: Stater, Hasher, Notifier, UnitStore.

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

func (s *suite) testStat(t *testing.T) {
	st, ed := s.h.New(t)
	sr, ok := st.(repl.Stater)
	if !ok {
		t.Logf("store is not a repl.Stater: nothing to check")
		return
	}
	ctx := ctxT(t)
	h := s.put(t, ed, 0, 0, baseTime)
	want := enumerate(t, st)[h]
	got, err := sr.Stat(ctx, h)
	if err != nil {
		t.Fatalf("Stat(%q): %v", h, err)
	}
	if got.Handle != want.Handle || got.Kind != want.Kind || got.Size != want.Size || !got.ModTime.Equal(want.ModTime) || got.Hash != want.Hash {
		t.Errorf("Stat(%q) = %+v, want the enumerated %+v", h, got, want)
	}
	if err := ed.Remove(h); err != nil {
		t.Fatal(err)
	}
	if _, err := sr.Stat(ctx, h); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Stat(%q) after removal = %v, want ErrNotFound", h, err)
	}
}

func (s *suite) testHash(t *testing.T) {
	st, ed := s.h.New(t)
	hs, ok := st.(repl.Hasher)
	if !ok {
		t.Logf("store is not a repl.Hasher: nothing to check")
		return
	}
	ctx := ctxT(t)
	h0 := s.put(t, ed, 0, 0, baseTime)
	x0, err := hs.Hash(ctx, h0)
	if err != nil || x0 == "" {
		t.Fatalf("Hash(%q) = %q, %v", h0, x0, err)
	}
	if s.items(2) == 2 {
		h1 := s.put(t, ed, 1, 0, baseTime)
		x1, err := hs.Hash(ctx, h1)
		if err != nil {
			t.Fatalf("Hash(%q): %v", h1, err)
		}
		if x0 == x1 {
			t.Errorf("Hash of different contents are equal (%q)", x0)
		}
	}
	if e := enumerate(t, st)[h0]; e.Hash != "" && e.Hash != x0 {
		t.Errorf("Entry.Hash of %q = %q, Hash = %q; want equal", h0, e.Hash, x0)
	}
	if _, err := ed.Put(s.name(0), s.content(0, 3), baseTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if x, err := hs.Hash(ctx, h0); err != nil || x == x0 {
		t.Errorf("Hash(%q) after an edit = %q, %v; want a new hash", h0, x, err)
	}
	missing := s.name(77)
	if s.h.MaxItems > 0 {
		if err := ed.Remove(h0); err != nil {
			t.Fatal(err)
		}
		missing = h0
	}
	if _, err := hs.Hash(ctx, missing); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Hash of a missing item = %v, want ErrNotFound", err)
	}
}

func (s *suite) testNotify(t *testing.T) {
	st, ed := s.h.New(t)
	n, ok := st.(repl.Notifier)
	if !ok {
		t.Logf("store is not a repl.Notifier: nothing to check")
		return
	}
	timeout := s.h.NotifyTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	// Item 0 is there before Watch and is modified; item 1 is created, then deleted. A store of
	// one item creates, modifies and deletes item 0.
	one := s.items(2) < 2
	var h0 string
	if !one {
		h0 = s.put(t, ed, 0, 0, baseTime)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan repl.Notification, 1024)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		done <- n.Watch(ctx, func(x repl.Notification) {
			select {
			case ch <- x:
			default:
			}
		})
	}()
	<-started
	// A watcher may need a moment to start (Watch may not see an edit made before it was
	// called): keep editing, on every tick, until a notification arrives. edit is told which
	// attempt it is; one that cannot be repeated acts on the first only.
	wait := func(what string, match func(repl.Notification) bool, edit func(try int)) {
		t.Helper()
		deadline := time.After(timeout)
		tick := time.NewTicker(timeout / 10)
		defer tick.Stop()
		try := 0
		edit(try)
		for {
			select {
			case x := <-ch:
				if match(x) {
					return
				}
			case <-tick.C:
				select {
				case err := <-done:
					t.Fatalf("Watch returned early: %v", err)
				default:
				}
				try++
				edit(try)
			case <-deadline:
				t.Fatalf("no notification for %s within %v", what, timeout)
			}
		}
	}
	v := 1
	var h1 string
	created := 1
	if one {
		created = 0
	}
	wait("a created item", func(x repl.Notification) bool {
		return (x.Kind == repl.ItemCreated || x.Kind == repl.ItemModified) && x.Handle == h1
	}, func(try int) { h1 = s.put(t, ed, created, try, baseTime.Add(time.Duration(try)*time.Minute)) })
	if one {
		h0 = h1
		v = 100 // other content than the creation's
		for len(ch) > 0 {
			<-ch // the creation's own reports
		}
	}
	wait("a modified item", func(x repl.Notification) bool {
		return (x.Kind == repl.ItemModified || x.Kind == repl.ItemCreated) && x.Handle == h0
	}, func(int) { v++; s.put(t, ed, 0, v, baseTime.Add(time.Duration(v)*time.Minute)) })
	wait("a deleted item", func(x repl.Notification) bool {
		return x.Kind == repl.ItemDeleted && x.Handle == h1
	}, func(try int) {
		if try > 0 {
			return
		}
		if err := ed.Remove(h1); err != nil {
			t.Fatal(err)
		}
	})
	cancel()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatal("Watch did not return after its ctx was cancelled")
	}
}

func (s *suite) testUnits(t *testing.T) {
	st, _ := s.h.New(t)
	us, ok := st.(repl.UnitStore)
	if !ok {
		t.Logf("store is not a repl.UnitStore: nothing to check")
		return
	}
	ctx := ctxT(t)
	u0 := s.units(0, 0)
	e, err := us.WriteUnits(ctx, repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, ModTime: baseTime, Size: -1}, u0)
	if err != nil {
		t.Fatalf("WriteUnits(%q): %v", s.name(0), err)
	}
	got, err := us.ReadUnits(ctx, e.Handle)
	if err != nil {
		t.Fatalf("ReadUnits(%q): %v", e.Handle, err)
	}
	if !sameUnits(u0, got) {
		t.Errorf("ReadUnits(%q) = %q, want %q", e.Handle, got, u0)
	}
	u1 := s.units(0, 1)
	stamp := e.Stamp()
	e1, err := us.WriteUnits(ctx, repl.WriteRequest{Handle: e.Handle, Expected: &stamp, Name: s.name(0), Kind: repl.KindFile,
		ModTime: baseTime.Add(time.Hour), Size: -1}, u1)
	if err != nil {
		t.Fatalf("WriteUnits update of %q: %v", e.Handle, err)
	}
	if got, err := us.ReadUnits(ctx, e1.Handle); err != nil || !sameUnits(u1, got) {
		t.Errorf("ReadUnits after update = %q, %v; want %q", got, err, u1)
	}
	if _, err := us.WriteUnits(ctx, repl.WriteRequest{Handle: e.Handle, Expected: &stamp, Name: s.name(0), Kind: repl.KindFile, Size: -1}, u0); !errors.Is(err, repl.ErrChanged) {
		t.Errorf("WriteUnits with a stale Expected = %v, want ErrChanged", err)
	}
	if ch, err := us.IsItemChanged(ctx, enumerate(t, st)[e1.Handle], e1.Stamp()); err != nil || ch {
		t.Errorf("IsItemChanged after WriteUnits, stamp it returned = %v, %v; want false", ch, err)
	}
}

func sameUnits(a, b repl.Units) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
