package contacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/internal/devwatch"
	"github.com/cradle-sync/cradle/repl"
)

// watchCheck is how often Watch checks that the folder itself is still there.
const watchCheck = 2 * time.Second

// startSlack is how far back Watch looks for changes made while it was starting.
const startSlack = 2 * time.Second

var _ repl.Notifier = (*Desktop)(nil)

// Watch reports cards created, changed and deleted in the folder as they happen (fsnotify),
// Overflow when events were lost, and Shutdown when the folder itself went away (deleted, moved,
// its drive unmounted). It returns nil when ctx is done, and an error at once when watching
// cannot start (the caller then relies on full passes).
func (s *Desktop) Watch(ctx context.Context, notify func(repl.Notification)) error {
	// Changes made just before the watch is in place raise no event: what the store knew then is
	// compared with the folder once it is watched, and files changed lately are reported.
	since := time.Now().Add(-startSlack)
	s.mu.Lock()
	before := make(map[string]string, len(s.byHandle))
	for h, name := range s.byHandle {
		before[h] = name
	}
	s.mu.Unlock()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch contacts folder %s: %w (raise fs.inotify.max_user_instances if it is exhausted)", s.dir, err)
	}
	defer w.Close()
	if err := w.Add(s.dir); err != nil {
		return fmt.Errorf("watch contacts folder %s: %w", s.dir, providers.MapFSError(err))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(s.dir, &st); err != nil {
		return fmt.Errorf("watch contacts folder %s: %w", s.dir, providers.MapFSError(err))
	}
	// Know every file's handle now, so that a deletion can be named.
	s.mu.Lock()
	err = s.scan(ctx)
	var early []repl.Notification
	if err == nil {
		for h := range before {
			if _, ok := s.byHandle[h]; !ok {
				early = append(early, repl.Notification{Kind: repl.ItemDeleted, Handle: h})
			}
		}
		for h, name := range s.byHandle {
			info, err := os.Stat(filepath.Join(s.dir, name))
			if err == nil && !changeTime(info).Before(since) { // a writer cannot set the change time back
				early = append(early, repl.Notification{Kind: repl.ItemModified, Handle: h})
			}
		}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, n := range early {
		notify(n)
	}
	tick := time.NewTicker(watchCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			var now syscall.Stat_t
			if err := syscall.Stat(s.dir, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
				notify(repl.Notification{Kind: repl.Shutdown,
					Err: fmt.Errorf("contacts folder %s is gone (deleted, moved or its drive unmounted): %w", s.dir, repl.ErrGone)})
				return nil
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				s.log("watching %s: %v", s.dir, err)
			}
			notify(repl.Notification{Kind: repl.Overflow})
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name := filepath.Base(ev.Name)
			if filepath.Dir(ev.Name) != s.dir || !isCardFile(name) {
				continue
			}
			for _, n := range s.noteChange(name) {
				notify(n)
			}
		}
	}
}

// noteChange reads one file again after an event and says what became of the card it holds: a
// handle that left the file is deleted, the one it holds now is created or modified.
func (s *Desktop) noteChange(name string) []repl.Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	oldHandle := ""
	if f := s.files[name]; f != nil {
		oldHandle = f.handle
	}
	info, err := os.Stat(filepath.Join(s.dir, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		delete(s.files, name)
	case err != nil || !info.Mode().IsRegular():
		delete(s.files, name)
	default:
		if err := s.load(name, info); err != nil {
			return []repl.Notification{{Kind: repl.Overflow}} // cannot tell: a full pass will
		}
	}
	newHandle := ""
	if f := s.files[name]; f != nil {
		newHandle = f.handle
	}
	var out []repl.Notification
	if oldHandle != "" && oldHandle != newHandle {
		if s.byHandle[oldHandle] == name {
			delete(s.byHandle, oldHandle)
		}
		out = append(out, repl.Notification{Kind: repl.ItemDeleted, Handle: oldHandle})
	}
	if newHandle != "" {
		if cur, ok := s.byHandle[newHandle]; !ok || cur == name {
			s.byHandle[newHandle] = name
		}
		kind := repl.ItemModified
		if oldHandle != newHandle {
			kind = repl.ItemCreated
		}
		out = append(out, repl.Notification{Kind: kind, Handle: newHandle})
	}
	return out
}

var _ repl.Notifier = (*DeviceFile)(nil)

// Watch reports the cards created, changed and deleted on the device as it happens: when the
// device says the contacts file changed (written by the phone, by another computer, deleted, its
// folder removed), Watch reads the file again and compares each card with what was read before.
// Cradle's own rewrites come back as events too, and find the file as it was written: nothing to
// report, nothing downloaded. Watch reports Shutdown when the device or the file's storage goes
// away, returns nil when ctx is done, and an error at once when the file cannot be read to start
// with (the caller then relies on full passes).
func (s *DeviceFile) Watch(ctx context.Context, notify func(repl.Notification)) error {
	events, stop := device.Subscribe(s.dev) // before reading, so that no change is missed
	defer stop()
	s.mu.Lock()
	err := s.ensure(ctx)
	storage, file := s.storage, s.path
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("watch the contacts file %s: %w", s.where(), err)
	}
	return devwatch.Run(ctx, events, storage, notify, func(ev device.Event) {
		// An event without a path may be the file; one for a folder holding it (removed with
		// the file in it) is.
		if ev.Path == "" || ev.Path == file || strings.HasPrefix(file, ev.Path+"/") {
			s.reread(ctx, notify)
		}
	})
}

// reread reads the contacts file again and notifies the cards created, changed and deleted since
// the last read; an Overflow when it cannot be read (the next session finds out why).
func (s *DeviceFile) reread(ctx context.Context, notify func(repl.Notification)) {
	s.mu.Lock()
	before := s.cardHashes()
	err := s.ensure(ctx)
	after := s.cardHashes()
	s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			notify(repl.Notification{Kind: repl.Overflow})
		}
		return
	}
	for _, h := range slices.Sorted(maps.Keys(after)) {
		if old, ok := before[h]; !ok {
			notify(repl.Notification{Kind: repl.ItemCreated, Handle: h})
		} else if old != after[h] {
			notify(repl.Notification{Kind: repl.ItemModified, Handle: h})
		}
	}
	for _, h := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[h]; !ok {
			notify(repl.Notification{Kind: repl.ItemDeleted, Handle: h})
		}
	}
}

// cardHashes maps each card of the file as last read to its hash. Called with s.mu held.
func (s *DeviceFile) cardHashes() map[string]string {
	m := map[string]string{}
	if s.file != nil {
		for h, d := range s.file.byHandle {
			m[h] = d.hash
		}
	}
	return m
}

// changeTime is when a file's inode last changed (its modification time where that is unknown).
func changeTime(info fs.FileInfo) time.Time {
	if ns := fsutil.ChangeTime(info); ns != 0 {
		return time.Unix(0, ns)
	}
	return info.ModTime()
}
