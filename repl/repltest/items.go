package repltest

// The checks of what every writable store does with its items: enumeration, outside edits,
// writes, updates, stale writes, deletes, folders, moves and natural keys.

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

func (s *suite) testEmpty(t *testing.T) {
	st, _ := s.h.New(t)
	if m := files(enumerate(t, st)); len(m) != 0 {
		t.Errorf("a new store enumerates %v, want no items", keys(m))
	}
}

func (s *suite) testEnumerateEditor(t *testing.T) {
	st, ed := s.h.New(t)
	want := map[string]int{}
	n := s.items(5)
	for i := 0; i < n; i++ {
		want[s.put(t, ed, i, 0, baseTime.Add(time.Duration(i)*time.Minute))] = i
	}
	got := files(enumerate(t, st))
	if len(got) != len(want) {
		t.Fatalf("Enumerate after %d Editor.Put = %v, want %d items", n, keys(got), n)
	}
	for h, i := range want {
		e, ok := got[h]
		if !ok {
			t.Errorf("Enumerate misses %q", h)
			continue
		}
		s.checkEntry(t, "Enumerate", e, h, repl.KindFile, e.Size, baseTime.Add(time.Duration(i)*time.Minute))
		if b := read(t, st, h); !s.same(s.content(i, 0), b) {
			t.Errorf("Open(%q) = %q, want %q", h, b, s.content(i, 0))
		}
	}
}

