package emulator

import (
	"sync"
	"time"
)

// settle is how long the watcher waits after a change before it rescans, so that a burst of
// changes (a file being written) becomes one event.
const settle = 30 * time.Millisecond

// notifier reports changes in folders (inotify on Linux).
type notifier interface {
	// add watches a folder and returns its watch descriptor.
	add(path string) (int, error)
	// rm stops watching.
	rm(wd int)
	// read blocks until changes arrive and returns the descriptors of the folders that
	// changed; all is true when the kernel dropped events (then every folder is rescanned).
	read() (wds []int, all bool, err error)
	close()
}

// watcher turns changes on the host in the folders the initiator listed into MTP events: with
// inotify where available, else by polling those folders.
type watcher struct {
	e     *Emulator
	n     notifier // nil: poll
	mu    sync.Mutex
	objs  map[*object]int // watched folders and their watch descriptors
	byWD  map[int]*object
	dirty map[*object]bool
	all   bool
	kick  chan struct{}
}

func newWatcher(e *Emulator) *watcher {
	w := &watcher{e: e, objs: map[*object]int{}, byWD: map[int]*object{}, dirty: map[*object]bool{}, kick: make(chan struct{}, 1)}
	if !e.opts.PollEvents {
		n, err := openNotifier()
		if err != nil {
			e.log.Info("emulator: inotify unavailable; polling listed folders", "err", err)
		} else {
			w.n = n
		}
	}
	return w
}

// add starts watching folder o; the caller holds e.mu.
func (w *watcher) add(o *object) {
	wd := -1
	if w.n != nil {
		var err error
		if wd, err = w.n.add(w.e.tab.path(o)); err != nil {
			w.e.log.Debug("emulator: cannot watch a folder", "path", w.e.tab.path(o), "err", err)
			wd = -1
		}
	}
	w.mu.Lock()
	w.objs[o] = wd
	if wd >= 0 {
		w.byWD[wd] = o
	}
	w.mu.Unlock()
}

// remove stops watching folder o; the caller holds e.mu.
func (w *watcher) remove(o *object) {
	w.mu.Lock()
	wd, ok := w.objs[o]
	delete(w.objs, o)
	delete(w.dirty, o)
	if ok && wd >= 0 && w.byWD[wd] == o {
		delete(w.byWD, wd)
	}
	w.mu.Unlock()
	if ok && wd >= 0 && w.n != nil {
		w.n.rm(wd)
	}
}

// touch makes the watcher look at folder o again soon, as if the host had changed it: objects
// held back (Options.LateObjects) are registered then. Nothing happens when o is not watched.
func (w *watcher) touch(o *object) {
	w.mu.Lock()
	_, ok := w.objs[o]
	if ok {
		w.dirty[o] = true
	}
	w.mu.Unlock()
	if ok {
		signal(w.kick)
	}
}

// run watches until the device is gone.
func (w *watcher) run() {
	if w.n == nil {
		w.poll()
		return
	}
	go w.readLoop()
	defer w.n.close()
	for {
		select {
		case <-w.e.gone:
			return
		case <-w.kick:
		}
		// Let a burst of changes settle.
		for quiet := false; !quiet; {
			select {
			case <-w.e.gone:
				return
			case <-w.kick:
			case <-time.After(settle):
				quiet = true
			}
		}
		w.mu.Lock()
		var todo []*object
		if w.all {
			for o := range w.objs {
				todo = append(todo, o)
			}
		} else {
			for o := range w.dirty {
				todo = append(todo, o)
			}
		}
		w.dirty, w.all = map[*object]bool{}, false
		w.mu.Unlock()
		w.rescan(todo)
	}
}

// readLoop turns inotify's reports into dirty folders; it ends when the notifier is closed.
// After each read it lets the kernel gather reports for half the settle time before it reads
// again: the device's own writes (an upload is five or six reports) would otherwise wake it for
// each one, and the folders are rescanned only once the changes have settled anyway. (Half:
// under a stream of changes its kicks must come closer than settle, or run would rescan at
// every one.)
func (w *watcher) readLoop() {
	const gather = settle / 2
	pause := time.NewTimer(gather)
	defer pause.Stop()
	for {
		wds, all, err := w.n.read()
		if err != nil {
			return
		}
		w.mu.Lock()
		w.all = w.all || all
		for _, wd := range wds {
			if o := w.byWD[wd]; o != nil {
				w.dirty[o] = true
			}
		}
		w.mu.Unlock()
		signal(w.kick)
		pause.Reset(gather)
		select {
		case <-w.e.gone:
			return
		case <-pause.C:
		}
	}
}

// poll rescans every watched folder each PollInterval.
func (w *watcher) poll() {
	t := time.NewTicker(w.e.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-w.e.gone:
			return
		case <-t.C:
		}
		w.mu.Lock()
		todo := make([]*object, 0, len(w.objs))
		for o := range w.objs {
			todo = append(todo, o)
		}
		w.mu.Unlock()
		w.rescan(todo)
	}
}

func (w *watcher) rescan(todo []*object) {
	if len(todo) == 0 {
		return
	}
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	if w.e.tab.session == 0 {
		return
	}
	for _, o := range todo {
		w.e.tab.rescan(o)
	}
}
