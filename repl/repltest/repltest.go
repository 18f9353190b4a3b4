// Package repltest is the conformance suite every repl.Store implementation runs from its tests,
// so that the engine can rely on the same behaviour from the desktop folder, the device over MTP,
// a contacts file or a plugin.
//
// # Wiring it up
//
// A store's test file calls Run with a Harness:
//
//	func TestConformance(t *testing.T) {
//		repltest.Run(t, repltest.Harness{
//			New: func(t *testing.T) (repl.Store, repltest.Editor) {
//				dir := t.TempDir()
//				s, err := files.Open(dir)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s, folderEditor{dir} // edits files in dir with package os
//			},
//			Reopen:  func(t *testing.T, s repl.Store) repl.Store { ... same dir ... },
//			Folders: true,
//			Moves:   true,
//		})
//	}
//
// New makes a fresh, empty store for every subtest, together with an Editor that changes the
// store's underlying data out of band, the way a user would (writing a file in the folder,
// deleting a contact in the address book), without going through the Store. The suite uses it to
// check what the engine depends on: that outside changes show in Enumerate and IsItemChanged, that
// a stale Write or Delete is refused with ErrChanged, and that a Notifier reports them.
//
// # Capabilities
//
// Everything a store may or may not do is opt-in, so a read-only store (a camera's card), a
// one-file-many-items store (a contacts file whose items are vCards named by UID) and a store
// without folders can all run the suite:
//
//   - ReadOnly: Write and Delete must fail with repl.ErrReadOnly and change nothing; the other
//     checks fill the store through the Editor.
//   - Folders: the store has folder items (repl.KindFolder); Write creates missing parent folders;
//     deleting a folder that holds items is repl.ErrNotEmpty.
//   - Moves: a Write whose Name maps to another handle renames or moves the item.
//   - TimeGranularity: how finely modification times are kept (MTP keeps seconds); NoModTime for
//     a store that keeps none (round-trip checks of times are then skipped).
//   - Name and Content: valid item names and contents for the store (a contacts store needs UIDs
//     and vCards).
//   - SameContent: for a store that normalises content (reformats a card, re-encodes a calendar
//     entry): content read back is compared with it instead of byte for byte, and the sizes the
//     store reports (from Write, Enumerate, Stat) are checked against the bytes it holds (what
//     Open returns), not against the bytes written.
//   - MaxItems: for a store that holds a fixed number of items (1 for a store of one file, such
//     as a settings file or one file standing for a whole folder): the checks write and edit at
//     most that many, use only Name(0) .. Name(MaxItems-1), and find a missing item by removing
//     one. A store of one item has no moves.
//   - The optional interfaces are found by type assertion: a repl.Stater, repl.Notifier,
//     repl.Hasher or repl.UnitStore gets its checks; a store whose repl.Atomicity says writes are
//     not atomic may leave a partial item after a failed write (the engine cleans it up), an
//     atomic one must not.
//
// # What is checked
//
// Enumeration equals what was written (handles, kinds, sizes, times) and what the Editor did;
// an iterator keeps returning io.EOF after the end and can be closed twice; Write creates,
// updates, renames and moves; content and modification time round-trip and the returned Entry's
// stamp matches what Enumerate reports (so the engine does not see its own writes as changes);
// Expected stamps are enforced (ErrChanged, content untouched); ErrExists on a create over an
// existing item; ErrNotFound from Open, Write and Delete of a missing handle; ErrNotEmpty;
// NaturalKey is distinct per item and stable across calls and across Reopen; a Write whose ctx is
// cancelled or whose data fails or ends short leaves no partial item; invalid names are refused
// with ErrInvalidName; a few MB of content stream through a plain io.Reader; concurrent reads
// are safe (run the suite with -race); Stat, Hash, Watch and units behave as their interfaces say.
package repltest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

// Editor changes a store's underlying data without going through the Store, the way a user or
// another program would. Its methods may be called while the store is in use.
type Editor interface {
	// Put creates or replaces the file item called name with data and modTime and returns the
	// handle the store will report for it.
	Put(name string, data []byte, modTime time.Time) (handle string, err error)
	// Remove deletes the item at handle.
	Remove(handle string) error
}

