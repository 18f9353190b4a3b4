package memstore_test

import (
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
