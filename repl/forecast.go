package repl

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Action is what a session would do to one item.
type Action string

// Actions a forecast lists.
const (
	ActCreate   Action = "create"
	ActUpdate   Action = "update"
	ActRename   Action = "rename"
	ActDelete   Action = "delete"
	ActMatch    Action = "match"    // first sync: the same item found on both sides, merged
	ActConflict Action = "conflict" // settled by the policy (or recorded under Ask)
	ActKeep     Action = "keep"     // an edit here beats a delete there
	ActMetadata Action = "metadata" // versions only, nothing written
)

// PlannedAction is one line of a Forecast.
type PlannedAction struct {
	From, To string
	Action   Action
	Name     string
	Size     int64 // content bytes to send (files created or updated)
}

// Forecast is what a session would do.
type Forecast struct {
	Actions []PlannedAction
	Counts  map[string]map[Action]int // by destination side
	Bytes   int64
	// MassDelete is set when the session would stop at the mass-delete guard.
	MassDelete *MassDeleteError
}

// Forecast tells what Sync with the same arguments would do, without writing to either store.
// It runs change detection first (bookkeeping in the handle file only: the versions it records
// are the ones the next Sync would record anyway). A conflict's outcome depends on the content,
// which a forecast does not read: it is listed as ActConflict.
func (hf *HandleFile) Forecast(ctx context.Context, a, b Side, cfg Config) (*Forecast, error) {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	s, err := hf.newSession(a, b, cfg)
	if err != nil {
		return nil, err
	}
	reps, err := hf.detectSides(ctx, []Side{a, b}, true)
	if err != nil {
		return nil, err
	}
	s.rep.Detected = append(s.rep.Detected, reps...)
	plans, err := s.plan(ctx)
	if err != nil {
		return nil, err
	}
	fc := &Forecast{Counts: map[string]map[Action]int{}}
	if err := s.guard(plans); err != nil {
		fc.MassDelete, _ = err.(*MassDeleteError)
	}
	err = hf.view(func(tx *bolt.Tx) error {
		for _, pl := range plans {
			if len(pl.changes) == 0 {
				continue
			}
			rs, err := hf.openReplica(tx, pl.from, false)
			if err != nil {
				return err
			}
			rd, err := hf.openReplica(tx, pl.to, false)
			if err != nil {
				rd = nil
			}
			for _, ref := range pl.changes {
				act, err := classify(rs, rd, ref.gid)
				if err != nil {
					return err
				}
				if act == "" {
					continue
				}
				pa := PlannedAction{From: pl.from, To: pl.to, Action: act, Name: ref.name}
				if (act == ActCreate || act == ActUpdate || act == ActConflict) && ref.kind == KindFile {
					pa.Size = ref.size
					fc.Bytes += ref.size
				}
				fc.Actions = append(fc.Actions, pa)
				if fc.Counts[pl.to] == nil {
					fc.Counts[pl.to] = map[Action]int{}
				}
				fc.Counts[pl.to][act]++
			}
		}
		return nil
	})
	return fc, err
}

// classify predicts, without I/O, what applying the source's change gid to rd would do ("" for
// nothing). rd is nil when the destination replica does not exist yet.
func classify(rs, rd *rtx, gid Version) (Action, error) {
	c, err := rs.byGID(gid)
	if err != nil || c == nil {
		return "", err
	}
	var l *record
	if rd != nil {
		if l, err = rd.byGID(gid); err != nil {
			return "", err
		}
	}
	if l == nil {
		if c.Tomb {
			return ActMetadata, nil
		}
		if rd != nil {
			a := &applier{rs: rs, rd: rd}
			m, err := a.mergeCandidate(c)
			if err != nil {
				return "", err
			}
			if m != nil {
				return ActMatch, nil
			}
		}
		return ActCreate, nil
	}
	switch {
	case l.Ver == c.Ver || (l.V.Contains(c.Ver) && !c.V.Contains(l.Ver)):
		return "", nil
	case c.V.Contains(l.Ver) || l.Missing:
		switch {
		case c.Tomb && (l.Tomb || l.Missing || !c.Merged.IsZero()):
			return ActMetadata, nil
		case c.Tomb:
			return ActDelete, nil
		case l.Tomb || l.Missing:
			return ActCreate, nil
		case c.CVer != l.CVer || c.Stamp.Kind != l.Stamp.Kind:
			return ActUpdate, nil
		case c.Name != l.Name:
			return ActRename, nil
		}
		return ActMetadata, nil
	}
	switch {
	case c.Tomb && l.Tomb:
		return ActMetadata, nil
	case c.Tomb:
		return ActKeep, nil
	case l.Tomb:
		return ActCreate, nil
	}
	return ActConflict, nil
}
