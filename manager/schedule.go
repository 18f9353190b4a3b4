package manager

import "time"

// Timers: the debounce after change notifications, the partnership's periodic schedule and the
// retry after a failed sync all end in fire, which queues a sync job (jobs.go).

// fire queues an automatic session (debounce, schedule, retry timers).
func (m *Manager) fire(id string, t Trigger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.parts[id]
	if m.closed || ps == nil || ps.removed {
		return
	}
	switch t {
	case TriggerChange:
		ps.debounce = nil
	case TriggerRetry:
		ps.retry = nil
	case TriggerSchedule:
		ps.schedule = nil
	}
	if ps.paused {
		return
	}
	p, err := m.lookupLocked(id)
	if err != nil {
		return
	}
	ds := m.devices[p.Device]
	if ds == nil {
		return
	}
	m.enqueueLocked(ds, &job{kind: jobSync, part: id, trigger: t})
}

// scheduleLocked (re)arms the partnership's periodic timer from its last session.
func (m *Manager) scheduleLocked(p Partnership, ps *partState, ds *devState) {
	if ps.schedule != nil {
		ps.schedule.Stop()
		ps.schedule = nil
	}
	interval := p.Interval
	if interval == 0 {
		interval = m.conf.Settings.Interval
	}
	if interval <= 0 || ps.paused || ds == nil {
		if ps.retry == nil {
			ps.nextSync = time.Time{}
		}
		return
	}
	from := time.Now()
	if ps.hasLast && !ps.last.End.IsZero() && ps.last.End.Before(from) {
		from = ps.last.End
	}
	due := from.Add(interval)
	wait := time.Until(due)
	if wait < 0 {
		wait = 0
	}
	id := p.ID
	ps.schedule = time.AfterFunc(wait, func() { m.fire(id, TriggerSchedule) })
	ps.nextSync = due
	if ps.retry != nil && ps.retryAt.Before(due) {
		ps.nextSync = ps.retryAt
	}
}
