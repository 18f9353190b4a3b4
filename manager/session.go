package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// Side names in the handle file. Side a is the desktop, b the device.
const (
	sideDesktop = "desktop"
	sideDevice  = "device"
)

type jobKind int

const (
	jobSync     jobKind = iota // run a session
	jobForecast                // count what a session would do (Refresh)
	jobRelease                 // close a removed partnership's provider
)

// job is work for a device's worker. Jobs of the same kind for the same partnership merge while
// they wait.
type job struct {
	kind    jobKind
	part    string
	trigger Trigger
	opts    SyncOptions
	waiters []chan jobResult
}

type jobResult struct {
	session Session
	err     error
}

func (j *job) reply(r jobResult) {
	for _, w := range j.waiters {
		w <- r // buffered, one slot each
	}
}

// triggerRank orders triggers when queued jobs merge: the one a person asked for wins.
func triggerRank(t Trigger) int {
	switch t {
	case TriggerManual:
		return 3
	case TriggerResolve:
		return 2
	case TriggerConnect:
		return 1
	}
	return 0
}

// enqueueLocked queues j on the device's worker (caller holds m.mu).
func (m *Manager) enqueueLocked(ds *devState, j *job) {
	ds.qmu.Lock()
	merged := false
	for _, q := range ds.queue {
		if q.kind == j.kind && q.part == j.part {
			q.waiters = append(q.waiters, j.waiters...)
			if triggerRank(j.trigger) > triggerRank(q.trigger) {
				q.trigger = j.trigger
			}
			q.opts.AllowMassDelete = q.opts.AllowMassDelete || j.opts.AllowMassDelete
			merged = true
			break
		}
	}
	if !merged {
		ds.queue = append(ds.queue, j)
	}
	ds.qmu.Unlock()
	if j.kind == jobSync {
		if ps := m.parts[j.part]; ps != nil && !ps.running && !ps.queued {
			ps.queued = true
			m.publishStatusLocked(j.part)
		}
	}
	select {
	case ds.qwake <- struct{}{}:
	default:
	}
}

// next waits for the worker's next job; nil when the device is gone.
func (ds *devState) next() *job {
	for {
		ds.qmu.Lock()
		if len(ds.queue) > 0 {
			j := ds.queue[0]
			ds.queue = ds.queue[1:]
			ds.qmu.Unlock()
			return j
		}
		ds.qmu.Unlock()
		select {
		case <-ds.ctx.Done():
			return nil
		case <-ds.qwake:
		}
	}
}

// drop removes the queued jobs of a partnership (all when id is "") and returns them.
func (ds *devState) drop(id string) []*job {
	ds.qmu.Lock()
	defer ds.qmu.Unlock()
	var out, keep []*job
	for _, j := range ds.queue {
		if (id == "" || j.part == id) && j.kind != jobRelease {
			out = append(out, j)
		} else {
			keep = append(keep, j)
		}
	}
	ds.queue = keep
	return out
}

