package ui

import (
	"runtime/debug"
	"time"

	"github.com/cradle-sync/cradle/manager"
)

// FlushInterval is the shortest time between two updates of the window from manager events:
// progress and status changes that arrive faster are coalesced.
const FlushInterval = 250 * time.Millisecond

// clockInterval is how often "2 minutes ago" is brought up to date.
const clockInterval = 30 * time.Second

// trimAfter is how long the window waits after a burst of work (a finished sync) before it hands
// the memory that work freed back to the system: Go's runtime otherwise keeps up to the heap's
// size again, and a window that idles in the tray for days should be small. Opening is such a
// burst too (the demo's set-up, loading fonts, the first frames): trimStart lists when to trim
// after it.
const trimAfter = 5 * time.Second

var trimStart = []time.Duration{5 * time.Second, 15 * time.Second}

// refreshRequest asks the event loop for an update now (after a user action), with the
// conflicts read again when conflicts is set.
type refreshRequest struct{ conflicts bool }

// snapshot is what the event loop read from the manager for one update.
type snapshot struct {
	devices      []manager.DeviceInfo
	parts        []manager.Partnership
	statuses     []manager.Status
	settings     manager.Settings
	conflicts    []manager.Conflict
	conflictsErr error
	hasConflicts bool
	events       pending
}

// pending is what the events since the last update asked for.
type pending struct {
	any        bool
	conflicts  bool
	history    bool
	finished   []manager.Session
	added      int
	problems   []manager.DeviceInfo
	newDevices []manager.DeviceInfo
	stopped    []string
	errors     []string
}

func (p *pending) add(ev manager.Event) {
	p.any = true
	switch ev.Type {
	case manager.SessionFinished:
		if s, ok := ev.Data.(manager.Session); ok {
			p.finished = append(p.finished, s)
		}
		p.conflicts, p.history = true, true
	case manager.ConflictAdded:
		p.added++
		p.conflicts = true
	case manager.ConflictResolved, manager.PartnershipChanged:
		p.conflicts = true
	case manager.DeviceProblem:
		if d, ok := ev.Data.(manager.DeviceInfo); ok {
			p.problems = append(p.problems, d)
		}
	case manager.DeviceNew:
		if d, ok := ev.Data.(manager.DeviceInfo); ok {
			p.newDevices = append(p.newDevices, d)
		}
	case manager.ProviderStopped:
		if s, ok := ev.Data.(string); ok {
			p.stopped = append(p.stopped, ev.Partnership+"\x00"+s)
		}
	case manager.Error:
		if s, ok := ev.Data.(string); ok {
			p.errors = append(p.errors, s)
		}
	}
}

// loop follows the manager's events until Close or the manager closes. It never blocks the
// manager (the bus drops what a subscriber does not take, and this loop only takes and notes),
// and it updates the window at most once every FlushInterval, after the previous update has been
// applied.
func (w *Window) loop() {
	defer close(w.done)
	var (
		p         pending
		timer     *time.Timer
		timerC    <-chan time.Time
		lastFlush time.Time
		dropped   uint64
	)
	clock := time.NewTicker(clockInterval)
	defer clock.Stop()
	starts := trimStart
	trim := time.NewTimer(starts[0])
	defer trim.Stop()
	arm := func() {
		if timerC != nil {
			return
		}
		wait := time.Until(lastFlush.Add(FlushInterval))
		if wait < 0 {
			wait = 0
		}
		timer = time.NewTimer(wait)
		timerC = timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-w.quit:
			return
		case ev, ok := <-w.sub.C():
			if !ok {
				return
			}
			p.add(ev)
			arm()
			if ev.Type == manager.SessionFinished {
				trim.Reset(trimAfter)
				starts = nil
			}
		case r := <-w.refresh:
			p.any = true
			p.conflicts = p.conflicts || r.conflicts
			arm()
		case <-clock.C:
			p.any = true
			arm()
		case <-trim.C:
			debug.FreeOSMemory()
			if len(starts) > 1 {
				trim.Reset(starts[1] - starts[0])
				starts = starts[1:]
			}
		case <-timerC:
			timerC = nil
			if !p.any {
				continue
			}
			if w.applying.Load() {
				// The last update is still queued: coalesce into the next one.
				lastFlush = time.Now()
				arm()
				continue
			}
			if n := w.sub.Dropped(); n != dropped {
				// Events were lost: read everything again.
				dropped = n
				p.conflicts, p.history = true, true
			}
			snap := w.fetch(p)
			p = pending{}
			lastFlush = time.Now()
			w.applying.Store(true)
			w.do(func() {
				defer w.applying.Store(false)
				w.apply(snap)
			})
		}
	}
}

// requestRefresh asks the event loop for an update soon; any goroutine.
func (w *Window) requestRefresh(conflicts bool) {
	for {
		select {
		case w.refresh <- refreshRequest{conflicts: conflicts}:
			return
		case old := <-w.refresh:
			conflicts = conflicts || old.conflicts
		}
	}
}

// fetch reads the manager's state for an update (off the UI goroutine: Conflicts reads files).
func (w *Window) fetch(p pending) snapshot {
	s := snapshot{
		devices:  w.m.Devices(),
		parts:    w.m.Partnerships(),
		statuses: w.m.Status(),
		settings: w.m.Settings(),
		events:   p,
	}
	if p.conflicts {
		s.conflicts, s.conflictsErr = w.m.Conflicts()
		s.hasConflicts = true
	}
	return s
}

// apply shows a snapshot; UI goroutine.
func (w *Window) apply(s snapshot) {
	w.devices = s.devices
	w.parts = s.parts
	w.settings = s.settings
	clear(w.statuses)
	for _, st := range s.statuses {
		w.statuses[st.ID] = st
	}
	if s.hasConflicts {
		if s.conflictsErr != nil {
			w.log.Warn("ui: read the conflicts", "err", s.conflictsErr)
		}
		if s.conflicts != nil || s.conflictsErr == nil {
			w.conflicts = s.conflicts
		}
	}
	w.pickDevice()
	w.render()
	if w.conflictDlg != nil && s.hasConflicts {
		w.conflictDlg.update(w.pendingConflicts())
	}
	if w.historyDlg != nil && s.events.history {
		w.historyDlg.load()
	}
	if w.addDlg != nil {
		w.addDlg.devicesChanged()
	}
	w.notify(s.events)
	for _, msg := range s.events.errors {
		w.banner.show(sentence(msg))
	}
	w.offerSetup(s.events.newDevices)
	if w.tray != nil {
		w.tray.update()
	}
}
