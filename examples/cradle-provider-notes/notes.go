package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cradle-sync/cradle/repl"
)

// Notes is a folder of notes as a repl.Store. A handle is a path relative to the folder, with '/'
// separators. Notes are the files whose names match the patterns; subfolders are items too. Names
// that start with a dot are neither: they stay private to this computer.
type Notes struct {
	dir      string
	patterns []string
}

// OpenNotes opens the notes folder dir; patterns is a comma-separated list such as "*.md".
func OpenNotes(dir, patterns string) (*Notes, error) {
	if dir == "" {
		return nil, errors.New("the notes folder is not set: give the partnership a desktop folder")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("notes folder: %w", mapErr(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("notes folder %s is a file, not a folder", dir)
	}
	n := &Notes{dir: dir}
	for _, p := range strings.Split(patterns, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("note pattern %q: %w", p, err)
		}
		n.patterns = append(n.patterns, p)
	}
	if len(n.patterns) == 0 {
		n.patterns = []string{"*.md"}
	}
	return n, nil
}

// isNote tells whether a file name is a note's.
func (n *Notes) isNote(name string) bool {
	for _, p := range n.patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// abs returns the file of a handle or name, refusing names that are not portable and private
// (dot) names.
func (n *Notes) abs(name string) (string, error) {
	if err := repl.CheckName(name); err != nil {
		return "", err
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return "", fmt.Errorf("%q is private to this computer: %w", name, repl.ErrInvalidName)
		}
	}
	return filepath.Join(n.dir, filepath.FromSlash(name)), nil
}

func entryOf(handle string, fi fs.FileInfo) repl.Entry {
	if fi.IsDir() {
		return repl.Entry{Handle: handle, Kind: repl.KindFolder, ModTime: fi.ModTime()}
	}
	return repl.Entry{Handle: handle, Kind: repl.KindFile, Size: fi.Size(), ModTime: fi.ModTime()}
}

// Stat describes one item as Enumerate would (repl.Stater): Cradle uses it to look at just the
// notes that Watch reported.
func (n *Notes) Stat(_ context.Context, handle string) (repl.Entry, error) {
	p, err := n.abs(handle)
	if err != nil {
		return repl.Entry{}, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return repl.Entry{}, mapErr(err)
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return repl.Entry{}, fmt.Errorf("%s is not a regular file: %w", p, repl.ErrNotFound)
	}
	return entryOf(handle, fi), nil
}

// Enumerate lists every folder and file, hidden ones aside.
func (n *Notes) Enumerate(ctx context.Context) (repl.Iterator, error) {
	var items []repl.Entry
	err := filepath.WalkDir(n.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err // an unreadable folder: the enumeration fails, nothing counts as deleted
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == n.dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil // links, sockets and devices are not notes
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walked
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(n.dir, p)
		if err != nil {
			return err
		}
		items = append(items, entryOf(filepath.ToSlash(rel), fi))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the notes folder: %w", mapErr(err))
	}
	return &list{items: items}, nil
}

// list is an Iterator over entries collected beforehand.
type list struct{ items []repl.Entry }

func (l *list) Next(ctx context.Context) (repl.Entry, error) {
	if err := ctx.Err(); err != nil {
		return repl.Entry{}, err
	}
	if len(l.items) == 0 {
		return repl.Entry{}, io.EOF
	}
	e := l.items[0]
	l.items = l.items[1:]
	return e, nil
}

func (l *list) Close() error { return nil }

// IsItemChanged compares size and modification time.
func (n *Notes) IsItemChanged(_ context.Context, e repl.Entry, recorded repl.Stamp) (bool, error) {
	return repl.StampChanged(recorded, e), nil
}

// IsItemReplicated keeps folders and notes; other files stay where they are.
func (n *Notes) IsItemReplicated(e repl.Entry) bool {
	return e.Kind == repl.KindFolder || n.isNote(path.Base(e.Handle))
}

// NaturalKey matches a note with its counterpart by its path.
func (n *Notes) NaturalKey(_ context.Context, e repl.Entry) (string, error) {
	return e.Handle, nil
}

// Open returns a note's content.
func (n *Notes) Open(_ context.Context, handle string) (io.ReadCloser, error) {
	p, err := n.abs(handle)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open: %w", mapErr(err))
	}
	return f, nil
}