// Renamer is an Editor that can also rename an item out of band.
type Renamer interface {
	// Rename gives the item at handle the name newName and returns its new handle.
	Rename(handle, newName string) (newHandle string, err error)
}

// Harness describes a store under test. Only New is required.
type Harness struct {
	// New returns a fresh, empty store and its Editor. It is called once per subtest; cleanup
	// goes through t.Cleanup.
	New func(t *testing.T) (repl.Store, Editor)
	// Reopen, if set, returns a new Store over the same underlying data as s (NaturalKey and
	// handles must survive it).
	Reopen func(t *testing.T, s repl.Store) repl.Store

	ReadOnly  bool // Write and Delete fail with repl.ErrReadOnly
	Folders   bool // folder items, parents created by Write, ErrNotEmpty
	Moves     bool // Write renames and moves
	NoModTime bool // modification times are not kept
	// TimeGranularity is how finely modification times are kept; zero means exactly.
	TimeGranularity time.Duration

	// Name returns the i-th valid item name (i >= 0); nil gives "item-000.txt" and so on. With
	// Folders, the suite also writes names under "nested/".
	Name func(i int) string
	// Content returns valid content for item i at version v; nil gives a line of text.
	Content func(i, v int) []byte
	// SameContent compares content written with content read back; nil is bytes.Equal. When set,
	// sizes are checked against the content the store holds, not the bytes written (a store that
	// normalises content reports the size of what it keeps).
	SameContent func(want, got []byte) bool
	// MaxItems is how many file items the store can hold at once; 0 means no limit. With it the
	// checks use only Name(0) .. Name(MaxItems-1).
	MaxItems int
	// LargeSize is the size of the large-content check; 0 means 4 MiB, negative skips it (only
	// for a store whose items cannot be large, such as contacts).
	LargeSize int
	// InvalidNames must all be refused with repl.ErrInvalidName; nil uses a default list, an
	// empty non-nil slice skips the check.
	InvalidNames []string
	// Units returns the units of item i at version v for a repl.UnitStore; nil gives a small set.
	Units func(i, v int) repl.Units
	// NotifyTimeout bounds how long a notification may take; 0 means 5 seconds.
	NotifyTimeout time.Duration
}

// DefaultInvalidNames are refused by every store.
var DefaultInvalidNames = []string{"", "/abs.txt", "a//b.txt", "trailing/", "../up.txt", "a/../b.txt", "./x.txt", ".", "..", "nul\x00.txt", "back\\slash.txt", "ctl\x01.txt", "bad\xff.txt"}

type suite struct {
	h Harness
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("repltest.Harness.New is nil")
	}
	s := &suite{h: h}
	tests := []struct {
		name string
		run  func(t *testing.T)
		skip string
	}{
		{"Empty", s.testEmpty, ""},
		{"EnumerateEditorItems", s.testEnumerateEditor, ""},
		{"IteratorEOF", s.testIteratorEOF, ""},
		{"OutsideEdits", s.testOutsideEdits, ""},
		{"ReadOnly", s.testReadOnly, cond(!h.ReadOnly, "store is writable")},
		{"WriteEnumerate", s.testWriteEnumerate, cond(h.ReadOnly, "read-only store")},
		{"ModTime", s.testModTime, cond(h.ReadOnly || h.NoModTime, "read-only store or no modification times")},
		{"Update", s.testUpdate, cond(h.ReadOnly, "read-only store")},
		{"StaleWrite", s.testStaleWrite, cond(h.ReadOnly, "read-only store")},
		{"CreateExisting", s.testCreateExisting, cond(h.ReadOnly, "read-only store")},
		{"Delete", s.testDelete, cond(h.ReadOnly, "read-only store")},
		{"Folders", s.testFolders, cond(h.ReadOnly || !h.Folders, "no folders")},
		{"Move", s.testMove, cond(h.ReadOnly || !h.Moves || h.MaxItems == 1, "no moves")},
		{"NaturalKey", s.testNaturalKey, ""},
		{"CancelledWrite", s.testCancelledWrite, cond(h.ReadOnly, "read-only store")},
		{"FailingData", s.testFailingData, cond(h.ReadOnly, "read-only store")},
		{"ShortData", s.testShortData, cond(h.ReadOnly, "read-only store")},
		{"InvalidNames", s.testInvalidNames, cond(h.ReadOnly || (h.InvalidNames != nil && len(h.InvalidNames) == 0), "read-only store or no invalid names")},
		{"Large", s.testLarge, cond(h.ReadOnly || h.LargeSize < 0, "read-only store or large items not supported")},
		{"ConcurrentReads", s.testConcurrentReads, ""},
		{"Stat", s.testStat, ""},
		{"Hash", s.testHash, ""},
		{"Notify", s.testNotify, ""},
		{"Units", s.testUnits, cond(h.ReadOnly, "read-only store")},
	}
	var left []string
	for _, tc := range tests {
		if tc.skip != "" {
			left = append(left, tc.name+" ("+tc.skip+")")
			continue
		}
		t.Run(tc.name, tc.run)
	}
	if len(left) > 0 {
		t.Logf("checks that do not apply to this store: %s", strings.Join(left, ", "))
	}
}

