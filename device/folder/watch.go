package folder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/cradle-sync/cradle/device"
)

// watchMask is what the watcher asks inotify for on every folder of the tree.
const watchMask = syscall.IN_CREATE | syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO |
	syscall.IN_CLOSE_WRITE | syscall.IN_ATTRIB | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF |
	syscall.IN_ONLYDIR | syscall.IN_DONT_FOLLOW | syscall.IN_EXCL_UNLINK

// presenceCheck is how often an idle watcher checks that its folder is still there.
const presenceCheck = time.Second

// watcher turns inotify events on the folder tree into device events. One goroutine (run) owns
// the watch tables and reads the inotify descriptor; stop closes the descriptor, which ends it.
type watcher struct {
	d    *Device
	f    *os.File // the inotify descriptor, non-blocking, in Go's poller
	fd   int
	done chan struct{}
	once sync.Once

	// Owned by run (and by startWatcher before run starts).
	wds     map[int32]string // watch descriptor -> folder path ("" is the root)
	rootWD  int32
	limited bool // the watch limit was hit: some folders are not watched
}

// startWatcher watches the whole tree of d's folder and starts the goroutine that reports events.
func startWatcher(d *Device) (*watcher, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("start inotify: %w", err)
	}
	w := &watcher{
		d:    d,
		f:    os.NewFile(uintptr(fd), "inotify"),
		fd:   fd,
		done: make(chan struct{}),
		wds:  map[int32]string{},
	}
	wd, err := syscall.InotifyAddWatch(fd, d.dir, watchMask)
	if err != nil {
		w.f.Close()
		if errors.Is(err, syscall.ENOSPC) {
			return nil, fmt.Errorf("watch %s: the limit of inotify watches is reached "+
				"(raise it with: sudo sysctl fs.inotify.max_user_watches=524288): %w", d.dir, err)
		}
		return nil, fmt.Errorf("watch %s: %w", d.dir, err)
	}
	w.rootWD = int32(wd)
	w.wds[w.rootWD] = ""
	w.addTree("", nil)
	go w.run()
	return w, nil
}

// stop ends the watcher and waits for its goroutine.
func (w *watcher) stop() {
	w.once.Do(func() { w.f.Close() })
	<-w.done
}

// addTree watches every folder below dir (dir itself is already watched). found, when not nil,
// receives each object met, so that a folder that appeared with contents reports them all.
func (w *watcher) addTree(dir string, found func(path string)) {
	entries, err := os.ReadDir(filepath.Join(w.d.dir, filepath.FromSlash(dir)))
	if err != nil {
		return // gone again, or unreadable: nothing to watch
	}
	for _, e := range entries {
		name := e.Name()
		if IsTempName(name) || device.CheckName(name) != nil || e.Type()&os.ModeSymlink != 0 {
			continue
		}
		p := join(dir, name)
		if found != nil {
			found(p)
		}
		if !e.IsDir() {
			continue
		}
		if !w.add(p) {
			continue
		}
		w.addTree(p, found)
	}
}

// add watches one folder; false when it could not.
func (w *watcher) add(dir string) bool {
	wd, err := syscall.InotifyAddWatch(w.fd, filepath.Join(w.d.dir, filepath.FromSlash(dir)), watchMask)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) && !w.limited {
			w.limited = true
			w.d.logf("folder device %s: the limit of inotify watches is reached, some changes will only "+
				"be found by a full sync (raise it with: sudo sysctl fs.inotify.max_user_watches=524288)", w.d.dir)
			w.d.emit(device.Event{Kind: device.EventOverflow, Storage: Storage})
		}
		return false
	}
	w.wds[int32(wd)] = dir
	return true
}

// forget drops the watches of dir and everything below it (it moved away or was deleted).
func (w *watcher) forget(dir string) {
	for wd, p := range w.wds {
		if wd != w.rootWD && (p == dir || len(p) > len(dir) && p[:len(dir)] == dir && p[len(dir)] == '/') {
			delete(w.wds, wd)
			_, _ = syscall.InotifyRmWatch(w.fd, uint32(wd)) // fails when the kernel already dropped it
		}
	}
}

