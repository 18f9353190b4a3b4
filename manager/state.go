package manager

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// partState is a partnership's run-time state. Every field is guarded by Manager.mu, except that
// the provider instance and the handle file are used by the device worker's goroutine only while
// it runs a job.
type partState struct {
	id      string
	hf      *repl.HandleFile
	hfErr   error
	removed bool

	// The provider's stores, opened for one device connection.
	inst       *providers.Instance
	instDevice device.Device
	reopen     bool // options changed: reopen before the next session
	// Watching (service mode): one ChangeSet per side (nil: full pass), and the watchers' stop.
	changes     [2]*repl.ChangeSet
	watching    [2]bool
	watchCtx    context.Context
	watchCancel context.CancelFunc

	queued   bool
	running  bool
	cancel   context.CancelFunc // cancels the running session
	stopped  bool               // the user pressed Stop
	progress *Progress

	last    Session
	hasLast bool
	errMsg  string
	fix     string
	plugin  bool // the error is a provider plugin that stopped
	// pluginDown is when the provider plugin was last seen to stop while watching (zero when
	// not since a session restarted it).
	pluginDown time.Time
	paused     bool // the provider asked for no more automatic sessions
	// massDelete is set when the last session stopped at the mass-delete guard.
	massDelete *MassDelete

	conflicts int
	skipped   int // items the last session skipped
	// notified holds the items notified as changed since the last session started (at most
	// maxNotified; "" stands for "something, not said what").
	notified map[string]struct{}
	forecast int // changes a Refresh forecast; -1 when not known

	debounce, schedule, retry *time.Timer
	firstNotify               time.Time // first notification the debounce timer waits out
	retryAt                   time.Time
	nextSync                  time.Time
	syncStart                 time.Time // when the running session started sending
	lastProgress              time.Time
}

func newPartState(id string) *partState {
	return &partState{id: id, forecast: -1}
}

func (ps *partState) stopTimers() {
	for _, t := range []*time.Timer{ps.debounce, ps.schedule, ps.retry} {
		if t != nil {
			t.Stop()
		}
	}
	ps.debounce, ps.schedule, ps.retry = nil, nil, nil
}

// closeInstance stops the watchers and closes the provider's stores.
func (ps *partState) closeInstance() error {
	if ps.watchCancel != nil {
		ps.watchCancel()
		ps.watchCancel = nil
	}
	ps.changes = [2]*repl.ChangeSet{}
	ps.watching = [2]bool{}
	if ps.inst == nil {
		return nil
	}
	inst := ps.inst
	ps.inst, ps.instDevice = nil, nil
	if inst.Close != nil {
		return inst.Close()
	}
	return nil
}

// setErrorFromSession sets the error shown in the status from a finished session.
func (ps *partState) setErrorFromSession(s Session) {
	ps.errMsg, ps.fix = "", ""
	if s.Outcome == OutcomeFailed && len(s.Errors) > 0 {
		ps.errMsg, ps.fix = s.Errors[0], s.Fix
	}
}

// Status returns the status of every partnership, in the order they were added.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.conf.Partnerships))
	for _, p := range m.conf.Partnerships {
		out = append(out, m.statusLocked(p))
	}
	return out
}

func (m *Manager) statusLocked(p Partnership) Status {
	ps := m.parts[p.ID]
	ds := m.devices[p.Device]
	st := Status{ID: p.ID, Name: p.Name, Device: p.Device, Provider: p.Provider, Connected: ds != nil, Pending: 0}
	if ps == nil {
		st.State = StateIdle
		return st
	}
	if ps.hasLast {
		st.LastSync, st.LastOutcome = ps.last.End, ps.last.Outcome
		st.Skipped = slices.Clone(ps.last.SkippedNames)
	}
	st.NextSync = ps.nextSync
	st.Conflicts = ps.conflicts
	st.Pending = ps.skipped + len(ps.notified)
	if ps.forecast >= 0 {
		st.Pending = ps.forecast + len(ps.notified)
	}
	st.Error, st.Fix = ps.errMsg, ps.fix
	st.Paused = ps.paused
	st.MassDelete = ps.massDelete
	if ps.hfErr != nil && st.Error == "" {
		st.Error = ps.hfErr.Error()
	}
	if _, err := providers.Lookup(p.Provider); err != nil {
		st.Error = "provider " + p.Provider + " is not installed"
		st.Fix = "install its plugin into " + m.dir + "/plugins and restart Cradle, or remove the partnership"
	}
	switch {
	case ps.running:
		st.State = StateSyncing
		if ps.progress != nil {
			pr := *ps.progress
			st.Progress = &pr
		}
	case ps.queued && ds != nil:
		st.State = StateQueued
	case ps.plugin:
		st.State = StateStopped
	case st.Error != "":
		st.State = StateError
	case ds == nil:
		st.State = StateDisconnected
	default:
		st.State = StateIdle
	}
	return st
}

func (m *Manager) publishStatusLocked(id string) {
	for _, p := range m.conf.Partnerships {
		if p.ID == id {
			m.bus.publish(StatusChanged, p.Device, p.ID, m.statusLocked(p))
			return
		}
	}
}

// History returns up to n finished sessions, newest first, of the partnership ref (ID or name),
// or of every partnership when ref is empty. n <= 0 means all that are kept.
func (m *Manager) History(ref string, n int) ([]Session, error) {
	id := ""
	if ref != "" {
		m.mu.Lock()
		p, err := m.lookupLocked(ref)
		m.mu.Unlock()
		if err != nil {
			// A removed partnership's history is still there under its ID.
			id = ref
		} else {
			id = p.ID
		}
	}
	return m.db.sessions(id, n)
}

// errorFix says what to do about a session error, in words a user can act on.
func errorFix(err error, p Partnership, dev string) string {
	switch {
	case errors.Is(err, repl.ErrMassDelete):
		return "to allow them: cradle sync --allow-mass-delete " + p.ID + " (or Preview in the partnership's menu in the window); what a sync deletes is kept in its versions"
	case errors.Is(err, repl.ErrNoSpace), errors.Is(err, device.ErrNoSpace):
		return "free some space and sync again"
	case errors.Is(err, repl.ErrPermission), errors.Is(err, device.ErrPermission):
		return "check the permissions of the folder and sync again"
	case errors.Is(err, repl.ErrReadOnly), errors.Is(err, device.ErrReadOnly):
		return "the storage is read-only: unlock it or choose a direction that does not write to it"
	case errors.Is(err, repl.ErrGone) && repl.ErrorSide(err) == sideDesktop:
		return "put the folder back (or mount its drive) and sync again, or change the partnership's folder"
	case errors.Is(err, repl.ErrGone), errors.Is(err, device.ErrDisconnected):
		return "plug " + dev + " in again; the sync resumes where it stopped"
	case errors.Is(err, device.ErrBusy):
		return "close the other program that uses the device and sync again"
	case errors.Is(err, repl.ErrInUse):
		return "close the other Cradle and sync again"
	}
	return ""
}