func cond(b bool, why string) string {
	if b {
		return why
	}
	return ""
}

// ---- helpers ----

func (s *suite) name(i int) string {
	if s.h.Name != nil {
		return s.h.Name(i)
	}
	return fmt.Sprintf("item-%03d.txt", i)
}

func (s *suite) content(i, v int) []byte {
	if s.h.Content != nil {
		return s.h.Content(i, v)
	}
	return []byte(fmt.Sprintf("item %d, version %d: %s\n", i, v, strings.Repeat("x", i+v)))
}

// items returns how many items of n a check may use: n, or fewer for a store of MaxItems.
func (s *suite) items(n int) int {
	if s.h.MaxItems > 0 && s.h.MaxItems < n {
		return s.h.MaxItems
	}
	return n
}

// heldSize is the size the store should report for the item at handle that was written with
// data: len(data), or for a store that normalises content the size of what it holds.
func (s *suite) heldSize(t *testing.T, st repl.Store, handle string, data []byte) int64 {
	t.Helper()
	if s.h.SameContent == nil {
		return int64(len(data))
	}
	return int64(len(read(t, st, handle)))
}

func (s *suite) same(want, got []byte) bool {
	if s.h.SameContent != nil {
		return s.h.SameContent(want, got)
	}
	return bytes.Equal(want, got)
}

func (s *suite) units(i, v int) repl.Units {
	if s.h.Units != nil {
		return s.h.Units(i, v)
	}
	return repl.Units{
		"N":     []byte(fmt.Sprintf("Person %d", i)),
		"TEL":   []byte(fmt.Sprintf("+44 20 7946 %04d", v)),
		"EMAIL": []byte(fmt.Sprintf("p%d@example.org", i)),
	}
}

// baseTime is a fixed, whole-second time in the past, so stores that keep seconds keep it exactly.
var baseTime = time.Date(2024, 3, 14, 15, 9, 26, 0, time.UTC)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func enumerate(t *testing.T, st repl.Store) map[string]repl.Entry {
	t.Helper()
	ctx := ctxT(t)
	it, err := st.Enumerate(ctx)
	if err != nil {
		t.Fatalf("Enumerate: %v", err)
	}
	defer it.Close()
	m := map[string]repl.Entry{}
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Iterator.Next: %v", err)
		}
		if !st.IsItemReplicated(e) {
			continue
		}
		if _, dup := m[e.Handle]; dup {
			t.Fatalf("Enumerate reported handle %q twice", e.Handle)
		}
		m[e.Handle] = e
	}
	if err := it.Close(); err != nil {
		t.Fatalf("Iterator.Close: %v", err)
	}
	return m
}

func files(m map[string]repl.Entry) map[string]repl.Entry {
	out := map[string]repl.Entry{}
	for h, e := range m {
		if e.Kind == repl.KindFile {
			out[h] = e
		}
	}
	return out
}

