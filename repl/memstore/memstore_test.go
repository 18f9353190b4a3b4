package memstore_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/memstore"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// editor edits a memstore behind the engine's back through its hooks.
type editor struct{ s *memstore.Store }

func (e editor) Put(name string, data []byte, mod time.Time) (string, error) {
	return name, e.s.Put(name, data, mod)
}
func (e editor) Remove(h string) error { return e.s.Remove(h) }
func (e editor) Rename(h, to string) (string, error) {
	return to, e.s.Rename(h, to)
}

func TestConformance(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{})
			return s, editor{s}
		},
		Reopen:  func(t *testing.T, s repl.Store) repl.Store { return s },
		Folders: true,
		Moves:   true,
	})
}

func TestConformanceSeconds(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{TimeGranularity: time.Second, Hashes: true})
			return s, editor{s}
		},
		TimeGranularity: time.Second,
		Folders:         true,
		Moves:           true,
	})
}

func TestConformanceNonAtomic(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{NonAtomic: true})
			return s, editor{s}
		},
		Folders: true,
	})
}

func TestConformanceBare(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{})
			return memstore.Bare(s), editor{s}
		},
		Folders: true,
		Moves:   true,
	})
}

func TestConformanceReadOnly(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{ReadOnly: true})
			return s, editor{s}
		},
		ReadOnly: true,
	})
}

type unitEditor struct{ s *memstore.UnitStore }

func (e unitEditor) Put(name string, data []byte, mod time.Time) (string, error) {
	return name, e.s.Put(name, data, mod)
}
func (e unitEditor) Remove(h string) error { return e.s.Remove(h) }

func TestConformanceUnits(t *testing.T) {
	content := func(i, v int) []byte {
		b, err := memstore.EncodeUnits(repl.Units{"UID": []byte{byte('a' + i)}, "TEL": []byte{byte('0' + v%10)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.NewUnits(memstore.Options{})
			return s, unitEditor{s}
		},
		Name:    func(i int) string { return "uid-" + string(rune('a'+i%26)) + string(rune('a'+i/26)) },
		Content: content,
	})
}

func TestConformanceNoTimes(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{NoTimes: true})
			return s, editor{s}
		},
		NoModTime: true,
		Folders:   true,
		Moves:     true,
	})
}

func TestConformanceNoRename(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			s := memstore.New(memstore.Options{NoRename: true, TimeGranularity: 2 * time.Second})
			return s, editor{s}
		},
		TimeGranularity: 2 * time.Second,
		Folders:         true,
		Moves:           true,
	})
}

func TestNoTimesKeepsNone(t *testing.T) {
	s := memstore.New(memstore.Options{NoTimes: true})
	mod := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if err := s.Put("a", []byte("x"), mod); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch("a", mod.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e, err := s.Write(context.Background(), repl.WriteRequest{Name: "d/b", Kind: repl.KindFile, Size: 1, ModTime: mod, Data: strings.NewReader("y")})
	if err != nil {
		t.Fatal(err)
	}
	if !e.ModTime.IsZero() {
		t.Errorf("Write returned modification time %v, want none", e.ModTime)
	}
	for _, n := range s.Names() {
		if e, _ := s.Lookup(n); !e.ModTime.IsZero() {
			t.Errorf("%q has modification time %v, want none", n, e.ModTime)
		}
	}
}

// A move in a store that cannot rename is a copy and a delete; a fault on the delete leaves both.
func TestNoRenameKilledBetweenSteps(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(memstore.Options{NoRename: true})
	mod := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if err := s.Put("d/a", []byte("one"), mod); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Lookup("d/a")
	s.SetFault(func(op memstore.Op, h string) error {
		if op == memstore.OpDelete && h == "d/a" {
			return repl.ErrGone
		}
		return nil
	})
	st := old.Stamp()
	_, err := s.Write(ctx, repl.WriteRequest{Handle: "d/a", Expected: &st, Name: "e/b", Kind: repl.KindFile, Size: 3, ModTime: mod, Data: strings.NewReader("one")})
	if !errors.Is(err, repl.ErrGone) {
		t.Fatalf("Write = %v, want ErrGone", err)
	}
	if got := s.Files(); len(got) != 2 || got["d/a"] != "one" || got["e/b"] != "one" {
		t.Fatalf("after a move killed between its steps the store holds %v, want both names", got)
	}
	s.SetFault(nil)
	// Without a fault the move completes, a folder with what it holds.
	d, _ := s.Lookup("d")
	ds := d.Stamp()
	if _, err := s.Write(ctx, repl.WriteRequest{Handle: "d", Expected: &ds, Name: "f", Kind: repl.KindFolder}); err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"e", "e/b", "f", "f/a"}) {
		t.Fatalf("after moving d to f: %v", got)
	}
}

func TestRewriteOnRead(t *testing.T) {
	ctx := context.Background()
	mod := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		inPlace bool
		after   int
		read    string
	}{
		{false, 0, "old-content"},
		{false, 4, "old-content"},
		{true, 0, "NEW-CONTENT"},
		{true, 4, "old-CONTENT"},
		{true, 100, "old-content"},
	} {
		s := memstore.New(memstore.Options{TimeGranularity: time.Second})
		if err := s.Put("a", []byte("old-content"), mod); err != nil {
			t.Fatal(err)
		}
		fired := 0
		s.RewriteOnRead("a", &memstore.Rewrite{Data: []byte("NEW-CONTENT"), ModTime: mod.Add(300 * time.Millisecond), After: tc.after, InPlace: tc.inPlace, Fired: func(old []byte) {
			if string(old) != "old-content" {
				t.Errorf("the save replaced %q", old)
			}
			fired++
		}})
		rc, err := s.Open(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.read || fired != 1 {
			t.Errorf("in place %v after %d: read %q (saved %d times), want %q once", tc.inPlace, tc.after, b, fired, tc.read)
		}
		if got, _ := s.Get("a"); string(got) != "NEW-CONTENT" {
			t.Errorf("in place %v after %d: the store holds %q after the read", tc.inPlace, tc.after, got)
		}
		if e, _ := s.Lookup("a"); !e.ModTime.Equal(mod) {
			t.Errorf("modification time %v, want %v (same second)", e.ModTime, mod)
		}
		// One-shot: the next read is plain.
		rc, _ = s.Open(ctx, "a")
		b, _ = io.ReadAll(rc)
		if string(b) != "NEW-CONTENT" || fired != 1 {
			t.Errorf("second read %q, saves %d", b, fired)
		}
	}
}

// A small WriteChunk lets a fault stop a small write part-way; a non-atomic store keeps the part.
func TestWriteChunkPartial(t *testing.T) {
	s := memstore.New(memstore.Options{NonAtomic: true, WriteChunk: 4})
	s.FailAfter(2, repl.ErrGone, memstore.OpWriteData)
	_, err := s.Write(context.Background(), repl.WriteRequest{Name: "a", Kind: repl.KindFile, Size: 11, Data: strings.NewReader("hello world")})
	if !errors.Is(err, repl.ErrGone) {
		t.Fatalf("Write = %v, want ErrGone", err)
	}
	if got, _ := s.Get("a"); string(got) != "hello wo" {
		t.Fatalf("partial item %q, want the first two chunks", got)
	}
}
