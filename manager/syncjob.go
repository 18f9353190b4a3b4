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

// A sync job: the manager's unit of work for one partnership (its exported record is Session,
// kept in the history). runSyncJob runs one, syncOnce does its work with the engine
// (repl.HandleFile.Sync: the place where what to copy, delete or call a conflict is decided),
// and forecast counts what a sync would do. The words are explained in docs/design.md.

// Side names in the handle file. Side a is the desktop, b the device.
const (
	sideDesktop = "desktop"
	sideDevice  = "device"
)

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

// runSyncJob runs a sync job: one session of the job's partnership on ds (syncOnce, again once
// if the handle file turns out damaged), then records it: status, history, events, retry.
func (m *Manager) runSyncJob(ctx context.Context, ds *devState, j *job) (Session, error) {
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

	res := m.syncOnce(sctx, ds, p, ps, j.opts, trigger)
	if errors.Is(res.err, repl.ErrCorrupt) && sctx.Err() == nil {
		// Damage the handle file could not see when it opened, met in the middle of the
		// session: set it aside and sync again at once, with a state rebuilt by matching.
		m.mu.Lock()
		err := m.discardDamaged(ps)
		m.mu.Unlock()
		if err == nil {
			res = m.syncOnce(sctx, ds, p, ps, j.opts, trigger)
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
		for _, d := range rep.Decisions {
			if d.Copy != "" {
				sess.KeptBoth = append(sess.KeptBoth, KeptBoth{Path: d.Name, Copy: d.Copy, Reason: d.Reason})
			}
			if d.Reason != repl.ReasonCollision && d.Reason != repl.ReasonKindClash {
				sess.Decided++ // a conflict the policy settled (two items that took one name are none)
			}
		}
		sess.Skipped = len(rep.Skipped)
		for _, s := range rep.Skipped {
			sess.Errors = append(sess.Errors, fmt.Sprintf("%s: %v", s.Name, s.Err))
			sess.SkippedNames = append(sess.SkippedNames, SkippedName{Path: s.Name, Side: s.From, Reason: s.Err.Error()})
			var re *repl.ResolutionError
			if errors.As(s.Err, &re) {
				msg := fmt.Sprintf("keep %s could not be carried out: %v", keepName(re.Keep), re.Err)
				if err := m.db.putResolutionError(p.ID, re.ID, msg); err != nil {
					m.log.Warn("manager: record why a resolution failed", "err", err)
				}
			}
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
	case ps.removed && errors.Is(err, context.Canceled):
		// Removing the partnership cancelled it: nothing failed.
		sess.Outcome = OutcomeStopped
		sess.Errors = append([]string{"stopped: the partnership was removed during the sync"}, sess.Errors...)
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
	// A plugin that stopped during the session, after its last call, is still stopped
	// although the session went well: only one that stopped before it began was restarted.
	stoppedMeanwhile := ps.pluginDown.After(start) && err == nil
	ps.plugin = err != nil && isProviderStop(err) || stoppedMeanwhile
	if !ps.plugin {
		ps.pluginDown = time.Time{}
	}
	if ps.plugin {
		fix = "the next sync restarts it"
		if stoppedMeanwhile {
			errMsg = ps.errMsg
		}
	}
	if sess.Outcome == OutcomeFailed {
		sess.Fix = fix
	}
	ps.running, ps.cancel, ps.progress = false, nil, nil
	ps.last, ps.hasLast = sess, true
	ps.errMsg, ps.fix = errMsg, fix
	ps.massDelete = massDeleteOf(err)
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
	if c := sess.ToDevice; c.Created+c.Updated+c.Renamed+c.Deleted > 0 {
		m.nudgeOverlapping(ctx, ds, p)
	}
	return sess, nil
}

func orStorages(a, b []StorageInfo) []StorageInfo {
	if len(a) > 0 {
		return a
	}
	return b
}

// syncResult is what syncOnce hands back to runSyncJob.
type syncResult struct {
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

// syncOnce does the work of one session: open what is needed, read the device metadata, sync,
// write the device metadata, prepare conflict previews.
func (m *Manager) syncOnce(ctx context.Context, ds *devState, p Partnership, ps *partState, opts SyncOptions, trigger Trigger) (res syncResult) {
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
	if errors.Is(err, repl.ErrUnflushed) {
		// The snapshot waits for its data: the next session writes one, changed or not.
		if merr := m.db.putExportMark(p.ID, exportMark{}); merr != nil {
			m.log.Warn("manager: record the device metadata as stale", "partnership", p.ID, "err", merr)
		}
	}
	if rep != nil && ctx.Err() == nil && !errors.Is(err, repl.ErrMassDelete) && !errors.Is(err, repl.ErrUnflushed) {
		// A snapshot that could not be read is replaced even when nothing changed. Not while a
		// store holds changes recorded but not written to the device (its flush failed): the
		// snapshot would tell another computer the device has them.
		if merr := m.exportMeta(ctx, hf, ds.dev, p, changed || res.metaErr != nil); merr != nil {
			m.log.Warn("manager: write the device metadata", "partnership", p.ID, "err", merr)
			if res.metaErr == nil {
				res.metaErr = fmt.Errorf("the sync state could not be saved on the device (%v); the next sync checks every item again", merr)
			}
		}
	}
	if ctx.Err() == nil && !errors.Is(err, repl.ErrMassDelete) {
		m.cleanVersions(ctx, p, inst)
	}
	conflicts, added := m.refreshConflicts(ctx, p, hf, inst, before)
	res.conflicts, res.added = conflicts, added
	for _, st := range []repl.Store{inst.Desktop, inst.Device} {
		if mon, ok := st.(repl.Monitoring); ok && !mon.ContinueMonitoring() {
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