func keys(m map[string]repl.Entry) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func read(t *testing.T, st repl.Store, handle string) []byte {
	t.Helper()
	rc, err := st.Open(ctxT(t), handle)
	if err != nil {
		t.Fatalf("Open(%q): %v", handle, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", handle, err)
	}
	return b
}

func (s *suite) write(t *testing.T, st repl.Store, req repl.WriteRequest, data []byte) repl.Entry {
	t.Helper()
	if req.Kind == repl.KindFile {
		req.Data = bytes.NewReader(data)
		req.Size = int64(len(data))
	}
	e, err := st.Write(ctxT(t), req)
	if err != nil {
		t.Fatalf("Write(%q over %q): %v", req.Name, req.Handle, err)
	}
	return e
}

func (s *suite) create(t *testing.T, st repl.Store, i, v int) repl.Entry {
	t.Helper()
	return s.write(t, st, repl.WriteRequest{Name: s.name(i), Kind: repl.KindFile,
		ModTime: baseTime.Add(time.Duration(i) * time.Hour)}, s.content(i, v))
}

func (s *suite) put(t *testing.T, ed Editor, i, v int, mod time.Time) string {
	t.Helper()
	h, err := ed.Put(s.name(i), s.content(i, v), mod)
	if err != nil {
		t.Fatalf("Editor.Put(%q): %v", s.name(i), err)
	}
	return h
}

func (s *suite) timeClose(want, got time.Time) bool {
	g := s.h.TimeGranularity
	d := want.Sub(got)
	if d < 0 {
		d = -d
	}
	if g == 0 {
		return want.Equal(got)
	}
	return d < g
}

func (s *suite) checkEntry(t *testing.T, what string, got repl.Entry, handle string, kind repl.Kind, size int64, mod time.Time) {
	t.Helper()
	if got.Handle != handle || got.Kind != kind {
		t.Errorf("%s: entry %q (%v), want %q (%v)", what, got.Handle, got.Kind, handle, kind)
	}
	if kind == repl.KindFile && got.Size != size {
		t.Errorf("%s: %q has size %d, want %d", what, handle, got.Size, size)
	}
	if !s.h.NoModTime && kind == repl.KindFile && !mod.IsZero() && !s.timeClose(mod, got.ModTime) {
		t.Errorf("%s: %q has modification time %v, want %v (granularity %v)", what, handle, got.ModTime, mod, s.h.TimeGranularity)
	}
}

// ---- checks ----

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

func atomic(st repl.Store) bool {
	a, ok := st.(repl.Atomicity)
	return !ok || a.WritesAtomic()
}

// cancelReader returns data in small pieces and cancels ctx after the first one.
type cancelReader struct {
	data   []byte
	cancel context.CancelFunc
	n      int
}

func (r *cancelReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.n > 0 {
		r.cancel()
	}
	r.n++
	k := min(len(p), len(r.data), 1024)
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

func (s *suite) testCancelledWrite(t *testing.T) {
	st, _ := s.h.New(t)
	big := bytes.Repeat([]byte("cancel me "), 64<<10/10)
	// A create.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := st.Write(ctx, repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(len(big)),
		ModTime: baseTime, Data: &cancelReader{data: big, cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write whose ctx was cancelled mid-stream = %v, want context.Canceled", err)
	}
	if atomic(st) {
		if got := files(enumerate(t, st)); len(got) != 0 {
			t.Errorf("a cancelled create left %v visible", keys(got))
		}
	}
	// An update: the old content must stay.
	i := s.items(2) - 1
	e := s.create(t, st, i, 0)
	stamp := e.Stamp()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	_, err = st.Write(ctx2, repl.WriteRequest{Handle: e.Handle, Expected: &stamp, Name: s.name(i), Kind: repl.KindFile,
		Size: int64(len(big)), ModTime: baseTime, Data: &cancelReader{data: big, cancel: cancel2}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("update whose ctx was cancelled mid-stream = %v, want context.Canceled", err)
	}
	if atomic(st) {
		if b := read(t, st, e.Handle); !s.same(s.content(i, 0), b) {
			t.Errorf("a cancelled update left %q with %d bytes, want the old content", e.Handle, len(b))
		}
	}
}

var errSource = errors.New("source went away")

type failingReader struct {
	data []byte
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errSource
	}
	k := min(len(p), len(r.data), 1024)
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

func (s *suite) testFailingData(t *testing.T) {
	st, _ := s.h.New(t)
	data := bytes.Repeat([]byte("abc"), 10000)
	_, err := st.Write(ctxT(t), repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(len(data)) * 2,
		ModTime: baseTime, Data: &failingReader{data: data}})
	if !errors.Is(err, errSource) {
		t.Errorf("Write whose data fails = %v, want the reader's error wrapped", err)
	}
	if atomic(st) {
		if got := files(enumerate(t, st)); len(got) != 0 {
			t.Errorf("a failed create left %v visible", keys(got))
		}
	}
}

func (s *suite) testShortData(t *testing.T) {
	st, _ := s.h.New(t)
	data := s.content(0, 0)
	_, err := st.Write(ctxT(t), repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(len(data)) + 100,
		ModTime: baseTime, Data: bytes.NewReader(data)})
	if err == nil {
		t.Errorf("Write of %d bytes announced as %d succeeded, want an error (the source changed or was cut short)", len(data), len(data)+100)
	}
	if atomic(st) {
		if got := files(enumerate(t, st)); len(got) != 0 {
			t.Errorf("a short write left %v visible", keys(got))
		}
	}
}

func (s *suite) testInvalidNames(t *testing.T) {
	st, _ := s.h.New(t)
	names := s.h.InvalidNames
	if names == nil {
		names = DefaultInvalidNames
	}
	for _, n := range names {
		_, err := st.Write(ctxT(t), repl.WriteRequest{Name: n, Kind: repl.KindFile, Size: 1, Data: strings.NewReader("x")})
		if !errors.Is(err, repl.ErrInvalidName) {
			t.Errorf("Write(name %q) = %v, want ErrInvalidName", n, err)
		}
	}
	if got := enumerate(t, st); len(files(got)) != 0 {
		t.Errorf("refused names left %v", keys(got))
	}
}

// patternReader yields n deterministic bytes and hides any WriterTo or Seeker.
type patternReader struct {
	n, off int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.off)
	for i := 0; i < k; i++ {
		x := r.off + i
		p[i] = byte(x*7 + x>>11)
	}
	r.off += k
	return k, nil
}