// runDevice is the worker of one connected device: it reads the device's storages, announces
// it, queues the sessions due on plug-in, then runs jobs one at a time until the device leaves.
func (m *Manager) runDevice(ds *devState, prev <-chan struct{}) {
	defer m.wg.Done()
	defer close(ds.done)
	defer m.teardownDevice(ds)
	if prev != nil {
		// The same device's previous connection must be torn down before this one starts.
		select {
		case <-prev:
		case <-ds.ctx.Done():
			return
		}
	}
	ctx := ds.ctx
	storages := readStorages(ctx, ds.dev, m)
	known, err := m.db.seeDevice(knownDevice{
		Serial: ds.info.Serial, Manufacturer: ds.info.Manufacturer, Model: ds.info.Model,
		Kind: ds.info.Kind, Label: ds.info.Label, LastSeen: time.Now().UTC(),
	})
	if err != nil {
		m.log.Warn("manager: remember a device", "serial", ds.info.Serial, "err", err)
	}
	m.mu.Lock()
	if m.devices[ds.info.Serial] != ds {
		m.mu.Unlock()
		return
	}
	ds.info.Storages = storages
	ds.ready = true
	n := m.partnershipCountLocked(ds.info.Serial)
	ds.info.New = !known && n == 0
	info := m.deviceInfoLocked(ds)
	m.bus.publish(DeviceConnected, info.Serial, "", info)
	if info.New {
		m.bus.publish(DeviceNew, info.Serial, "", info)
	}
	for _, p := range m.conf.Partnerships {
		if p.Device != ds.info.Serial {
			continue
		}
		ps := m.parts[p.ID]
		if ps == nil {
			continue
		}
		ps.paused = false
		if m.cfg.Service {
			m.scheduleLocked(p, ps, ds)
			if m.conf.Settings.SyncOnConnect {
				m.enqueueLocked(ds, &job{kind: jobSync, part: p.ID, trigger: TriggerConnect})
			}
		}
		m.publishStatusLocked(p.ID)
	}
	var watch []Partnership
	if m.cfg.Service && !m.conf.Settings.SyncOnConnect {
		// No session on plug-in: open the providers now, so that their change notifications
		// start sessions while the device stays connected.
		for _, p := range m.conf.Partnerships {
			if p.Device == ds.info.Serial {
				watch = append(watch, p)
			}
		}
	}
	m.mu.Unlock()
	for _, p := range watch {
		m.mu.Lock()
		ps := m.parts[p.ID]
		m.mu.Unlock()
		if ps == nil {
			continue
		}
		if _, _, _, err := m.prepare(ctx, ds, p, ps); err != nil && ctx.Err() == nil {
			m.mu.Lock()
			ps.errMsg, ps.fix = err.Error(), errorFix(err, p, ds.info.Label)
			m.publishStatusLocked(p.ID)
			m.mu.Unlock()
		}
	}
	for {
		j := ds.next()
		if j == nil {
			return
		}
		m.runJob(ctx, ds, j)
	}
}

func readStorages(ctx context.Context, dev device.Device, m *Manager) []StorageInfo {
	st, err := dev.Storages(ctx)
	if err != nil {
		m.log.Warn("manager: read a device's storages", "err", err)
		return []StorageInfo{}
	}
	out := make([]StorageInfo, 0, len(st))
	for _, s := range st {
		out = append(out, StorageInfo{ID: uint32(s.ID), Description: s.Description, Free: s.Free, Capacity: s.Capacity, ReadOnly: s.ReadOnly})
	}
	return out
}

// teardownDevice runs when a device's worker ends: queued jobs fail, the providers opened for
// the device are closed.
func (m *Manager) teardownDevice(ds *devState) {
	for _, j := range ds.drop("") {
		j.reply(jobResult{err: kindf(ErrNotConnected, "%s is not connected", ds.info.Label)})
	}
	var insts []*partState
	m.mu.Lock()
	for _, ps := range m.parts {
		if ps.instDevice == ds.dev {
			insts = append(insts, ps)
		}
		if ps.instDevice == ds.dev || ps.queued {
			ps.queued = false
		}
	}
	// Detach the instances under the lock, close them outside it.
	var closers []*providers.Instance
	for _, ps := range insts {
		if ps.watchCancel != nil {
			ps.watchCancel()
			ps.watchCancel = nil
		}
		ps.changes = [2]*repl.ChangeSet{}
		ps.watching = [2]bool{}
		closers = append(closers, ps.inst)
		ps.inst, ps.instDevice = nil, nil
	}
	m.mu.Unlock()
	for _, inst := range closers {
		if inst != nil && inst.Close != nil {
			if err := inst.Close(); err != nil {
				m.log.Debug("manager: close a provider", "err", err)
			}
		}
	}
	// Release jobs still queued (a partnership removed while the device left) are answered.
	ds.qmu.Lock()
	rest := ds.queue
	ds.queue = nil
	ds.qmu.Unlock()
	for _, j := range rest {
		j.reply(jobResult{})
	}
}

