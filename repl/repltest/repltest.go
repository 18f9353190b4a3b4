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
	"fmt"
	"io"
	"sort"
	"strings"
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