func (s *suite) testLarge(t *testing.T) {
	st, _ := s.h.New(t)
	size := s.h.LargeSize
	if size == 0 {
		size = 4 << 20
	}
	want := sha256.New()
	if _, err := io.Copy(want, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	e, err := st.Write(ctxT(t), repl.WriteRequest{Name: s.name(0), Kind: repl.KindFile, Size: int64(size), ModTime: baseTime, Data: &patternReader{n: size}})
	if err != nil {
		t.Fatalf("Write of %d bytes: %v", size, err)
	}
	if s.h.SameContent != nil {
		// A store that normalises content: what it holds must say the same and match its size.
		held := read(t, st, e.Handle)
		var b bytes.Buffer
		if _, err := io.Copy(&b, &patternReader{n: size}); err != nil {
			t.Fatal(err)
		}
		if !s.same(b.Bytes(), held) || e.Size != int64(len(held)) {
			t.Errorf("large item %q: Write returned size %d, holds %d bytes (same content: %v)", e.Handle, e.Size, len(held), s.same(b.Bytes(), held))
		}
		return
	}
	if e.Size != int64(size) {
		t.Errorf("Write of %d bytes returned size %d", size, e.Size)
	}
	rc, err := st.Open(ctxT(t), e.Handle)
	if err != nil {
		t.Fatalf("Open(%q): %v", e.Handle, err)
	}
	defer rc.Close()
	got := sha256.New()
	n, err := io.Copy(got, rc)
	if err != nil {
		t.Fatalf("reading %q: %v", e.Handle, err)
	}
	if n != int64(size) || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("large item %q read back as %d bytes with a different hash, want %d bytes identical", e.Handle, n, size)
	}
}

func (s *suite) testConcurrentReads(t *testing.T) {
	st, ed := s.h.New(t)
	var handles []string
	for i := 0; i < s.items(6); i++ {
		handles = append(handles, s.put(t, ed, i, 0, baseTime))
	}
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := 0; k < 5; k++ {
				h := handles[(g+k)%len(handles)]
				rc, err := st.Open(ctx, h)
				if err != nil {
					errs <- fmt.Errorf("open %q: %w", h, err)
					return
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					errs <- err
				}
				rc.Close()
				it, err := st.Enumerate(ctx)
				if err != nil {
					errs <- fmt.Errorf("enumerate: %w", err)
					return
				}
				for {
					if _, err := it.Next(ctx); err != nil {
						if err != io.EOF {
							errs <- err
						}
						break
					}
				}
				it.Close()
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
}

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
