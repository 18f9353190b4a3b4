package memstore

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"github.com/cradle-sync/cradle/repl"
)

// The hooks that change a Store behind the engine's back, as a user or another program would,
// and the ones that look at it whole.

// Rewrite is a user's save of a file while the engine reads it (see RewriteOnRead).
type Rewrite struct {
	Data    []byte
	ModTime time.Time // zero means now
	// After is how many bytes the reader gets before the save happens: 0 saves at the first
	// read; at or past the content's length, the save happens when the reader reaches its end.
	After int
	// InPlace is a program that saves in place (truncate and write): the reader goes on in the
	// new content from where it was, so it gets the old content's start and the new one's rest.
	// Otherwise the program saves to a temporary file renamed over the item, and the reader goes
	// on in the old content to its end.
	InPlace bool
	// Fired, when set, is called once the save happened (without the store's lock), with the
	// content the save replaced.
	Fired func(old []byte)
}

// RewriteOnRead arranges for a user to save the file name with rw's content while the engine
// reads it: the next stream Open returns for name makes the save once it delivered rw.After
// bytes. Afterwards the store holds the new content (with the new modification time, and a
// change notification), and the stream goes on as rw.InPlace says. Only that one stream does
// it; a nil rw cancels a save not made yet. If the item is gone or a folder by then, nothing is
// saved.
func (s *Store) RewriteOnRead(name string, rw *Rewrite) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rw == nil {
		delete(s.rewrites, name)
		return
	}
	if s.rewrites == nil {
		s.rewrites = map[string]*Rewrite{}
	}
	s.rewrites[name] = rw
}

// save makes rw's save of the file at handle and returns the new content (nil when the item is
// no longer a file).
func (s *Store) save(handle string, rw *Rewrite) []byte {
	data := bytes.Clone(rw.Data)
	s.mu.Lock()
	it, ok := s.items[handle]
	if !ok || it.kind != repl.KindFile {
		s.mu.Unlock()
		return nil
	}
	old := it.data
	s.install(handle, &item{kind: repl.KindFile, data: data, mod: s.truncate(rw.ModTime)})
	s.mu.Unlock()
	s.deliver([]repl.Notification{{Kind: repl.ItemModified, Handle: handle}})
	if rw.Fired != nil {
		rw.Fired(bytes.Clone(old))
	}
	return data
}

// Overflow tells every watcher that notifications were lost.
func (s *Store) Overflow() {
	s.deliver([]repl.Notification{{Kind: repl.Overflow}})
}

// Shutdown makes the store go away, like an unplugged device: watchers get a Shutdown
// notification and stop, and every later operation fails with err (repl.ErrGone when nil).
func (s *Store) Shutdown(err error) {
	if err == nil {
		err = repl.ErrGone
	}
	s.mu.Lock()
	s.gone = err
	s.mu.Unlock()
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for id, w := range s.watchers {
		w.notify(repl.Notification{Kind: repl.Shutdown, Err: err})
		close(w.done)
		delete(s.watchers, id)
	}
}

// Revive undoes Shutdown: the store is back (the device was plugged in again).
func (s *Store) Revive() {
	s.mu.Lock()
	s.gone = nil
	s.mu.Unlock()
}

// Put creates or replaces the file name with data, as a user would, creating missing folders.
// A zero modTime means now.
func (s *Store) Put(name string, data []byte, modTime time.Time) error {
	if err := repl.CheckName(name); err != nil {
		return err
	}
	s.mu.Lock()
	if it, ok := s.items[name]; ok && it.kind == repl.KindFolder {
		s.mu.Unlock()
		return fmt.Errorf("put %q: is a folder: %w", name, repl.ErrExists)
	}
	req := repl.WriteRequest{Name: name, Kind: repl.KindFile, ModTime: modTime}
	if _, ok := s.items[name]; ok {
		req.Handle = name
	}
	if err := s.precheckLocked(req); err != nil {
		s.mu.Unlock()
		return err
	}
	notes := s.installLocked(req, bytes.Clone(data))
	s.mu.Unlock()
	s.deliver(notes)
	return nil
}

// Mkdir creates the folder name and its missing parents.
func (s *Store) Mkdir(name string) error {
	if err := repl.CheckName(name); err != nil {
		return err
	}
	s.mu.Lock()
	if it, ok := s.items[name]; ok {
		s.mu.Unlock()
		if it.kind != repl.KindFolder {
			return fmt.Errorf("mkdir %q: %w", name, repl.ErrExists)
		}
		return nil
	}
	req := repl.WriteRequest{Name: name, Kind: repl.KindFolder}
	if err := s.precheckLocked(req); err != nil {
		s.mu.Unlock()
		return err
	}
	notes := s.installLocked(req, nil)
	s.mu.Unlock()
	s.deliver(notes)
	return nil
}

// Remove deletes name and, for a folder, everything in it (rm -r).
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	if _, ok := s.items[name]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("remove %q: %w", name, repl.ErrNotFound)
	}
	notes := s.removeLocked(name)
	s.mu.Unlock()
	s.deliver(notes)
	return nil
}

// Rename moves from to to (with everything in it for a folder), as a user would; to must not
// exist. The modification time is kept.
func (s *Store) Rename(from, to string) error {
	if err := repl.CheckName(to); err != nil {
		return err
	}
	s.mu.Lock()
	it, ok := s.items[from]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("rename %q: %w", from, repl.ErrNotFound)
	}
	req := repl.WriteRequest{Handle: from, Name: to, Kind: it.kind}
	if err := s.precheckLocked(req); err != nil {
		s.mu.Unlock()
		return err
	}
	notes := s.mkdirAllLocked(parentOf(to))
	notes = append(notes, s.moveLocked(from, to)...)
	s.mu.Unlock()
	s.deliver(notes)
	return nil
}

// Touch sets the modification time of name.
func (s *Store) Touch(name string, modTime time.Time) error {
	s.mu.Lock()
	it, ok := s.items[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("touch %q: %w", name, repl.ErrNotFound)
	}
	cp := *it
	cp.mod = s.truncate(modTime)
	s.install(name, &cp)
	s.mu.Unlock()
	s.deliver([]repl.Notification{{Kind: repl.ItemModified, Handle: name}})
	return nil
}

// Get returns a copy of the content of the file name.
func (s *Store) Get(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[name]
	if !ok || it.kind != repl.KindFile {
		return nil, false
	}
	return bytes.Clone(it.data), true
}

// Lookup returns the entry of name, without counting as an operation or failing on faults.
func (s *Store) Lookup(name string) (repl.Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[name]
	if !ok {
		return repl.Entry{}, false
	}
	return s.entryLocked(name, it), true
}

// Files returns the content of every file, by name. Folders are left out.
func (s *Store) Files() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]string, len(s.items))
	for n, it := range s.items {
		if it.kind == repl.KindFile {
			m[n] = string(it.data)
		}
	}
	return m
}

// Names returns the name of every item, folders included, sorted.
func (s *Store) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.items))
	for n := range s.items {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Len returns the number of items, folders included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}
