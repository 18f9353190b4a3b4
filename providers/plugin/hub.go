package plugin

import (
	"context"
	"sync"

	"github.com/cradle-sync/cradle/repl"
)

// watchBuffer is how many notifications wait for the host before the rest are dropped and an
// Overflow is sent in their place.
const watchBuffer = 4096

// hub runs a Notifier store's Watch for the whole life of the open store, from Open on, and hands
// its notifications to the host's current Watch call. So a change made between Open and the
// host's Watch is not lost, and when the host's Watch returns the store is already watching (a
// watcher in another process would otherwise miss the first changes while it starts).
type hub struct {
	mu       sync.Mutex
	queue    []repl.Notification
	overflow bool
	ended    bool          // the store's Watch returned
	err      error         // what it returned
	sub      chan struct{} // wakes the current subscriber; older ones stop
	done     chan struct{} // closed when the store's Watch has returned
}

func startHub(n repl.Notifier) (*hub, context.CancelFunc) {
	h := &hub{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		err := n.Watch(ctx, h.notify)
		h.mu.Lock()
		h.ended, h.err = true, err
		w := h.sub
		h.mu.Unlock()
		wake(w)
		close(h.done)
	}()
	return h, cancel
}

func wake(w chan struct{}) {
	if w == nil {
		return
	}
	select {
	case w <- struct{}{}:
	default:
	}
}

// notify queues a notification; it never blocks.
func (h *hub) notify(n repl.Notification) {
	h.mu.Lock()
	if len(h.queue) < watchBuffer {
		h.queue = append(h.queue, n)
	} else {
		h.overflow = true
	}
	w := h.sub
	h.mu.Unlock()
	wake(w)
}

// subscribe makes a new subscriber the current one and returns its wake channel.
func (h *hub) subscribe() chan struct{} {
	w := make(chan struct{}, 1)
	h.mu.Lock()
	old := h.sub
	h.sub = w
	h.mu.Unlock()
	wake(old) // so that it sees it was replaced
	return w
}

// take returns what is queued for subscriber w; current is false when a newer one replaced it.
func (h *hub) take(w chan struct{}) (q []repl.Notification, overflow, ended bool, err error, current bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w != h.sub {
		return nil, false, false, nil, false
	}
	q, overflow = h.queue, h.overflow
	h.queue, h.overflow = nil, false
	return q, overflow, h.ended, h.err, true
}
