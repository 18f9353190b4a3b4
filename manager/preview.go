package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/repl"
)

// The preview of a sync (DryRun, `cradle sync --dry-run`, the window's Preview): the engine runs
// the session on a copy of the partnership's handle file against stores that record what they
// would write (repl.Forecast), after reading the device's sync state into the copy as a session
// does, so the list is what the next session does, and nothing changes on either side.

// Change is one thing a sync would do.
type Change struct {
	Partnership     string `json:"partnership"`
	PartnershipName string `json:"partnership_name"`
	// Action is "create", "update", "rename", "delete" or "conflict" (left for the user).
	Action string `json:"action"`
	// Direction is "to-device" or "to-desktop": the side that changes (for a conflict, the side
	// the other's change met).
	Direction string `json:"direction"`
	Path      string `json:"path"`
	// OldPath is the name a renamed (or moved and updated) item had.
	OldPath string `json:"old_path,omitempty"`
	Kind    string `json:"kind"` // "file" or "folder"
	// Size is the content to copy (files created or updated), a conflict's size.
	Size int64 `json:"size"`
	// Reason says why, in words.
	Reason string `json:"reason"`
	// Cause is, for an update or a delete, what the versions keep the replaced content for:
	// "update", "delete", "conflict" or "policy".
	Cause string `json:"cause,omitempty"`
	// Copy marks the create of a conflict copy (the version that did not keep the name).
	Copy bool `json:"copy,omitempty"`
}

// MassDelete says a sync stops at the mass-delete guard: it would delete Deletes of the Items on
// Side ("desktop" or "device"), more than Threshold of them.
type MassDelete struct {
	Side      string  `json:"side"`
	Deletes   int     `json:"deletes"`
	Items     int     `json:"items"`
	Threshold float64 `json:"threshold"`
}

func massDeleteOf(err error) *MassDelete {
	var md *repl.MassDeleteError
	if !errors.As(err, &md) {
		return nil
	}
	return &MassDelete{Side: md.Side, Deletes: md.Deletes, Items: md.Items, Threshold: md.Threshold}
}

// Plan is what a sync of one partnership would do now.
type Plan struct {
	Partnership string   `json:"partnership"`
	Name        string   `json:"name"`
	Changes     []Change `json:"changes"`
	// MassDelete is set when the sync would stop at the mass-delete guard (Changes are what it
	// does once allowed).
	MassDelete *MassDelete `json:"mass_delete,omitempty"`
	// Skipped are items the sync could not apply (they would stay pending), with why.
	Skipped []string `json:"skipped,omitempty"`
	// Error is why no plan could be made ("" when it was).
	Error string `json:"error,omitempty"`
}

