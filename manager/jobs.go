package manager

import (
	"context"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// The job queue: each connected device has one worker goroutine (runDevice, devices.go) that runs
// its jobs one at a time, so one device syncs one partnership at a time while several devices
// sync at once. Sync requests, timers and notifications only queue jobs here.

// jobKind says what a job does.
type jobKind int

const (
	jobSync     jobKind = iota // run a session
	jobForecast                // count what a session would do (Refresh)
	jobRelease                 // close a removed partnership's provider
	jobDo                      // run do with the partnership (its versions, a preview)
)

// job is work for a device's worker. Jobs of the same kind for the same partnership merge while
// they wait.
type job struct {
	kind    jobKind
	part    string
	trigger Trigger
	opts    SyncOptions
	waiters []chan jobResult
	do      func(ctx context.Context) error // jobDo
}

type jobResult struct {
	session  Session
	forecast *repl.Forecast // jobForecast
	err      error
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
		if q.kind == j.kind && q.part == j.part && j.kind != jobDo {
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
		// A Stop leaves the other work of a partnership (a listing of its versions) alone.
		if (id == "" || j.part == id && j.kind != jobDo) && j.kind != jobRelease {
			out = append(out, j)
		} else {
			keep = append(keep, j)
		}
	}
	ds.queue = keep
	return out
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
		fc, err := m.forecast(ctx, ds, j.part, j.opts)
		m.mu.Lock()
		if ps := m.parts[j.part]; ps != nil && err == nil {
			ps.forecast = len(fc.Actions)
			clear(ps.notified)
			m.publishStatusLocked(j.part)
		}
		m.mu.Unlock()
		j.reply(jobResult{forecast: fc, err: err})
	case jobSync:
		s, err := m.runSyncJob(ctx, ds, j)
		j.reply(jobResult{session: s, err: err})
	case jobDo:
		j.reply(jobResult{err: j.do(ctx)})
	}
}