func (m *Manager) runJob(ctx context.Context, ds *devState, j *job) {
	switch j.kind {
	case jobRelease:
		m.mu.Lock()
		var inst *providers.Instance
		if ps := m.parts[j.part]; ps != nil {
			if ps.watchCancel != nil {
				ps.watchCancel()
				ps.watchCancel = nil
			}
			inst = ps.inst
			ps.inst, ps.instDevice = nil, nil
		}
		m.mu.Unlock()
		if inst != nil && inst.Close != nil {
			inst.Close()
		}
		j.reply(jobResult{})
	case jobForecast:
		n, err := m.forecast(ctx, ds, j.part)
		m.mu.Lock()
		if ps := m.parts[j.part]; ps != nil && err == nil {
			ps.forecast = n
			clear(ps.notified)
			m.publishStatusLocked(j.part)
		}
		m.mu.Unlock()
		j.reply(jobResult{err: err})
	case jobSync:
		s, err := m.runSession(ctx, ds, j)
		j.reply(jobResult{session: s, err: err})
	}
}

// prepare returns the partnership's handle file and opened provider stores for a job on ds,
// opening what is missing and (in service mode) (re)starting the watchers.
func (m *Manager) prepare(ctx context.Context, ds *devState, p Partnership, ps *partState) (*repl.HandleFile, *providers.Instance, [2]*repl.ChangeSet, error) {
	var none [2]*repl.ChangeSet
	m.mu.Lock()
	m.openHandleFile(ps)
	hf, hfErr := ps.hf, ps.hfErr
	var old *providers.Instance
	// A store whose watcher saw it go away (a desktop folder moved or its drive unmounted, a
	// plugin that crashed) is opened again: the provider then says what is wrong with that side,
	// or finds it back, instead of the session reporting the device as disconnected.
	for _, cs := range ps.changes {
		if cs != nil && cs.Gone() != nil {
			ps.reopen = true
		}
	}
	if ps.inst != nil && (ps.instDevice != ds.dev || ps.reopen) {
		if ps.watchCancel != nil {
			ps.watchCancel()
			ps.watchCancel = nil
		}
		old = ps.inst
		ps.inst, ps.instDevice = nil, nil
		ps.changes, ps.watching = [2]*repl.ChangeSet{}, [2]bool{}
	}
	inst := ps.inst
	m.mu.Unlock()
	if old != nil && old.Close != nil {
		old.Close()
	}
	if hfErr != nil {
		return nil, nil, none, hfErr
	}
	if inst == nil {
		prov, err := providers.Lookup(p.Provider)
		if err != nil {
			return nil, nil, none, fmt.Errorf("%v; install its plugin or remove the partnership", err)
		}
		opts, err := prov.Validate(p.Options)
		if err != nil {
			return nil, nil, none, fmt.Errorf("the partnership's options: %w; fix them in the settings file or add the partnership again", err)
		}
		inst, err = prov.Open(ctx, providers.Env{Options: opts, Device: ds.dev, StateDir: m.stateDir(p.ID)})
		if err != nil {
			return nil, nil, none, err
		}
		if inst.Desktop == nil || inst.Device == nil {
			if inst.Close != nil {
				inst.Close()
			}
			return nil, nil, none, fmt.Errorf("provider %s opened no store for one side", p.Provider)
		}
		m.mu.Lock()
		if ps.removed || m.devices[p.Device] != ds {
			m.mu.Unlock()
			if inst.Close != nil {
				inst.Close()
			}
			return nil, nil, none, kindf(ErrNotConnected, "%s is not connected", ds.info.Label)
		}
		ps.inst, ps.instDevice, ps.reopen = inst, ds.dev, false
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.Service {
		m.watchLocked(ds, p, ps)
	}
	return hf, inst, ps.changes, nil
}

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

// maxDebounceWait bounds how long a stream of notifications may postpone a session.
const maxDebounceFactor = 10

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
			ps.plugin = true
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
	now := time.Now()
	if ps.debounce != nil && now.Sub(ps.firstNotify) < maxDebounceFactor*m.debounce {
		ps.debounce.Reset(m.debounce)
		return
	}
	if ps.debounce == nil {
		ps.firstNotify = now
		ps.debounce = time.AfterFunc(m.debounce, func() { m.fire(id, TriggerChange) })
	}
}

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

