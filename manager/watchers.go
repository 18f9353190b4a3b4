package manager

import (
	"cmp"
	"context"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// Watchers: while a partnership's stores are open, each side that is a repl.Notifier is watched
// (watchLocked). A notification counts as a pending change and, after DebounceDelay of quiet
// (at most DebounceMax after the first notification under a stream of changes), queues a
// change-triggered sync that looks only at the notified items (notified, then fire in
// schedule.go).

// watchLocked starts a watcher on each side whose store is a repl.Notifier and is not watched
// (first use, or its watcher ended: a plugin that stopped is restarted by the next session).
func (m *Manager) watchLocked(ds *devState, p Partnership, ps *partState) {
	if ps.watchCancel == nil {
		ps.watchCtx, ps.watchCancel = context.WithCancel(ds.ctx)
	}
	stores := [2]repl.Store{ps.inst.Desktop, ps.inst.Device}
	for side, st := range stores {
		if ps.watching[side] {
			continue
		}
		n, ok := st.(repl.Notifier)
		if !ok {
			ps.changes[side] = nil
			continue
		}
		cs := repl.NewChangeSet()
		ps.changes[side], ps.watching[side] = cs, true
		wctx := ps.watchCtx
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			err := n.Watch(wctx, func(nt repl.Notification) {
				cs.Notify(nt)
				m.notified(p.ID, ps, nt)
			})
			m.mu.Lock()
			if ps.changes[side] == cs {
				ps.watching[side] = false
				if err != nil {
					// Watching cannot start: full passes instead.
					ps.changes[side] = nil
				}
			}
			m.mu.Unlock()
			if err != nil && wctx.Err() == nil {
				m.log.Info("manager: changes are found by full scans only", "partnership", p.ID, "side", side, "err", err)
			}
		}()
	}
}

// maxNotified bounds the changes counted as waiting (the count is for show; past it, the session
// finds them all).
const maxNotified = 10_000

// notified is a store's change notification: it counts as pending and, after a quiet period,
// starts an incremental session.
func (m *Manager) notified(id string, ps *partState, n repl.Notification) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ps.removed || m.closed {
		return
	}
	if n.Kind == repl.Shutdown {
		if isProviderStop(n.Err) {
			ps.plugin, ps.pluginDown = true, time.Now()
			ps.errMsg = "provider stopped: " + n.Err.Error()
			ps.fix = "the next sync restarts it"
			p, err := m.lookupLocked(id)
			if err == nil {
				m.bus.publish(ProviderStopped, p.Device, id, ps.errMsg)
				m.publishStatusLocked(id)
			}
		}
		return
	}
	// Notifications during a session are mostly the echo of its own writes: they still start a
	// session after the quiet period (which finds nothing to do if so), but are not shown as
	// pending changes. A file written several times is one change waiting.
	if !ps.running && len(ps.notified) < maxNotified {
		if ps.notified == nil {
			ps.notified = map[string]struct{}{}
		}
		first := len(ps.notified) == 0
		ps.notified[n.Handle] = struct{}{}
		if first {
			m.publishStatusLocked(id)
		}
	}
	if !m.cfg.Service || ps.paused {
		return
	}
	p, err := m.lookupLocked(id)
	if err != nil || m.devices[p.Device] == nil {
		return
	}
	quiet, most := m.changeDelaysLocked()
	now := time.Now()
	if ps.debounce != nil {
		// Quiet again for the delay, but no later than the cap after the first notification.
		if wait := min(quiet, most-now.Sub(ps.firstNotify)); wait > 0 {
			ps.debounce.Reset(wait)
		}
		return
	}
	ps.firstNotify = now
	ps.debounce = time.AfterFunc(quiet, func() { m.fire(id, TriggerChange) })
}

// changeDelaysLocked returns the quiet period after a change and the longest a stream of
// changes may postpone its session: Config's when set, else the settings' (else the defaults).
func (m *Manager) changeDelaysLocked() (quiet, most time.Duration) {
	quiet, most = m.debounce, m.debounceMax
	if quiet <= 0 {
		quiet = cmp.Or(m.conf.Settings.ChangeDelay, DefaultDebounce)
	}
	if most <= 0 {
		most = cmp.Or(m.conf.Settings.ChangeDelayMax, DefaultDebounceMax)
	}
	return quiet, max(quiet, most)
}

// nudgeOverlapping: a session of p that wrote to the device changed what the device's other
// partnerships see when their device folders overlap p's (one inside the other). A device
// announces no object its initiator made, so their watchers hear nothing of it: their device
// side is marked for a full look and their quiet period starts, as if notified.
func (m *Manager) nudgeOverlapping(ctx context.Context, ds *devState, p Partnership) {
	var others []Partnership
	m.mu.Lock()
	for _, q := range m.conf.Partnerships {
		if q.ID != p.ID && q.Device == p.Device && q.Options[providers.OptDevicePath] != "" {
			others = append(others, q.clone())
		}
	}
	m.mu.Unlock()
	if len(others) == 0 || p.Options[providers.OptDevicePath] == "" {
		return // the usual case: asks the device nothing
	}
	sid, path, err := providers.ParseDevicePath(ctx, ds.dev, p.Options[providers.OptDevicePath])
	if err != nil {
		return
	}
	type nudge struct {
		id string
		ps *partState
	}
	var nudges []nudge
	for _, q := range others {
		qsid, qpath, err := providers.ParseDevicePath(ctx, ds.dev, q.Options[providers.OptDevicePath])
		if err != nil || qsid != sid || !within(qpath, path) && !within(path, qpath) {
			continue
		}
		m.mu.Lock()
		if qs := m.parts[q.ID]; qs != nil && !qs.removed {
			if cs := qs.changes[1]; cs != nil {
				cs.Notify(repl.Notification{Kind: repl.Overflow})
			}
			nudges = append(nudges, nudge{q.ID, qs})
		}
		m.mu.Unlock()
	}
	for _, n := range nudges {
		m.notified(n.id, n.ps, repl.Notification{Kind: repl.Overflow})
	}
}

// within tells whether the device path p is dir or inside it ("" is the storage's top).
func within(p, dir string) bool {
	return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
}
