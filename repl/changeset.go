package repl

// ChangeSet: the notifications a Notifier reported between sessions, for incremental detection.

import "sync"

// ChangeSet collects a Notifier's notifications between sessions. Its Notify method is the
// callback to give Watch. It is safe for concurrent use. A new ChangeSet asks for a full pass
// (changes made before watching started are unknown).
type ChangeSet struct {
	mu      sync.Mutex
	handles map[string]struct{}
	full    bool
	gone    error
}

// NewChangeSet returns a ChangeSet that asks for a full pass first.
func NewChangeSet() *ChangeSet {
	return &ChangeSet{handles: map[string]struct{}{}, full: true}
}

// maxPendingHandles bounds a ChangeSet: past it, a full pass is cheaper than remembering.
const maxPendingHandles = 100_000

// Notify records one notification.
func (c *ChangeSet) Notify(n Notification) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch n.Kind {
	case Overflow:
		c.full = true
		clear(c.handles)
	case Shutdown:
		c.gone = n.Err
		if c.gone == nil {
			c.gone = ErrGone
		}
	default:
		if c.full || n.Handle == "" {
			return
		}
		c.handles[n.Handle] = struct{}{}
		if len(c.handles) > maxPendingHandles {
			c.full = true
			clear(c.handles)
		}
	}
}

// Pending reports whether a session has something to look at: a full pass is due, or handles
// were notified.
func (c *ChangeSet) Pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.full || len(c.handles) > 0
}

// Gone returns the error of a Shutdown notification, if one came.
func (c *ChangeSet) Gone() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// take empties the set and returns what it held.
func (c *ChangeSet) take() (handles []string, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	full = c.full
	if !full {
		handles = make([]string, 0, len(c.handles))
		for h := range c.handles {
			handles = append(handles, h)
		}
	}
	c.full = false
	clear(c.handles)
	return handles, full
}

// putBack restores what take returned, after a detection that failed.
func (c *ChangeSet) putBack(handles []string, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if full {
		c.full = true
		clear(c.handles)
		return
	}
	if c.full {
		return
	}
	for _, h := range handles {
		c.handles[h] = struct{}{}
	}
}
