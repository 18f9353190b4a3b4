package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"

	"github.com/cradle-sync/cradle/repl"
)

// Watch reports changes in the notes folder as they happen, so that Cradle syncs a note soon
// after it is saved and looks only at what changed. It watches every folder, and each new one.
//
// A note saved while the watches are being placed raises no event, so Watch starts by reporting
// every item once; a needless report costs Cradle one Stat.
func (n *Notes) Watch(ctx context.Context, notify func(repl.Notification)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch the notes folder: %w", err)
	}
	defer w.Close()
	if err := n.watchTree(w, n.dir, notify, repl.ItemModified); err != nil {
		return fmt.Errorf("watch the notes folder: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				notify(repl.Notification{Kind: repl.Shutdown})
				return nil
			}
			n.event(w, ev, notify)
		case err, ok := <-w.Errors:
			if !ok {
				notify(repl.Notification{Kind: repl.Shutdown})
				return nil
			}
			// Lost events (a queue overflow): Cradle makes a full pass instead.
			slog.Warn("watching the notes folder", "err", err)
			notify(repl.Notification{Kind: repl.Overflow})
		}
	}
}

// event turns one file system event into notifications.
func (n *Notes) event(w *fsnotify.Watcher, ev fsnotify.Event, notify func(repl.Notification)) {
	rel, err := filepath.Rel(n.dir, ev.Name)
	if err != nil || rel == "." {
		return
	}
	handle := filepath.ToSlash(rel)
	for _, part := range strings.Split(handle, "/") {
		if strings.HasPrefix(part, ".") {
			return // private files, and our own temporary files
		}
	}
	switch {
	case ev.Has(fsnotify.Create):
		// A new folder may already hold files: watch it and report what it holds.
		if err := n.watchTree(w, ev.Name, notify, repl.ItemCreated); err != nil {
			notify(repl.Notification{Kind: repl.Overflow})
		}
	case ev.Has(fsnotify.Write):
		notify(repl.Notification{Kind: repl.ItemModified, Handle: handle})
	case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename):
		notify(repl.Notification{Kind: repl.ItemDeleted, Handle: handle})
	}
}

// watchTree watches root and the folders below it, and reports everything it finds there as kind.
func (n *Notes) watchTree(w *fsnotify.Watcher, root string, notify func(repl.Notification), kind repl.NotifyKind) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // gone again already
		}
		if err != nil {
			return err
		}
		if p != n.dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if p != n.dir {
			if rel, err := filepath.Rel(n.dir, p); err == nil {
				notify(repl.Notification{Kind: kind, Handle: filepath.ToSlash(rel)})
			}
		}
		if d.IsDir() {
			return w.Add(p)
		}
		return nil
	})
}