// DryRun tells what a sync of each partnership given (ID or name; every partnership of a
// connected device when none are given) would do now, in the order asked, without changing
// anything on either side. It waits for a session of the same device that runs now. A
// partnership that could not be previewed has its Plan.Error set; opts.AllowMassDelete previews a
// sync allowed past the mass-delete guard.
func (m *Manager) DryRun(ctx context.Context, opts SyncOptions, refs ...string) ([]Plan, error) {
	m.mu.Lock()
	ts, err := m.targetsLocked(refs)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	waits := make([]chan jobResult, len(ts))
	for i, t := range ts {
		waits[i] = make(chan jobResult, 1)
		m.enqueueLocked(t.ds, &job{kind: jobForecast, part: t.p.ID, opts: opts, waiters: []chan jobResult{waits[i]}})
	}
	m.mu.Unlock()
	out := make([]Plan, len(ts))
	for i, w := range waits {
		select {
		case r := <-w:
			out[i] = planOf(ts[i].p, r.forecast, r.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// forecast runs the engine's forecast of the partnership id on ds.
func (m *Manager) forecast(ctx context.Context, ds *devState, id string, opts SyncOptions) (*repl.Forecast, error) {
	m.mu.Lock()
	p, err := m.lookupLocked(id)
	ps := m.parts[id]
	m.mu.Unlock()
	if err != nil || ps == nil {
		return nil, kindf(ErrUnknownPartnership, "no such partnership %q", id)
	}
	hf, inst, _, err := m.prepare(ctx, ds, p, ps)
	if err != nil {
		return nil, err
	}
	scratch, err := hf.Scratch()
	if err != nil {
		return nil, err
	}
	defer scratch.Close()
	// The device's sync state, as the session reads it first (another computer's changes).
	if _, err := m.importMeta(ctx, scratch, ds.dev, p); err != nil && (ctx.Err() != nil || errors.Is(err, device.ErrDisconnected)) {
		return nil, err
	}
	cfg := repl.Config{Direction: replDirection(p.Direction), Policy: replPolicy(p.OnConflict),
		MassDeleteThreshold: m.Settings().MassDeleteThreshold, AllowMassDelete: opts.AllowMassDelete}
	return scratch.Forecast(ctx, repl.Side{Name: sideDesktop, Store: inst.Desktop}, repl.Side{Name: sideDevice, Store: inst.Device}, cfg)
}

// planOf turns the engine's forecast into a Plan.
func planOf(p Partnership, fc *repl.Forecast, err error) Plan {
	pl := Plan{Partnership: p.ID, Name: p.Name, Changes: []Change{}}
	if err != nil {
		pl.Error = err.Error()
		return pl
	}
	if fc == nil {
		return pl
	}
	if md := fc.MassDelete; md != nil {
		pl.MassDelete = &MassDelete{Side: md.Side, Deletes: md.Deletes, Items: md.Items, Threshold: md.Threshold}
	}
	kept := map[string]string{} // "an edit beats a delete": the item the edit keeps
	for _, d := range fc.Decisions {
		kept[d.Name] = d.Reason
	}
	for _, a := range fc.Actions {
		c := Change{Partnership: p.ID, PartnershipName: p.Name, Action: string(a.Action), Direction: "to-" + a.To,
			Path: a.Name, OldPath: a.OldName, Kind: a.Kind.String(), Size: a.Size, Copy: a.Copy}
		if a.Cause != repl.CauseNone && (a.Action == repl.ActUpdate || a.Action == repl.ActDelete) {
			c.Cause = a.Cause.String()
		}
		c.Reason = changeReason(p, a, kept[a.Name])
		pl.Changes = append(pl.Changes, c)
	}
	for _, s := range fc.Skipped {
		pl.Skipped = append(pl.Skipped, fmt.Sprintf("%s: %v", s.Name, s.Err))
	}
	return pl
}

// sideWords names a side in a sentence.
func sideWords(side string) string {
	if side == sideDesktop {
		return "this computer"
	}
	return "the device"
}

// changeReason says why a sync makes a change, in words.
func changeReason(p Partnership, a repl.PlannedAction, decision string) string {
	from := sideWords(a.From)
	switch a.Action {
	case repl.ActCreate:
		switch {
		case a.Copy:
			return "changed on both sides: this version is kept beside the other"
		case decision == "an edit beats a delete":
			return "changed on " + from + " while the other side deleted it: the edit is kept"
		}
		return "new on " + from
	case repl.ActUpdate:
		what := "changed on " + from
		if a.OldName != "" {
			what = "changed and renamed on " + from + " (was " + a.OldName + ")"
		}
		switch a.Cause {
		case repl.CauseConflict:
			return "conflict resolved: you kept " + from + "'s version"
		case repl.CausePolicy:
			return "changed on both sides: " + policyWords(p.OnConflict, from)
		}
		return what
	case repl.ActRename:
		return "renamed on " + from + " (was " + a.OldName + ")"
	case repl.ActDelete:
		if a.Cause == repl.CauseNone {
			return "an unfinished copy is removed, to be copied again"
		}
		return "deleted on " + from
	case repl.ActConflict:
		return "changed on both sides: waits for you to choose"
	}
	return ""
}

// policyWords says how the partnership's conflict rule chose from's version.
func policyWords(c ConflictPolicy, from string) string {
	switch c {
	case PolicyNewest:
		return from + "'s version is newer and is kept"
	case PolicyKeepBoth:
		return from + "'s version keeps the name, the other is kept beside it"
	}
	return "the partnership keeps " + from + "'s version"
}