func (s *suite) testIteratorEOF(t *testing.T) {
	st, ed := s.h.New(t)
	s.put(t, ed, 0, 0, baseTime)
	ctx := ctxT(t)
	it, err := st.Enumerate(ctx)
	if err != nil {
		t.Fatalf("Enumerate: %v", err)
	}
	for n := 0; ; n++ {
		_, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if n > 1000 {
			t.Fatal("Next never returned io.EOF")
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := it.Next(ctx); err != io.EOF {
			t.Errorf("Next after the end = %v, want io.EOF", err)
		}
	}
	if err := it.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := it.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func (s *suite) testOutsideEdits(t *testing.T) {
	if s.items(3) < 3 {
		s.testOutsideEditsOne(t)
		return
	}
	st, ed := s.h.New(t)
	ctx := ctxT(t)
	h0 := s.put(t, ed, 0, 0, baseTime)
	h1 := s.put(t, ed, 1, 0, baseTime)
	h2 := s.put(t, ed, 2, 0, baseTime)
	before := enumerate(t, st)
	for _, h := range []string{h0, h1, h2} {
		e, ok := before[h]
		if !ok {
			t.Fatalf("Enumerate misses %q after Editor.Put", h)
		}
		if ch, err := st.IsItemChanged(ctx, e, e.Stamp()); err != nil || ch {
			t.Errorf("IsItemChanged(%q, its own stamp) = %v, %v; want false", h, ch, err)
		}
		if !st.IsItemReplicated(e) {
			t.Errorf("IsItemReplicated(%q) = false for an item the Editor put", h)
		}
	}
	// Edit item 1 (new content and time), delete item 2.
	if h, err := ed.Put(s.name(1), s.content(1, 7), baseTime.Add(time.Hour)); err != nil || h != h1 {
		t.Fatalf("Editor.Put over %q = %q, %v", h1, h, err)
	}
	if err := ed.Remove(h2); err != nil {
		t.Fatalf("Editor.Remove(%q): %v", h2, err)
	}
	after := files(enumerate(t, st))
	if _, ok := after[h2]; ok {
		t.Errorf("Enumerate still reports %q after Editor.Remove", h2)
	}
	if len(after) != 2 {
		t.Errorf("Enumerate after edits = %v, want [%s %s]", keys(after), h0, h1)
	}
	e1, ok := after[h1]
	if !ok {
		t.Fatalf("Enumerate misses edited %q", h1)
	}
	if ch, err := st.IsItemChanged(ctx, e1, before[h1].Stamp()); err != nil || !ch {
		t.Errorf("IsItemChanged(%q edited, old stamp) = %v, %v; want true", h1, ch, err)
	}
	if ch, err := st.IsItemChanged(ctx, after[h0], before[h0].Stamp()); err != nil || ch {
		t.Errorf("IsItemChanged(%q untouched, old stamp) = %v, %v; want false", h0, ch, err)
	}
	if b := read(t, st, h1); !s.same(s.content(1, 7), b) {
		t.Errorf("Open(%q) after edit = %q, want %q", h1, b, s.content(1, 7))
	}
	if _, err := st.Open(ctx, h2); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open(%q) after Editor.Remove = %v, want ErrNotFound", h2, err)
	}
	if s.h.ReadOnly {
		return
	}
	// A Write or Delete based on the stamp from before the edit must be refused.
	old := before[h1].Stamp()
	data := s.content(1, 8)
	_, err := st.Write(ctx, repl.WriteRequest{Handle: h1, Expected: &old, Name: s.name(1), Kind: repl.KindFile,
		Size: int64(len(data)), ModTime: baseTime.Add(2 * time.Hour), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrChanged) {
		t.Errorf("Write(%q) with the stamp from before an outside edit = %v, want ErrChanged", h1, err)
	}
	if err := st.Delete(ctx, h1, old); !errors.Is(err, repl.ErrChanged) {
		t.Errorf("Delete(%q) with the stamp from before an outside edit = %v, want ErrChanged", h1, err)
	}
	if b := read(t, st, h1); !s.same(s.content(1, 7), b) {
		t.Errorf("after refused stale Write/Delete, %q = %q, want the user's %q", h1, b, s.content(1, 7))
	}
}

// testOutsideEditsOne is testOutsideEdits for a store of fewer than three items: one item edited,
// then removed.
func (s *suite) testOutsideEditsOne(t *testing.T) {
	st, ed := s.h.New(t)
	ctx := ctxT(t)
	h0 := s.put(t, ed, 0, 0, baseTime)
	before, ok := enumerate(t, st)[h0]
	if !ok {
		t.Fatalf("Enumerate misses %q after Editor.Put", h0)
	}
	if ch, err := st.IsItemChanged(ctx, before, before.Stamp()); err != nil || ch {
		t.Errorf("IsItemChanged(%q, its own stamp) = %v, %v; want false", h0, ch, err)
	}
	if !st.IsItemReplicated(before) {
		t.Errorf("IsItemReplicated(%q) = false for an item the Editor put", h0)
	}
	if h, err := ed.Put(s.name(0), s.content(0, 7), baseTime.Add(time.Hour)); err != nil || h != h0 {
		t.Fatalf("Editor.Put over %q = %q, %v", h0, h, err)
	}
	after, ok := files(enumerate(t, st))[h0]
	if !ok {
		t.Fatalf("Enumerate misses edited %q", h0)
	}
	if ch, err := st.IsItemChanged(ctx, after, before.Stamp()); err != nil || !ch {
		t.Errorf("IsItemChanged(%q edited, old stamp) = %v, %v; want true", h0, ch, err)
	}
	if b := read(t, st, h0); !s.same(s.content(0, 7), b) {
		t.Errorf("Open(%q) after edit = %q, want %q", h0, b, s.content(0, 7))
	}
	if !s.h.ReadOnly {
		old := before.Stamp()
		data := s.content(0, 8)
		_, err := st.Write(ctx, repl.WriteRequest{Handle: h0, Expected: &old, Name: s.name(0), Kind: repl.KindFile,
			Size: int64(len(data)), ModTime: baseTime.Add(2 * time.Hour), Data: bytes.NewReader(data)})
		if !errors.Is(err, repl.ErrChanged) {
			t.Errorf("Write(%q) with the stamp from before an outside edit = %v, want ErrChanged", h0, err)
		}
		if err := st.Delete(ctx, h0, old); !errors.Is(err, repl.ErrChanged) {
			t.Errorf("Delete(%q) with the stamp from before an outside edit = %v, want ErrChanged", h0, err)
		}
		if b := read(t, st, h0); !s.same(s.content(0, 7), b) {
			t.Errorf("after refused stale Write/Delete, %q = %q, want the user's %q", h0, b, s.content(0, 7))
		}
	}
	if err := ed.Remove(h0); err != nil {
		t.Fatalf("Editor.Remove(%q): %v", h0, err)
	}
	if got := files(enumerate(t, st)); len(got) != 0 {
		t.Errorf("Enumerate after Editor.Remove = %v, want nothing", keys(got))
	}
	if _, err := st.Open(ctx, h0); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open(%q) after Editor.Remove = %v, want ErrNotFound", h0, err)
	}
}

func (s *suite) testReadOnly(t *testing.T) {
	st, ed := s.h.New(t)
	ctx := ctxT(t)
	h := s.put(t, ed, 0, 0, baseTime)
	e := enumerate(t, st)[h]
	data := s.content(1, 0)
	if s.items(2) == 2 {
		_, err := st.Write(ctx, repl.WriteRequest{Name: s.name(1), Kind: repl.KindFile, Size: int64(len(data)), Data: bytes.NewReader(data)})
		if !errors.Is(err, repl.ErrReadOnly) {
			t.Errorf("Write to a read-only store = %v, want ErrReadOnly", err)
		}
	}
	stamp := e.Stamp()
	_, err := st.Write(ctx, repl.WriteRequest{Handle: h, Expected: &stamp, Name: s.name(0), Kind: repl.KindFile, Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrReadOnly) {
		t.Errorf("update in a read-only store = %v, want ErrReadOnly", err)
	}
	if err := st.Delete(ctx, h, stamp); !errors.Is(err, repl.ErrReadOnly) {
		t.Errorf("Delete in a read-only store = %v, want ErrReadOnly", err)
	}
	if got := files(enumerate(t, st)); len(got) != 1 {
		t.Errorf("read-only store holds %v after refused writes, want only %q", keys(got), h)
	}
	if b := read(t, st, h); !s.same(s.content(0, 0), b) {
		t.Errorf("read-only item %q = %q after refused writes, want %q", h, b, s.content(0, 0))
	}
}

func (s *suite) testWriteEnumerate(t *testing.T) {
	st, _ := s.h.New(t)
	ctx := ctxT(t)
	written := map[string]int{}
	fromWrite := map[string]repl.Entry{}
	n := s.items(8)
	for i := 0; i < n; i++ {
		e := s.create(t, st, i, 0)
		if _, dup := written[e.Handle]; dup {
			t.Fatalf("Write returned handle %q twice", e.Handle)
		}
		written[e.Handle] = i
		fromWrite[e.Handle] = e
		s.checkEntry(t, "Write", e, e.Handle, repl.KindFile, s.heldSize(t, st, e.Handle, s.content(i, 0)), baseTime.Add(time.Duration(i)*time.Hour))
	}
	got := enumerate(t, st)
	fs := files(got)
	if len(fs) != len(written) {
		t.Fatalf("Enumerate after %d writes = %v, want %d items", n, keys(fs), n)
	}
	for h, i := range written {
		e, ok := got[h]
		if !ok {
			t.Errorf("Enumerate misses %q", h)
			continue
		}
		s.checkEntry(t, "Enumerate", e, h, repl.KindFile, s.heldSize(t, st, h, s.content(i, 0)), baseTime.Add(time.Duration(i)*time.Hour))
		if b := read(t, st, h); !s.same(s.content(i, 0), b) {
			t.Errorf("Open(%q) = %q, want %q", h, b, s.content(i, 0))
		}
		// The stamp of the entry Write returned must not look changed to the next detection.
		if ch, err := st.IsItemChanged(ctx, e, fromWrite[h].Stamp()); err != nil || ch {
			t.Errorf("IsItemChanged(%q, stamp Write returned) = %v, %v; want false: the engine would see its own write as a change", h, ch, err)
		}
	}
}

func (s *suite) testModTime(t *testing.T) {
	st, _ := s.h.New(t)
	times := []time.Time{
		time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC),
		time.Date(2026, 11, 21, 23, 59, 58, 123456789, time.UTC),
		time.Date(1999, 12, 31, 12, 0, 0, 0, time.FixedZone("CET", 3600)),
	}
	var prev repl.Entry
	for i, mt := range times {
		data := s.content(i, 0)
		req := repl.WriteRequest{Name: s.name(i), Kind: repl.KindFile, ModTime: mt}
		if s.items(2) < 2 && i > 0 { // one item: update it
			stamp := prev.Stamp()
			req.Name, req.Handle, req.Expected = s.name(0), prev.Handle, &stamp
		}
		e := s.write(t, st, req, data)
		prev = e
		got := enumerate(t, st)[e.Handle]
		if !s.timeClose(mt, got.ModTime) {
			t.Errorf("modification time of %q = %v, want %v (granularity %v)", e.Handle, got.ModTime, mt, s.h.TimeGranularity)
		}
		if !s.timeClose(mt, e.ModTime) {
			t.Errorf("Write returned modification time %v for %q, want %v", e.ModTime, e.Handle, mt)
		}
	}
}

func (s *suite) testUpdate(t *testing.T) {
	st, _ := s.h.New(t)
	ctx := ctxT(t)
	e := s.create(t, st, 0, 0)
	stamp := e.Stamp()
	mod := baseTime.Add(48 * time.Hour)
	e2 := s.write(t, st, repl.WriteRequest{Handle: e.Handle, Expected: &stamp, Name: s.name(0), Kind: repl.KindFile, ModTime: mod}, s.content(0, 1))
	if e2.Handle != e.Handle {
		t.Errorf("update of %q returned handle %q", e.Handle, e2.Handle)
	}
	if b := read(t, st, e.Handle); !s.same(s.content(0, 1), b) {
		t.Errorf("after update, %q = %q, want %q", e.Handle, b, s.content(0, 1))
	}
	got := files(enumerate(t, st))
	if len(got) != 1 {
		t.Errorf("Enumerate after an update = %v, want one item", keys(got))
	}
	s.checkEntry(t, "after update", got[e.Handle], e.Handle, repl.KindFile, s.heldSize(t, st, e.Handle, s.content(0, 1)), mod)
	// Stale expected: the stamp before the update.
	data := s.content(0, 2)
	_, err := st.Write(ctx, repl.WriteRequest{Handle: e.Handle, Expected: &stamp, Name: s.name(0), Kind: repl.KindFile,
		Size: int64(len(data)), ModTime: mod.Add(time.Hour), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrChanged) {
		t.Errorf("Write with a stale Expected = %v, want ErrChanged", err)
	}
	if b := read(t, st, e.Handle); !s.same(s.content(0, 1), b) {
		t.Errorf("a refused Write changed %q to %q", e.Handle, b)
	}
	// Updating a handle that does not exist (in a store of one item: the item, deleted).
	missing, missingName, missingHandle := e2.Stamp(), s.name(99), s.name(99)
	if s.h.MaxItems > 0 {
		if err := st.Delete(ctx, e2.Handle, missing); err != nil {
			t.Fatalf("Delete(%q): %v", e2.Handle, err)
		}
		missingName, missingHandle = s.name(0), e2.Handle
	}
	_, err = st.Write(ctx, repl.WriteRequest{Handle: missingHandle, Expected: &missing, Name: missingName, Kind: repl.KindFile,
		Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("update of missing %q = %v, want ErrNotFound", missingHandle, err)
	}
}

func (s *suite) testStaleWrite(t *testing.T) {
	st, ed := s.h.New(t)
	ctx := ctxT(t)
	e := s.create(t, st, 0, 0)
	stamp := e.Stamp()
	if _, err := ed.Put(s.name(0), s.content(0, 5), baseTime.Add(time.Hour)); err != nil {
		t.Fatalf("Editor.Put: %v", err)
	}
	data := s.content(0, 6)
	_, err := st.Write(ctx, repl.WriteRequest{Handle: e.Handle, Expected: &stamp, Name: s.name(0), Kind: repl.KindFile,
		Size: int64(len(data)), ModTime: baseTime.Add(2 * time.Hour), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrChanged) {
		t.Errorf("Write over a user's edit = %v, want ErrChanged", err)
	}
	if b := read(t, st, e.Handle); !s.same(s.content(0, 5), b) {
		t.Errorf("the user's edit of %q was overwritten: %q", e.Handle, b)
	}
}

func (s *suite) testCreateExisting(t *testing.T) {
	st, _ := s.h.New(t)
	e := s.create(t, st, 0, 0)
	data := s.content(0, 1)
	_, err := st.Write(ctxT(t), repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrExists) {
		t.Errorf("create over existing %q = %v, want ErrExists", e.Handle, err)
	}
	if b := read(t, st, e.Handle); !s.same(s.content(0, 0), b) {
		t.Errorf("a refused create changed %q to %q", e.Handle, b)
	}
}

func (s *suite) testDelete(t *testing.T) {
	st, _ := s.h.New(t)
	ctx := ctxT(t)
	e := s.create(t, st, 0, 0)
	var keep repl.Entry
	if s.items(2) == 2 {
		keep = s.create(t, st, 1, 0)
	}
	bad := e.Stamp()
	bad.Size++
	bad.ModTime += int64(time.Hour)
	bad.Hash = ""
	if err := st.Delete(ctx, e.Handle, bad); !errors.Is(err, repl.ErrChanged) {
		t.Errorf("Delete(%q) with a wrong stamp = %v, want ErrChanged", e.Handle, err)
	}
	if err := st.Delete(ctx, e.Handle, e.Stamp()); err != nil {
		t.Fatalf("Delete(%q): %v", e.Handle, err)
	}
	got := files(enumerate(t, st))
	if _, ok := got[e.Handle]; ok || len(got) != s.items(2)-1 {
		t.Errorf("Enumerate after Delete(%q) = %v, want only %q", e.Handle, keys(got), keep.Handle)
	}
	if _, err := st.Open(ctx, e.Handle); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open(%q) after Delete = %v, want ErrNotFound", e.Handle, err)
	}
	if err := st.Delete(ctx, e.Handle, e.Stamp()); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("second Delete(%q) = %v, want ErrNotFound", e.Handle, err)
	}
}

func (s *suite) testFolders(t *testing.T) {
	st, _ := s.h.New(t)
	ctx := ctxT(t)
	dir := s.write(t, st, repl.WriteRequest{Name: "album", Kind: repl.KindFolder}, nil)
	if dir.Kind != repl.KindFolder {
		t.Errorf("Write of folder returned kind %v", dir.Kind)
	}
	child := s.write(t, st, repl.WriteRequest{Name: "album/one.txt", Kind: repl.KindFile, ModTime: baseTime}, []byte("one"))
	deep := s.write(t, st, repl.WriteRequest{Name: "deep/er/two.txt", Kind: repl.KindFile, ModTime: baseTime}, []byte("two"))
	got := enumerate(t, st)
	for _, h := range []string{dir.Handle, child.Handle, deep.Handle} {
		if _, ok := got[h]; !ok {
			t.Errorf("Enumerate misses %q; got %v", h, keys(got))
		}
	}
	if got[dir.Handle].Kind != repl.KindFolder {
		t.Errorf("Enumerate reports %q as %v, want folder", dir.Handle, got[dir.Handle].Kind)
	}
	folders := 0
	for _, e := range got {
		if e.Kind == repl.KindFolder {
			folders++
		}
	}
	if folders < 3 {
		t.Errorf("Enumerate reports %d folders, want at least 3 (album, deep, deep/er): %v", folders, keys(got))
	}
	if err := st.Delete(ctx, dir.Handle, got[dir.Handle].Stamp()); !errors.Is(err, repl.ErrNotEmpty) {
		t.Errorf("Delete of a folder holding an item = %v, want ErrNotEmpty", err)
	}
	if err := st.Delete(ctx, child.Handle, got[child.Handle].Stamp()); err != nil {
		t.Fatalf("Delete(%q): %v", child.Handle, err)
	}
	if err := st.Delete(ctx, dir.Handle, got[dir.Handle].Stamp()); err != nil {
		t.Errorf("Delete of the emptied folder %q: %v", dir.Handle, err)
	}
	if _, ok := enumerate(t, st)[dir.Handle]; ok {
		t.Errorf("folder %q still enumerated after Delete", dir.Handle)
	}
}

func (s *suite) testMove(t *testing.T) {
	st, _ := s.h.New(t)
	ctx := ctxT(t)
	a := s.create(t, st, 0, 0)
	b := s.create(t, st, 1, 0)
	stamp := a.Stamp()
	newName := s.name(2)
	if s.h.Folders {
		newName = "moved/" + s.name(2)
	}
	m := s.write(t, st, repl.WriteRequest{Handle: a.Handle, Expected: &stamp, Name: newName, Kind: repl.KindFile, ModTime: baseTime}, s.content(0, 0))
	got := enumerate(t, st)
	if _, ok := got[a.Handle]; ok {
		t.Errorf("after moving %q to %q, the old handle is still enumerated", a.Handle, newName)
	}
	if _, ok := got[m.Handle]; !ok {
		t.Errorf("after moving %q to %q, Enumerate misses the new handle %q: %v", a.Handle, newName, m.Handle, keys(got))
	}
	if c := read(t, st, m.Handle); !s.same(s.content(0, 0), c) {
		t.Errorf("moved item %q = %q, want %q", m.Handle, c, s.content(0, 0))
	}
	if _, err := st.Open(ctx, a.Handle); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open(old handle %q) after a move = %v, want ErrNotFound", a.Handle, err)
	}
	// Move and update at once.
	ms := m.Stamp()
	m2 := s.write(t, st, repl.WriteRequest{Handle: m.Handle, Expected: &ms, Name: s.name(3), Kind: repl.KindFile, ModTime: baseTime}, s.content(0, 1))
	if c := read(t, st, m2.Handle); !s.same(s.content(0, 1), c) {
		t.Errorf("moved and updated item %q = %q, want %q", m2.Handle, c, s.content(0, 1))
	}
	// Onto an existing item: refused, both untouched.
	bs := b.Stamp()
	data := s.content(1, 0)
	_, err := st.Write(ctx, repl.WriteRequest{Handle: b.Handle, Expected: &bs, Name: s.name(3), Kind: repl.KindFile,
		Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrExists) {
		t.Errorf("move %q onto existing %q = %v, want ErrExists", b.Handle, m2.Handle, err)
	}
	if c := read(t, st, m2.Handle); !s.same(s.content(0, 1), c) {
		t.Errorf("a refused move overwrote %q with %q", m2.Handle, c)
	}
	if c := read(t, st, b.Handle); !s.same(s.content(1, 0), c) {
		t.Errorf("a refused move changed %q to %q", b.Handle, c)
	}
}

func (s *suite) testNaturalKey(t *testing.T) {
	st, ed := s.h.New(t)
	ctx := ctxT(t)
	for i := 0; i < s.items(4); i++ {
		s.put(t, ed, i, 0, baseTime)
	}
	ents := files(enumerate(t, st))
	keyOf := map[string]string{}
	seen := map[string]string{}
	for h, e := range ents {
		k, err := st.NaturalKey(ctx, e)
		if err != nil {
			t.Fatalf("NaturalKey(%q): %v", h, err)
		}
		if k == "" {
			t.Errorf("NaturalKey(%q) is empty", h)
		}
		if k2, err := st.NaturalKey(ctx, e); err != nil || k2 != k {
			t.Errorf("NaturalKey(%q) = %q then %q, %v; want stable", h, k, k2, err)
		}
		if o, dup := seen[k]; dup {
			t.Errorf("NaturalKey(%q) = NaturalKey(%q) = %q; distinct items need distinct keys", h, o, k)
		}
		seen[k] = h
		keyOf[h] = k
	}
	if s.h.Reopen == nil {
		return
	}
	st2 := s.h.Reopen(t, st)
	ents2 := files(enumerate(t, st2))
	if len(ents2) != len(ents) {
		t.Fatalf("after Reopen, Enumerate = %v, want %v", keys(ents2), keys(ents))
	}
	for h, e := range ents2 {
		want, ok := keyOf[h]
		if !ok {
			t.Errorf("handle %q appeared after Reopen; handles must be stable", h)
			continue
		}
		if k, err := st2.NaturalKey(ctx, e); err != nil || k != want {
			t.Errorf("after Reopen, NaturalKey(%q) = %q, %v; want %q", h, k, err, want)
		}
		if ch, err := st2.IsItemChanged(ctx, e, ents[h].Stamp()); err != nil || ch {
			t.Errorf("after Reopen, IsItemChanged(%q, stamp before) = %v, %v; want false", h, ch, err)
		}
	}
}
