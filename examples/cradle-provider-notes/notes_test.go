package main

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// TestConformance runs Cradle's conformance suite against the store: what the sync engine
// relies on, from enumeration to refusing to overwrite a note the user edited meanwhile.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	dirs := map[repl.Store]string{}
	open := func(t *testing.T, dir string) repl.Store {
		n, err := OpenNotes(dir, "*.md, *.txt") // the suite names its items *.txt
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		dirs[n] = dir
		mu.Unlock()
		return n
	}
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			dir := t.TempDir()
			return open(t, dir), editor{dir}
		},
		Reopen: func(t *testing.T, s repl.Store) repl.Store {
			mu.Lock()
			dir := dirs[s]
			mu.Unlock()
			return open(t, dir)
		},
		Folders: true,
		Moves:   true,
	})
}

// editor changes the notes folder behind the store's back, as the user does.
type editor struct{ dir string }

func (e editor) Put(name string, data []byte, mod time.Time) (string, error) {
	p := filepath.Join(e.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", err
	}
	return name, os.Chtimes(p, mod, mod)
}

func (e editor) Remove(handle string) error {
	return os.Remove(filepath.Join(e.dir, filepath.FromSlash(handle)))
}