// checkExpected refuses to touch an item that changed since Cradle last saw it.
func (n *Notes) checkExpected(ctx context.Context, handle string, expected *repl.Stamp) error {
	now, err := n.Stat(ctx, handle)
	if err != nil {
		return err
	}
	if expected != nil && repl.StampChanged(*expected, now) {
		return fmt.Errorf("%s was edited since it was last seen: %w", handle, repl.ErrChanged)
	}
	return nil
}

// Write creates, updates or moves a note or a folder. A note's new content goes to a hidden
// temporary file first, which is synced and then renamed over the note: a reader never sees half
// a note, and a crash leaves the old one.
func (n *Notes) Write(ctx context.Context, req repl.WriteRequest) (repl.Entry, error) {
	target, err := n.abs(req.Name)
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write: %w", err)
	}
	if req.Kind == repl.KindFile && !n.isNote(path.Base(req.Name)) {
		return repl.Entry{}, fmt.Errorf("write %s: not a note (notes match %s): %w", req.Name, strings.Join(n.patterns, ", "), repl.ErrInvalidName)
	}
	var old string
	if req.Handle != "" {
		if old, err = n.abs(req.Handle); err != nil {
			return repl.Entry{}, fmt.Errorf("write: %w", err)
		}
		if err := n.checkExpected(ctx, req.Handle, req.Expected); err != nil {
			return repl.Entry{}, fmt.Errorf("write: %w", err)
		}
	}
	moving := req.Handle != "" && req.Handle != req.Name
	if req.Handle == "" || moving {
		if _, err := os.Lstat(target); err == nil {
			return repl.Entry{}, fmt.Errorf("write %s: %w", req.Name, repl.ErrExists)
		}
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return repl.Entry{}, fmt.Errorf("write %s: %w", req.Name, mapErr(err))
	}
	switch {
	case req.Kind == repl.KindFolder && moving:
		err = os.Rename(old, target)
	case req.Kind == repl.KindFolder:
		if err = os.Mkdir(target, 0o755); errors.Is(err, fs.ErrExist) {
			err = nil
		}
	default:
		err = n.replace(ctx, target, req)
		if err == nil && moving {
			err = os.Remove(old)
		}
	}
	if err == nil && req.Kind == repl.KindFolder && !req.ModTime.IsZero() {
		err = os.Chtimes(target, req.ModTime, req.ModTime)
	}
	if err != nil {
		return repl.Entry{}, fmt.Errorf("write %s: %w", req.Name, mapErr(err))
	}
	return n.Stat(ctx, req.Name)
}

// replace writes req.Data to a temporary file next to target and renames it over target.
func (n *Notes) replace(ctx context.Context, target string, req repl.WriteRequest) error {
	tmp := filepath.Join(filepath.Dir(target), ".cradle-notes-"+rand.Text()[:12]+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var size int64
	if req.Data != nil { // no data is an empty note
		if size, err = io.Copy(f, req.Data); err != nil {
			return err // the source failed, or the sync was cancelled: the old note stays
		}
	}
	if req.Size >= 0 && size != req.Size {
		return fmt.Errorf("got %d bytes of %d: %w", size, req.Size, io.ErrUnexpectedEOF)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !req.ModTime.IsZero() {
		if err := os.Chtimes(tmp, req.ModTime, req.ModTime); err != nil {
			return err
		}
	}
	// The last look before the rename: the user may have edited the note meanwhile.
	if req.Handle != "" {
		if err := n.checkExpected(ctx, req.Handle, req.Expected); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	committed = true
	return nil
}

// Delete removes a note, or an empty folder.
func (n *Notes) Delete(ctx context.Context, handle string, expected repl.Stamp) error {
	if err := n.checkExpected(ctx, handle, &expected); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	p, _ := n.abs(handle) // checkExpected checked the name
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete %s: %w", handle, mapErr(err))
	}
	return nil
}

// mapErr adds the repl sentinel error that a file system error means.
func mapErr(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		sentinel = repl.ErrNotFound
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist, which it also matches
		sentinel = repl.ErrNotEmpty
	case errors.Is(err, fs.ErrExist):
		sentinel = repl.ErrExists
	case errors.Is(err, syscall.ENOSPC):
		sentinel = repl.ErrNoSpace
	case errors.Is(err, syscall.EROFS):
		sentinel = repl.ErrReadOnly
	case errors.Is(err, fs.ErrPermission):
		sentinel = repl.ErrPermission
	default:
		return err
	}
	if errors.Is(err, sentinel) {
		return err
	}
	return fmt.Errorf("%w: %w", err, sentinel)
}