// runSession runs one session of the job's partnership on ds and records it.
func (m *Manager) runSession(ctx context.Context, ds *devState, j *job) (Session, error) {
	m.mu.Lock()
	p, err := m.lookupLocked(j.part)
	ps := m.parts[j.part]
	if err != nil || ps == nil || ps.removed || p.ID != j.part {
		m.mu.Unlock()
		return Session{}, kindf(ErrUnknownPartnership, "no such partnership %q", j.part)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	trigger := j.trigger
	if trigger == "" {
		trigger = TriggerManual
	}
	start := time.Now()
	ps.cancel, ps.running, ps.queued, ps.stopped = cancel, true, false, false
	ps.progress = &Progress{Phase: string(repl.PhaseDetecting), Started: start, ETA: -1}
	ps.syncStart = time.Time{}
	clear(ps.notified)
	if trigger == TriggerManual || trigger == TriggerResolve {
		ps.paused = false
	}
	if ps.debounce != nil {
		ps.debounce.Stop()
		ps.debounce = nil
	}
	if ps.retry != nil {
		ps.retry.Stop()
		ps.retry = nil
	}
	sess := Session{Partnership: p.ID, Name: p.Name, Device: p.Device, Trigger: trigger, Start: start.UTC()}
	m.bus.publish(SessionStarted, p.Device, p.ID, sess)
	m.publishStatusLocked(p.ID)
	m.bus.publish(DeviceChanged, p.Device, "", m.deviceInfoLocked(ds))
	m.mu.Unlock()

	res := m.session(sctx, ds, p, ps, j.opts, trigger)
	if errors.Is(res.err, repl.ErrCorrupt) && sctx.Err() == nil {
		// Damage the handle file could not see when it opened, met in the middle of the
		// session: set it aside and sync again at once, with a state rebuilt by matching.
		m.mu.Lock()
		err := m.discardDamaged(ps)
		m.mu.Unlock()
		if err == nil {
			res = m.session(sctx, ds, p, ps, j.opts, trigger)
		}
	}

	end := time.Now()
	sess.End = end.UTC()
	rep := res.rep
	if rep != nil {
		if c := rep.Applied[sideDesktop]; c != nil {
			sess.ToDesktop = Counts{Created: c.Created, Updated: c.Updated, Renamed: c.Renamed, Deleted: c.Deleted}
		}
		if c := rep.Applied[sideDevice]; c != nil {
			sess.ToDevice = Counts{Created: c.Created, Updated: c.Updated, Renamed: c.Renamed, Deleted: c.Deleted}
		}
		sess.Bytes = rep.Bytes
		sess.Decided = len(rep.Decisions)
		sess.Skipped = len(rep.Skipped)
		for _, s := range rep.Skipped {
			sess.Errors = append(sess.Errors, fmt.Sprintf("%s: %v", s.Name, s.Err))
			sess.SkippedNames = append(sess.SkippedNames, SkippedName{Path: s.Name, Side: s.From, Reason: s.Err.Error()})
		}
	}
	sess.SkippedNames = append(sess.SkippedNames, res.skippedNames...)
	sess.Conflicts = res.conflicts
	if res.metaErr != nil {
		sess.Errors = append(sess.Errors, res.metaErr.Error())
	}

	m.mu.Lock()
	devGone := ctx.Err() != nil
	userStop := ps.stopped
	err = res.err
	var errMsg, fix string
	switch {
	case err == nil && sess.Skipped > 0:
		sess.Outcome = OutcomePartial
	case err == nil && sess.Conflicts > 0:
		sess.Outcome = OutcomeConflicts
	case err == nil:
		sess.Outcome = OutcomeOK
	case userStop || m.closed:
		sess.Outcome = OutcomeStopped
		sess.Errors = append([]string{"stopped before it finished; the next sync resumes where it stopped"}, sess.Errors...)
	case devGone || errors.Is(err, device.ErrDisconnected) ||
		errors.Is(err, repl.ErrGone) && !isProviderStop(err) && repl.ErrorSide(err) != sideDesktop:
		sess.Outcome = OutcomeStopped
		errMsg = fmt.Sprintf("%s was disconnected during the sync", ds.info.Label)
		fix = errorFix(device.ErrDisconnected, p, ds.info.Label)
		sess.Errors = append([]string{errMsg}, sess.Errors...)
	default:
		sess.Outcome = OutcomeFailed
		errMsg = err.Error()
		fix = errorFix(err, p, ds.info.Label)
		sess.Errors = append([]string{errMsg}, sess.Errors...)
	}
	ps.running, ps.cancel, ps.progress = false, nil, nil
	ps.last, ps.hasLast = sess, true
	ps.errMsg, ps.fix = errMsg, fix
	ps.plugin = err != nil && isProviderStop(err)
	if ps.plugin {
		ps.fix = "the next sync restarts it"
	}
	if sess.Outcome == OutcomeStopped && !devGone && !userStop && ps.errMsg == "" {
		ps.errMsg = "the sync stopped before it finished"
	}
	ps.skipped = sess.Skipped
	clear(ps.notified)
	ps.forecast = -1
	ps.conflicts = res.conflicts
	if res.paused {
		ps.paused = true
	}
	if m.cfg.Service && !m.closed && !ps.removed && m.devices[p.Device] == ds {
		// A failed session, or one that left items behind, is tried again; one stopped by the
		// mass-delete guard waits for the user's confirmation instead.
		again := sess.Outcome == OutcomeFailed && !errors.Is(err, repl.ErrMassDelete) || sess.Outcome == OutcomePartial
		if again && m.conf.Settings.RetryInterval > 0 && !ps.paused {
			wait := m.conf.Settings.RetryInterval
			id := p.ID
			ps.retry = time.AfterFunc(wait, func() { m.fire(id, TriggerRetry) })
			ps.retryAt = end.Add(wait)
		}
		m.scheduleLocked(p, ps, ds)
	}
	ds.info.Storages = orStorages(res.storages, ds.info.Storages)
	m.mu.Unlock()

	// A change-triggered session that found nothing (the echo of this program's own writes) is
	// not worth a line in the history.
	quiet := trigger == TriggerChange && sess.Outcome == OutcomeOK && res.changes == 0
	if !quiet {
		if err := m.db.addSession(&sess); err != nil {
			m.log.Warn("manager: record the session in the history", "err", err)
		}
	}
	m.mu.Lock()
	if ps.hasLast && ps.last.Start.Equal(sess.Start) {
		ps.last.ID = sess.ID
	}
	m.bus.publish(SessionFinished, p.Device, p.ID, sess)
	for _, c := range res.added {
		m.bus.publish(ConflictAdded, p.Device, p.ID, c)
	}
	if ps.plugin {
		m.bus.publish(ProviderStopped, p.Device, p.ID, ps.errMsg)
	}
	m.publishStatusLocked(p.ID)
	if m.devices[p.Device] == ds {
		m.bus.publish(DeviceChanged, p.Device, "", m.deviceInfoLocked(ds))
	}
	m.mu.Unlock()
	return sess, nil
}

func orStorages(a, b []StorageInfo) []StorageInfo {
	if len(a) > 0 {
		return a
	}
	return b
}

// sessionResult is what session hands back to runSession.
type sessionResult struct {
	rep       *repl.Report
	err       error
	metaErr   error // the device metadata could not be read or written (the session still counts)
	conflicts int   // pending after the session
	added     []Conflict
	changes   int // changes detected on both sides
	paused    bool
	storages  []StorageInfo
	// skippedNames are the items the stores left out of their enumerations by name.
	skippedNames []SkippedName
}

// session does the work of one session: open what is needed, read the device metadata, sync,
// write the device metadata, prepare conflict previews.
func (m *Manager) session(ctx context.Context, ds *devState, p Partnership, ps *partState, opts SyncOptions, trigger Trigger) (res sessionResult) {
	hf, inst, changes, err := m.prepare(ctx, ds, p, ps)
	if trigger != TriggerChange {
		// Only sessions started by notifications look at the notified items alone; the others
		// enumerate both sides, catching what no notification reported. A watched side's change
		// set is made to ask for that full pass too and given to the session, which then empties
		// it: the next change-triggered session looks only at what changed after this one (a new
		// watcher's set asks for a full pass, which the first edit would otherwise pay for).
		for _, cs := range changes {
			if cs != nil {
				cs.Notify(repl.Notification{Kind: repl.Overflow})
			}
		}
	}
	if err != nil {
		res.err = err
		m.mu.Lock()
		res.conflicts = ps.conflicts
		m.mu.Unlock()
		return res
	}
	before := conflictIDs(hf)
	imported, err := m.importMeta(ctx, hf, ds.dev, p)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, device.ErrDisconnected) {
			res.err = err
			return res
		}
		res.metaErr = fmt.Errorf("the sync state on the device could not be read (%v); this computer's copy was used", err)
		m.log.Warn("manager: read the device metadata", "partnership", p.ID, "err", err)
	}
	cfg := repl.Config{
		Direction:           replDirection(p.Direction),
		Policy:              replPolicy(p.OnConflict),
		MassDeleteThreshold: m.Settings().MassDeleteThreshold,
		AllowMassDelete:     opts.AllowMassDelete,
		ProgressInterval:    m.progressInterval,
		Progress:            func(pr repl.Progress) { m.onProgress(p, ps, pr) },
	}
	desktop := repl.Side{Name: sideDesktop, Store: inst.Desktop, Changes: changes[0]}
	dev := repl.Side{Name: sideDevice, Store: inst.Device, Changes: changes[1]}
	rep, err := hf.Sync(ctx, desktop, dev, cfg)
	res.rep, res.err = rep, err
	for side, st := range map[string]repl.Store{sideDesktop: inst.Desktop, sideDevice: inst.Device} {
		if sk, ok := st.(providers.NameSkipper); ok {
			for _, n := range sk.SkippedNames() {
				res.skippedNames = append(res.skippedNames, SkippedName{Path: n.Path, Side: side, Reason: n.Reason})
			}
		}
	}
	changed := imported
	if rep != nil {
		for _, d := range rep.Detected {
			res.changes += d.Changes()
		}
		for _, c := range rep.Applied {
			res.changes += c.Total()
			if c.VersionOnly > 0 {
				changed = true
			}
		}
		changed = changed || res.changes > 0 || len(rep.Conflicts) > 0 || len(rep.Decisions) > 0
	}
	if rep != nil && ctx.Err() == nil && !errors.Is(err, repl.ErrMassDelete) {
		// A snapshot that could not be read is replaced even when nothing changed.
		if merr := m.exportMeta(ctx, hf, ds.dev, p, changed || res.metaErr != nil); merr != nil {
			m.log.Warn("manager: write the device metadata", "partnership", p.ID, "err", merr)
			if res.metaErr == nil {
				res.metaErr = fmt.Errorf("the sync state could not be saved on the device (%v); the next sync checks every item again", merr)
			}
		}
	}
	conflicts, added := m.refreshConflicts(ctx, p, hf, inst, before)
	res.conflicts, res.added = conflicts, added
	for _, st := range []repl.Store{inst.Desktop, inst.Device} {
		if mon, ok := st.(Monitoring); ok && !mon.ContinueMonitoring() {
			res.paused = true
		}
	}
	if ctx.Err() == nil {
		res.storages = readStorages(ctx, ds.dev, m)
	}
	return res
}

