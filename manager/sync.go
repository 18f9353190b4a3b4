package manager

import (
	"context"
	"fmt"
)

// target is a partnership to sync and its connected device.
type target struct {
	p  Partnership
	ds *devState
}

// targetsLocked resolves partnership refs (IDs or names) to connected partnerships. With no refs
// it takes every partnership whose device is connected.
func (m *Manager) targetsLocked(refs []string) ([]target, error) {
	if m.closed {
		return nil, ErrClosed
	}
	var out []target
	if len(refs) == 0 {
		if len(m.conf.Partnerships) == 0 {
			return nil, kindf(ErrUnknownPartnership, "there are no partnerships yet; add one with \"cradle partner add\"")
		}
		for _, p := range m.conf.Partnerships {
			if ds := m.devices[p.Device]; ds != nil {
				out = append(out, target{p, ds})
			}
		}
		if len(out) == 0 {
			return nil, kindf(ErrNotConnected, "the partnerships' devices are not connected; plug one in, unlock it and choose \"File transfer\"")
		}
		return out, nil
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		p, err := m.lookupLocked(ref)
		if err != nil {
			return nil, err
		}
		if seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		ds := m.devices[p.Device]
		if ds == nil {
			return nil, kindf(ErrNotConnected, "partnership %s (%s): %s is not connected; plug it in, unlock it and choose \"File transfer\"", p.ID, p.Name, m.deviceLabelLocked(p.Device))
		}
		out = append(out, target{p, ds})
	}
	return out, nil
}

func (m *Manager) deviceLabelLocked(serial string) string {
	if ds := m.devices[serial]; ds != nil {
		return ds.info.Label
	}
	if devs, err := m.db.knownDevices(); err == nil {
		for _, k := range devs {
			if k.Serial == serial && k.Label != "" {
				return fmt.Sprintf("%s (serial %s)", k.Label, serial)
			}
		}
	}
	return "device " + serial
}

// SyncNow queues a session for each partnership given (ID or name), or for every partnership of a
// connected device when none are given, and returns at once. Sessions of one device run one after
// the other; devices run side by side. Progress and results arrive as events. A partnership whose
// device is not connected is an error (ErrNotConnected) and nothing is queued.
func (m *Manager) SyncNow(refs ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts, err := m.targetsLocked(refs)
	if err != nil {
		return err
	}
	for _, t := range ts {
		m.enqueueLocked(t.ds, &job{kind: jobSync, part: t.p.ID, trigger: TriggerManual})
	}
	return nil
}

// SyncDevice queues a session for every partnership of the connected device serial.
func (m *Manager) SyncDevice(serial string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ds := m.devices[serial]
	if ds == nil {
		return kindf(ErrNotConnected, "%s is not connected; plug it in, unlock it and choose \"File transfer\"", m.deviceLabelLocked(serial))
	}
	n := 0
	for _, p := range m.conf.Partnerships {
		if p.Device == serial {
			m.enqueueLocked(ds, &job{kind: jobSync, part: p.ID, trigger: TriggerManual})
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s has no partnerships yet; add one first", ds.info.Label)
	}
	return nil
}

// Sync runs a session for each partnership given (or every connected one, as SyncNow) and waits
// for them all. It returns each session as recorded in the history, in the order asked; a session
// that failed is not an error of Sync (see Session.Outcome and Errors). Cancelling ctx stops
// waiting and stops the sessions.
func (m *Manager) Sync(ctx context.Context, opts SyncOptions, refs ...string) ([]Session, error) {
	trigger := opts.Trigger
	if trigger == "" {
		trigger = TriggerManual
	}
	m.mu.Lock()
	ts, err := m.targetsLocked(refs)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	waits := make([]chan jobResult, len(ts))
	for i, t := range ts {
		waits[i] = make(chan jobResult, 1)
		m.enqueueLocked(t.ds, &job{kind: jobSync, part: t.p.ID, trigger: trigger, opts: opts, waiters: []chan jobResult{waits[i]}})
	}
	m.mu.Unlock()
	out := make([]Session, len(ts))
	for i, w := range waits {
		select {
		case r := <-w:
			out[i] = r.session
			if r.err != nil {
				out[i] = Session{Partnership: ts[i].p.ID, Name: ts[i].p.Name, Device: ts[i].p.Device, Trigger: trigger,
					Outcome: OutcomeFailed, Errors: []string{r.err.Error()}}
			}
		case <-ctx.Done():
			ids := make([]string, len(ts))
			for i, t := range ts {
				ids[i] = t.p.ID
			}
			m.Stop(ids...)
			return out[:i], ctx.Err()
		}
	}
	return out, nil
}

// Stop cancels the running sessions of the partnerships given (ID or name; all when none) and
// drops their queued ones. A cancelled session keeps what it committed; the next one resumes.
func (m *Manager) Stop(refs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := map[string]bool{}
	for _, ref := range refs {
		if p, err := m.lookupLocked(ref); err == nil {
			ids[p.ID] = true
		}
	}
	for id, ps := range m.parts {
		if len(refs) > 0 && !ids[id] {
			continue
		}
		if ps.running && ps.cancel != nil {
			ps.stopped = true
			ps.cancel()
		}
		if ps.debounce != nil {
			ps.debounce.Stop()
			ps.debounce = nil
		}
	}
	for _, ds := range m.devices {
		for _, p := range m.conf.Partnerships {
			if p.Device != ds.info.Serial || len(refs) > 0 && !ids[p.ID] {
				continue
			}
			for _, j := range ds.drop(p.ID) {
				j.reply(jobResult{
					session: Session{Partnership: p.ID, Name: p.Name, Device: p.Device, Trigger: j.trigger, Outcome: OutcomeStopped,
						Errors: []string{"stopped before it started"}},
				})
			}
			if ps := m.parts[p.ID]; ps != nil && ps.queued {
				ps.queued = false
				m.publishStatusLocked(p.ID)
			}
		}
	}
}

// Refresh counts, for the partnerships given (or all) whose device is connected, the changes a
// session would make now (Status.Pending), without changing anything on either side. It waits
// for a session of the same device that runs now.
func (m *Manager) Refresh(ctx context.Context, refs ...string) error {
	m.mu.Lock()
	ts, err := m.targetsLocked(refs)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	waits := make([]chan jobResult, len(ts))
	for i, t := range ts {
		waits[i] = make(chan jobResult, 1)
		m.enqueueLocked(t.ds, &job{kind: jobForecast, part: t.p.ID, waiters: []chan jobResult{waits[i]}})
	}
	m.mu.Unlock()
	var first error
	for _, w := range waits {
		select {
		case r := <-w:
			if r.err != nil && first == nil {
				first = r.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}
