package repl

import (
	"context"
	"fmt"
)

// Action is what a session would do to one item.
type Action string

// Actions a forecast lists.
const (
	ActCreate   Action = "create"
	ActUpdate   Action = "update"
	ActRename   Action = "rename"
	ActDelete   Action = "delete"
	ActConflict Action = "conflict" // changed on both sides: recorded for the user (policy Ask)
)

// PlannedAction is one line of a Forecast: one write or delete a session would make in a store,
// or one conflict it would leave to the user.
type PlannedAction struct {
	// From is the side whose change it is, To the side whose store it changes.
	From, To string
	Action   Action
	// Name is the item's name (for a rename or a moving update, the new one); OldName the name
	// it had, for a rename or a moving update.
	Name    string
	OldName string
	Kind    Kind
	// Size is the content to write (files created or updated), or a conflict's size on From.
	Size int64
	// Cause says why an update or a delete replaces what To holds (CauseNone for a new item,
	// a rename, or a partial write removed).
	Cause Cause
	// Copy marks a create of a conflict copy: the version that did not keep the name, saved
	// beside it (policy keep-both, two items that took one name).
	Copy bool
}

// Forecast is what a session would do.
type Forecast struct {
	Actions []PlannedAction
	Counts  map[string]map[Action]int // by destination side
	Bytes   int64
	// MassDelete is set when the session would stop at the mass-delete guard; Actions then list
	// what it would do once allowed.
	MassDelete *MassDeleteError
	// Decisions are the conflicts the policy would settle, as Report.Decisions says them.
	Decisions []Decision
	// Skipped are changes the session could not apply (they would stay pending).
	Skipped []Skipped
}

// Forecast tells exactly what Sync with the same arguments would do now, without changing either
// store or this handle file: the session runs on a Scratch copy of the handle file (or on this
// one, when it is a scratch copy already, so that a caller may first import a device snapshot
// into it), against stores that read from the real ones but record writes and deletes instead of
// making them. Detection is a full pass on both sides (sides' Changes are not used, nor emptied).
// Content is read where the session would read it to decide (a conflict whose two versions may
// be equal), never to copy it. The mass-delete guard does not stop a forecast: it says so in
// MassDelete and lists what the session would do once allowed.
func (hf *HandleFile) Forecast(ctx context.Context, a, b Side, cfg Config) (*Forecast, error) {
	if !hf.scratch {
		s, err := hf.Scratch()
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return s.Forecast(ctx, a, b, cfg)
	}
	hf.mu.Lock()
	defer hf.mu.Unlock()
	if a.Store == nil || b.Store == nil {
		return nil, fmt.Errorf("forecast %s with %s: a side has no store", a.Name, b.Name)
	}
	log := &dryLog{}
	defer log.close()
	da := Side{Name: a.Name, Store: newDryStore(a.Store, a.Name, b.Name, log)}
	db := Side{Name: b.Name, Store: newDryStore(b.Store, b.Name, a.Name, log)}
	cfg.Progress = nil
	s, err := hf.newSession(da, db, cfg)
	if err != nil {
		return nil, err
	}
	s.dry = true
	s.conflicts = log.conflict
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	fc := &Forecast{Actions: log.actions, Counts: map[string]map[Action]int{}, MassDelete: s.massDelete,
		Decisions: s.rep.Decisions, Skipped: s.rep.Skipped}
	copies := map[string]bool{}
	for _, d := range s.rep.Decisions {
		if d.Copy != "" {
			copies[d.Copy] = true
		}
	}
	for i := range fc.Actions {
		pa := &fc.Actions[i]
		if pa.Action == ActCreate && copies[pa.Name] {
			pa.Copy = true
		}
		if fc.Counts[pa.To] == nil {
			fc.Counts[pa.To] = map[Action]int{}
		}
		fc.Counts[pa.To][pa.Action]++
		if (pa.Action == ActCreate || pa.Action == ActUpdate) && pa.Kind == KindFile {
			fc.Bytes += pa.Size
		}
	}
	return fc, nil
}