// run reads inotify events until the descriptor is closed or the folder goes away.
func (w *watcher) run() {
	defer close(w.done)
	defer w.once.Do(func() { w.f.Close() })
	buf := make([]byte, 64*1024)
	for {
		// Wake up now and then even when nothing happens: to deliver an overflow owed to a slow
		// reader, and to notice a folder that vanished without an event reaching us (a lazy
		// unmount, a drive pulled while a file was open).
		wait := presenceCheck
		if w.d.flushOverflow() {
			wait = 100 * time.Millisecond
		}
		_ = w.f.SetReadDeadline(time.Now().Add(wait)) // the descriptor is in the poller: never fails
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if !w.d.present() {
					w.d.Gone(fmt.Errorf("%s was removed or unmounted", w.d.dir))
					return
				}
				continue
			}
			return // closed by stop, or the descriptor failed
		}
		if w.handle(buf[:n]) {
			return
		}
	}
}

// handle processes one read's worth of events; true when the folder went away.
func (w *watcher) handle(b []byte) (gone bool) {
	for len(b) >= syscall.SizeofInotifyEvent {
		ev := (*syscall.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := syscall.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return false
		}
		name := string(b[syscall.SizeofInotifyEvent:end])
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		b = b[end:]
		if w.one(ev.Wd, ev.Mask, name) {
			return true
		}
	}
	return false
}

// one processes a single event; true when the folder went away.
func (w *watcher) one(wd int32, mask uint32, name string) (gone bool) {
	if mask&syscall.IN_Q_OVERFLOW != 0 {
		w.d.emit(device.Event{Kind: device.EventOverflow, Storage: Storage})
		return false
	}
	if wd == w.rootWD && mask&(syscall.IN_UNMOUNT|syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF|syscall.IN_IGNORED) != 0 {
		why := "was deleted or moved"
		if mask&syscall.IN_UNMOUNT != 0 {
			why = "was unmounted"
		}
		w.d.Gone(fmt.Errorf("%s %s", w.d.dir, why))
		return true
	}
	dir, ok := w.wds[wd]
	if !ok {
		return false
	}
	if mask&syscall.IN_IGNORED != 0 {
		delete(w.wds, wd)
		return false
	}
	if name == "" || IsTempName(name) {
		return false // events on the folder itself are reported by its parent; temp files are ours
	}
	if err := device.CheckName(name); err != nil {
		return false // never reported by listings either
	}
	p := join(dir, name)
	isDir := mask&syscall.IN_ISDIR != 0
	switch {
	case mask&(syscall.IN_CREATE|syscall.IN_MOVED_TO) != 0:
		if isDir && w.add(p) {
			w.d.emit(device.Event{Kind: device.ObjectAdded, Storage: Storage, Path: p})
			// Whatever was created inside before the watch existed, or moved in with the folder.
			w.addTree(p, func(q string) {
				w.d.emit(device.Event{Kind: device.ObjectAdded, Storage: Storage, Path: q})
			})
			return false
		}
		if !isDir {
			if fi, err := os.Lstat(filepath.Join(w.d.dir, filepath.FromSlash(p))); err == nil && !fi.Mode().IsRegular() {
				return false // a symbolic link or special file: not an object
			}
		}
		w.d.emit(device.Event{Kind: device.ObjectAdded, Storage: Storage, Path: p})
	case mask&(syscall.IN_DELETE|syscall.IN_MOVED_FROM) != 0:
		if isDir {
			w.forget(p)
		}
		w.d.emit(device.Event{Kind: device.ObjectRemoved, Storage: Storage, Path: p})
	case mask&(syscall.IN_CLOSE_WRITE|syscall.IN_ATTRIB) != 0:
		if isDir {
			return false
		}
		w.d.emit(device.Event{Kind: device.ObjectChanged, Storage: Storage, Path: p})
	}
	return false
}
