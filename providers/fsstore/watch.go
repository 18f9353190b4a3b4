package fsstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// watchCheck is how often Watch checks that the folder itself is still there (a drive unmounted
// under it raises no event of its own for the folder's contents).
const watchCheck = 2 * time.Second

// inotifyHint tells the user how to raise the inotify limits; it ends every error about them.
const inotifyHint = "changes will be found by scheduled full syncs instead; to watch this folder, raise the limit: " +
	"echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-cradle.conf && sudo sysctl --system"

// Watch reports changes in the folder as they happen, recursively: new subfolders are watched as
// they appear (and what they already hold is reported), moved-away folders stop being watched.
// Lost events (the kernel queue overflowed) are reported as repl.Overflow. The folder itself
// going away (deleted, moved, its drive unmounted) is a repl.Shutdown, after which Watch returns.
//
// Watch returns an error at once when it cannot watch the whole tree, typically because the
// inotify watch limit is too low for the number of folders; the error says how to raise it, and
// the caller falls back to scheduled full passes. It returns nil when ctx is done.
func (s *DesktopStore) Watch(ctx context.Context, notify func(repl.Notification)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w; %s", s.dir, err, inotifyHint)
	}
	defer w.Close()
	ws := &desktopWatch{s: s, w: w, watched: map[string]bool{}}
	// Changes made while the watches were being placed, or just before Watch was called, raise
	// no event: report what changed lately (by inode change time, which a writer cannot set
	// back) as the tree is walked. A spurious report costs the engine one stat.
	ws.since = time.Now().Add(-startSlack)
	if err := ws.addTree(s.dir, nil); err != nil {
		return err
	}
	ws.since = time.Time{}
	for _, rel := range ws.recent {
		notify(repl.Notification{Kind: repl.ItemModified, Handle: rel})
	}
	ws.recent = nil
	var st syscall.Stat_t
	if err := syscall.Stat(s.dir, &st); err != nil {
		return fmt.Errorf("watch %s: %w", s.dir, providers.MapFSError(err))
	}
	dev := st.Dev
	tick := time.NewTicker(watchCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			var now syscall.Stat_t
			if err := syscall.Stat(s.dir, &now); err != nil || now.Dev != dev {
				notify(repl.Notification{Kind: repl.Shutdown,
					Err: fmt.Errorf("desktop folder %s is gone (deleted, moved or its drive unmounted): %w", s.dir, repl.ErrGone)})
				return nil
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				s.logf("files: watching %s: %v", s.dir, err)
			}
			// Events were lost: folders created meanwhile may be unwatched. Watch them again, then
			// let the engine run a full pass.
			if err := ws.addTree(s.dir, nil); err != nil {
				s.logf("files: %v", err)
			}
			notify(repl.Notification{Kind: repl.Overflow})
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ws.event(ev, notify) {
				return nil
			}
		}
	}
}

// desktopWatch is the state of one Watch call, owned by its goroutine.
type desktopWatch struct {
	s       *DesktopStore
	w       *fsnotify.Watcher
	watched map[string]bool // absolute folders being watched
	limited bool            // a watch limit was met after start
	since   time.Time       // while placing the first watches: report items changed after it
	recent  []string        // the items so found
}

// startSlack is how far before Watch was called a change still counts as "just before".
const startSlack = 2 * time.Second

// addTree watches dir and every folder below it that is not ignored. found, when not nil,
// receives the relative path and kind of everything met below dir.
func (ws *desktopWatch) addTree(dir string, found func(rel string, folder bool)) error {
	if err := ws.w.Add(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // gone already
		}
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE) {
			return fmt.Errorf("watch %s: the inotify limit is reached (%d folders watched): %w; %s",
				dir, len(ws.watched), err, inotifyHint)
		}
		return fmt.Errorf("watch %s: %w", dir, providers.MapFSError(err))
	}
	ws.watched[dir] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("watch %s: %w%s", dir, providers.MapFSError(err), permissionHint(err))
	}
	rel := ws.rel(dir)
	for _, e := range entries {
		t := e.Type()
		if t&^fs.ModeDir != 0 {
			continue // symbolic links and special files are not synced
		}
		isDir := e.IsDir()
		if ws.s.ig.IgnoredName(rel, e.Name(), isDir) {
			continue
		}
		child := filepath.Join(dir, e.Name())
		if found != nil {
			found(ws.rel(child), isDir)
		}
		if !ws.since.IsZero() {
			if info, err := e.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok && time.Unix(st.Ctim.Sec, st.Ctim.Nsec).After(ws.since) {
					ws.recent = append(ws.recent, ws.rel(child))
				}
			}
		}
		if isDir {
			if err := ws.addTree(child, found); err != nil {
				return err
			}
		}
	}
	return nil
}

// rel turns an absolute path under the folder into a handle ("" for the folder itself).
func (ws *desktopWatch) rel(p string) string {
	if p == ws.s.dir {
		return ""
	}
	return strings.TrimPrefix(p, ws.s.dir+"/")
}

// forget stops watching dir and everything below it (it was moved away or deleted). fsnotify
// would otherwise keep reporting events of a moved folder under its old path.
func (ws *desktopWatch) forget(dir string) {
	for p := range ws.watched {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			delete(ws.watched, p)
			_ = ws.w.Remove(p) // fails when the kernel already dropped the watch
		}
	}
}

// event handles one fsnotify event; true when the folder itself went away.
func (ws *desktopWatch) event(ev fsnotify.Event, notify func(repl.Notification)) (gone bool) {
	if ev.Name == ws.s.dir {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			notify(repl.Notification{Kind: repl.Shutdown,
				Err: fmt.Errorf("desktop folder %s was deleted or moved: %w", ws.s.dir, repl.ErrGone)})
			return true
		}
		return false
	}
	if !strings.HasPrefix(ev.Name, ws.s.dir+"/") {
		return false
	}
	rel := ws.rel(ev.Name)
	switch {
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		if ws.watched[ev.Name] {
			ws.forget(ev.Name)
		}
		if ws.s.ig.Ignored(rel, false) && ws.s.ig.Ignored(rel, true) {
			return false
		}
		notify(repl.Notification{Kind: repl.ItemDeleted, Handle: rel})
	case ev.Has(fsnotify.Create):
		fi, err := os.Lstat(ev.Name)
		if err != nil || (!fi.Mode().IsRegular() && !fi.IsDir()) {
			return false // gone again, or a symbolic link
		}
		if ws.s.ig.Ignored(rel, fi.IsDir()) {
			return false
		}
		notify(repl.Notification{Kind: repl.ItemCreated, Handle: rel})
		if fi.IsDir() {
			// Watch the new folder, and report what was created in it before the watch existed
			// (or what it held when it was moved in).
			err := ws.addTree(ev.Name, func(r string, _ bool) {
				notify(repl.Notification{Kind: repl.ItemCreated, Handle: r})
			})
			if err != nil && !ws.limited {
				ws.limited = true
				ws.s.logf("files: %v", err)
				notify(repl.Notification{Kind: repl.Overflow})
			}
		}
	case ev.Has(fsnotify.Write) || ev.Has(fsnotify.Chmod):
		fi, err := os.Lstat(ev.Name)
		if err != nil || !fi.Mode().IsRegular() {
			return false // folders' own times are not synced; gone files are reported by Remove
		}
		if ws.s.ig.Ignored(rel, false) {
			return false
		}
		notify(repl.Notification{Kind: repl.ItemModified, Handle: rel})
	}
	return false
}
