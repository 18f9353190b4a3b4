// Package stage writes the files of one item at once. A store whose item is several files (a
// note and its attachments folder, a photo and its sidecar, a calendar event and its alarm file)
// cannot rename them all in one step: a crash between two renames leaves half an item, which
// the next sync takes for an edit and meets as a conflict. With stage, the store writes the new
// files into a staging folder beside them, commits (a journal names every rename and removal),
// and only then puts them in place; Recover, run when the store opens, finishes a committed swap
// that a crash interrupted and discards one that was not committed. Either way the item is whole:
// the old version or the new one.
//
// A store uses it like this:
//
//	d, err := stage.Open(root)           // recovers what a crash left
//	tx, err := d.Begin()
//	err = tx.WriteFile("trip.md", text, mod)     // staged, not visible yet
//	err = tx.WriteFile("trip.md.meta", meta, mod)
//	err = tx.Remove("trip.old-attachment.png")   // removed at the commit
//	err = tx.Commit(ctx)                         // all in place, or (after a crash) at the next Open
//
// Staged files live in root/.cradle-stage/, on the same file system as root, so that putting them
// in place is a rename. A store must leave that folder out of its enumeration (Cradle's
// temporary names start with ".cradle-", and a store that skips dot files already does).
//
// The guarantee is against crashes of the process (a panic, kill -9): every file is synced before
// the journal is written and the journal before the first rename, so a power cut is covered as
// far as the file system keeps its order of renames.
package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/internal/fsutil"
)

// Folder is the name of the staging folder inside a store's root.
const Folder = ".cradle-stage"

const journalName = "journal.json"

// Dir is a store's root folder with its staging folder. Its methods are safe for concurrent use
// as far as the transactions touch different files.
type Dir struct {
	root  string
	stage string
}

// Open returns the Dir of root and recovers what an interrupted commit left there (Recover).
func Open(root string) (*Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	d := &Dir{root: abs, stage: filepath.Join(abs, Folder)}
	if err := d.Recover(); err != nil {
		return nil, err
	}
	return d, nil
}

// op is one step of a commit: rename a staged file into place, or remove a file.
type op struct {
	Staged string `json:"staged,omitempty"` // in the transaction's folder
	Target string `json:"target"`           // relative to root, '/'-separated
}

// Tx is the change of one item: files staged, files to remove.
type Tx struct {
	d    *Dir
	dir  string // root/.cradle-stage/<id>
	ops  []op
	done bool

	// afterStep, in tests, runs after each step of the commit: returning an error stops the
	// commit there, as a crash would.
	afterStep func(i int) error
}

// Begin starts a transaction.
func (d *Dir) Begin() (*Tx, error) {
	if err := os.MkdirAll(d.stage, 0o755); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	dir, err := os.MkdirTemp(d.stage, "tx-")
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	return &Tx{d: d, dir: dir, afterStep: testAfterStep}, nil
}

// testAfterStep, set by tests, becomes every new transaction's afterStep.
var testAfterStep func(i int) error

// target checks a name relative to the root and returns its path.
func (d *Dir) target(name string) (string, error) {
	clean := filepath.ToSlash(filepath.Clean(filepath.FromSlash(name)))
	if name == "" || clean != name || filepath.IsAbs(name) || clean == "." || strings.HasPrefix(clean, "../") ||
		clean == ".." || clean == Folder || strings.HasPrefix(clean, Folder+"/") {
		return "", fmt.Errorf("stage: %q is not a name inside the store", name)
	}
	return filepath.Join(d.root, filepath.FromSlash(clean)), nil
}

// Create stages a new file to be put at name (relative to the root, '/'-separated) at the commit.
// The caller writes it and closes it before the commit; Commit syncs it.
func (tx *Tx) Create(name string) (*os.File, error) {
	if tx.done {
		return nil, errors.New("stage: the transaction is over")
	}
	if _, err := tx.d.target(name); err != nil {
		return nil, err
	}
	staged := fmt.Sprintf("%03d", len(tx.ops))
	f, err := os.OpenFile(filepath.Join(tx.dir, staged), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", name, err)
	}
	tx.ops = append(tx.ops, op{Staged: staged, Target: name})
	return f, nil
}

// WriteFile stages data to be put at name at the commit, with the modification time mod (unless
// it is zero).
func (tx *Tx) WriteFile(name string, data []byte, mod time.Time) error {
	return tx.Copy(name, strings.NewReader(string(data)), mod)
}