func replDirection(d Direction) repl.Direction {
	switch d {
	case ToDevice:
		return repl.AToB
	case ToDesktop:
		return repl.BToA
	}
	return repl.BothWays
}

func replPolicy(c ConflictPolicy) repl.Policy {
	switch c {
	case PolicyDesktop:
		return repl.Policy{Rule: repl.Wins, Winner: sideDesktop}
	case PolicyDevice:
		return repl.Policy{Rule: repl.Wins, Winner: sideDevice}
	case PolicyNewest:
		return repl.Policy{Rule: repl.Newest}
	case PolicyKeepBoth:
		return repl.Policy{Rule: repl.KeepBoth}
	}
	return repl.Policy{Rule: repl.Ask}
}

func (m *Manager) onProgress(p Partnership, ps *partState, pr repl.Progress) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	prog := ps.progress
	if prog == nil {
		return
	}
	prog.Phase = string(pr.Phase)
	prog.From, prog.To = pr.From, pr.To
	prog.ItemsDone, prog.ItemsTotal = pr.ItemsDone, pr.ItemsTotal
	prog.BytesDone, prog.BytesTotal = pr.BytesDone, pr.BytesTotal
	prog.Current = pr.Current
	prog.ETA = -1
	if pr.Phase == repl.PhaseSyncing && ps.syncStart.IsZero() {
		ps.syncStart = now
	}
	if el := now.Sub(ps.syncStart).Seconds(); !ps.syncStart.IsZero() && el > 0.5 {
		switch {
		case pr.BytesTotal > 0 && pr.BytesDone > 0:
			prog.Rate = float64(pr.BytesDone) / el
			prog.ETA = time.Duration(float64(pr.BytesTotal-pr.BytesDone) / prog.Rate * float64(time.Second))
		case pr.ItemsTotal > 0 && pr.ItemsDone > 0:
			perItem := el / float64(pr.ItemsDone)
			prog.ETA = time.Duration(perItem * float64(pr.ItemsTotal-pr.ItemsDone) * float64(time.Second))
		}
	}
	if pr.Phase != repl.PhaseDone && now.Sub(ps.lastProgress) < m.progressInterval*4/5 {
		return
	}
	ps.lastProgress = now
	m.bus.publish(SessionProgress, p.Device, p.ID, *prog)
}

// forecast counts the changes a session of the partnership would make now.
func (m *Manager) forecast(ctx context.Context, ds *devState, id string) (int, error) {
	m.mu.Lock()
	p, err := m.lookupLocked(id)
	ps := m.parts[id]
	m.mu.Unlock()
	if err != nil || ps == nil {
		return 0, kindf(ErrUnknownPartnership, "no such partnership %q", id)
	}
	hf, inst, changes, err := m.prepare(ctx, ds, p, ps)
	if err != nil {
		return 0, err
	}
	cfg := repl.Config{Direction: replDirection(p.Direction), Policy: replPolicy(p.OnConflict),
		MassDeleteThreshold: m.Settings().MassDeleteThreshold}
	fc, err := hf.Forecast(ctx, repl.Side{Name: sideDesktop, Store: inst.Desktop, Changes: changes[0]},
		repl.Side{Name: sideDevice, Store: inst.Device, Changes: changes[1]}, cfg)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range fc.Actions {
		switch a.Action {
		case repl.ActMatch, repl.ActMetadata, repl.ActKeep:
		default:
			n++
		}
	}
	return n, nil
}
