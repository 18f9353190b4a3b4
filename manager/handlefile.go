package manager

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cradle-sync/cradle/repl"
)

// Handle files: each partnership's state on this computer is a repl handle file,
// <config>/state/<id>.repl, and a folder of the provider's own, <config>/state/<id>/. A damaged
// handle file is set aside and rebuilt by the next sync.

func (m *Manager) handlePath(id string) string { return filepath.Join(m.dir, "state", id+".repl") }

func (m *Manager) stateDir(id string) string { return filepath.Join(m.dir, "state", id) }

// setAside moves a damaged handle file aside and tells the user; the next open starts a new one,
// which the next session rebuilds.
func (m *Manager) setAside(id, path string) error {
	aside, err := repl.MoveAside(path)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("The sync state of partnership %s was damaged; it was moved to %s and will be rebuilt at the next sync (nothing is lost; of a file changed since the last sync, both versions are kept).", id, aside)
	m.log.Warn("manager: " + msg)
	m.bus.publish(Error, "", id, msg)
	return nil
}

// discardDamaged closes a partnership's handle file found damaged in the middle of a session,
// moves it aside and opens a new one in its place (caller holds m.mu); the next session
// rebuilds it.
func (m *Manager) discardDamaged(ps *partState) error {
	if ps.hf != nil {
		if err := ps.hf.Close(); err != nil {
			m.log.Debug("manager: close a damaged handle file", "err", err)
		}
		ps.hf = nil
	}
	path := m.handlePath(ps.id)
	if err := m.setAside(ps.id, path); err != nil {
		return err
	}
	hf, err := repl.Open(path, repl.Options{})
	if err != nil {
		ps.hfErr = fmt.Errorf("open the sync state %s: %w", path, err)
		return err
	}
	ps.hf, ps.hfErr = hf, nil
	return nil
}

// openState opens a partnership's handle file. An empty one is damage (a handle file is never
// empty: it is created with its first pages), which the handle file itself would take for a new
// file and silently start again.
func openState(path string) (*repl.HandleFile, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, &repl.CorruptError{Path: path, Err: errors.New("the file is empty")}
	}
	return repl.Open(path, repl.Options{})
}

// openHandleFile opens the partnership's handle file (caller holds m.mu or owns ps alone). A
// damaged one is moved aside and replaced by a fresh one, and the user is told: the next session
// rebuilds the metadata by matching items, without duplicates. So is one found missing after
// the partnership has synced (someone deleted it).
func (m *Manager) openHandleFile(ps *partState) {
	if ps.hf != nil {
		return
	}
	path := m.handlePath(ps.id)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) && ps.hasLast {
		msg := fmt.Sprintf("The sync state of partnership %s (%s) is missing; it will be rebuilt at the next sync by matching the items of both sides (nothing is lost; of a file that differs, both versions are kept).", ps.id, path)
		m.log.Warn("manager: " + msg)
		m.bus.publish(Error, "", ps.id, msg)
	}
	hf, err := openState(path)
	if errors.Is(err, repl.ErrCorrupt) {
		if merr := m.setAside(ps.id, path); merr != nil {
			ps.hfErr = fmt.Errorf("%v; moving it aside failed: %w", err, merr)
			return
		}
		hf, err = repl.Open(path, repl.Options{})
	}
	if errors.Is(err, repl.ErrInUse) {
		ps.hfErr = &RunningError{PID: readPID(m.dir)}
		return
	}
	if err != nil {
		ps.hfErr = fmt.Errorf("open the sync state %s: %w", path, err)
		return
	}
	ps.hf, ps.hfErr = hf, nil
	if cs, err := hf.Conflicts(); err == nil {
		ps.conflicts = len(cs)
	}
}