// Copy stages what r yields to be put at name at the commit, with the modification time mod
// (unless it is zero). An error of r is returned; the caller then aborts the transaction, and
// nothing in the store has changed.
func (tx *Tx) Copy(name string, r io.Reader, mod time.Time) error {
	f, err := tx.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("stage %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stage %s: %w", name, err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(f.Name(), mod, mod); err != nil {
			return fmt.Errorf("stage %s: %w", name, err)
		}
	}
	return nil
}

// Remove marks the file at name to be removed at the commit (a file the new version of the item
// no longer has). A file already gone is no error then.
func (tx *Tx) Remove(name string) error {
	if tx.done {
		return errors.New("stage: the transaction is over")
	}
	if _, err := tx.d.target(name); err != nil {
		return err
	}
	tx.ops = append(tx.ops, op{Target: name})
	return nil
}

// Abort discards the staged files; nothing in the store changes. It is safe to call after Commit
// (it then does nothing).
func (tx *Tx) Abort() {
	if tx.done {
		return
	}
	tx.done = true
	_ = os.RemoveAll(tx.dir)
}

// Commit puts the staged files in place and removes the files marked for removal. Once Commit has
// written its journal, the change happens even if the process dies: Recover finishes it. ctx is
// looked at before that point only: a commit cancelled before it changes nothing.
func (tx *Tx) Commit(ctx context.Context) error {
	if tx.done {
		return errors.New("stage: the transaction is over")
	}
	for _, o := range tx.ops {
		if o.Staged == "" {
			continue
		}
		if err := syncFile(filepath.Join(tx.dir, o.Staged)); err != nil {
			tx.Abort()
			return fmt.Errorf("stage %s: %w", o.Target, err)
		}
	}
	if err := ctx.Err(); err != nil {
		tx.Abort()
		return err
	}
	// The commit point: the journal, written whole (a temporary name, synced, renamed).
	data, err := json.Marshal(tx.ops)
	if err != nil {
		tx.Abort()
		return err
	}
	tmp := filepath.Join(tx.dir, journalName+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err == nil {
		err = syncFile(tmp)
		if err == nil {
			err = os.Rename(tmp, filepath.Join(tx.dir, journalName))
		}
		if err == nil {
			err = fsutil.SyncDir(tx.dir)
		}
		if err != nil {
			tx.Abort()
			return fmt.Errorf("stage: write the journal: %w", err)
		}
	} else {
		tx.Abort()
		return fmt.Errorf("stage: write the journal: %w", err)
	}
	tx.done = true
	if tx.afterStep != nil {
		if err := tx.afterStep(-1); err != nil {
			return err
		}
	}
	return tx.d.replay(tx.dir, tx.ops, tx.afterStep)
}

// replay carries out a committed transaction's steps (again: each is idempotent), then removes
// its folder.
func (d *Dir) replay(dir string, ops []op, after func(int) error) error {
	touched := map[string]bool{}
	for i, o := range ops {
		target, err := d.target(o.Target)
		if err != nil {
			return err
		}
		if o.Staged == "" {
			if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("stage: remove %s: %w", o.Target, err)
			}
		} else {
			staged := filepath.Join(dir, o.Staged)
			if _, err := os.Lstat(staged); errors.Is(err, fs.ErrNotExist) {
				continue // put in place before a crash
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return fmt.Errorf("stage: put %s in place: %w", o.Target, err)
			}
			if err := os.Rename(staged, target); err != nil {
				return fmt.Errorf("stage: put %s in place: %w", o.Target, err)
			}
		}
		touched[filepath.Dir(target)] = true
		if after != nil {
			if err := after(i); err != nil {
				return err
			}
		}
	}
	for p := range touched {
		if err := fsutil.SyncDir(p); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	return nil
}

// Recover finishes every committed transaction that a crash interrupted and discards the staged
// files of those that were not committed. Open runs it; a store may run it again at any time
// when no transaction of its own is under way.
func (d *Dir) Recover() error {
	ents, err := os.ReadDir(d.stage)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stage: recover: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		dir := filepath.Join(d.stage, name)
		data, err := os.ReadFile(filepath.Join(dir, journalName))
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.RemoveAll(dir); err != nil { // never committed
				return fmt.Errorf("stage: recover: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("stage: recover %s: %w", name, err)
		}
		var ops []op
		if err := json.Unmarshal(data, &ops); err != nil {
			return fmt.Errorf("stage: recover %s: the journal is damaged: %w", name, err)
		}
		if err := d.replay(dir, ops, nil); err != nil {
			return fmt.Errorf("stage: recover %s: %w", name, err)
		}
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
