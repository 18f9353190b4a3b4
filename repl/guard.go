package repl

import (
	"errors"
	"fmt"
)

// The mass-delete guard: a session that would delete more than Config.MassDeleteThreshold of one
// side's live items stops before it changes anything, whatever their number, unless
// Config.AllowMassDelete. A Forecast reports it instead of stopping.

// ErrMassDelete is matched by *MassDeleteError.
var ErrMassDelete = errors.New("mass delete stopped")

// MassDeleteError reports a session that would have deleted too much of a replica. Nothing was
// changed in either store.
type MassDeleteError struct {
	Side    string
	Deletes int
	Items   int
	// Threshold is the fraction of the side's items a sync may delete without asking.
	Threshold float64
}

func (e *MassDeleteError) Error() string {
	return fmt.Sprintf("this sync would delete %d of the %d items on the %s side, more than %s of them, so it was stopped before changing anything; "+
		"if the deletions are intended, sync again and allow them", e.Deletes, e.Items, e.Side, ThresholdText(e.Threshold))
}

// ThresholdText says a mass-delete threshold in words: "half", "25%".
func ThresholdText(t float64) string {
	if t == 0.5 {
		return "half"
	}
	return fmt.Sprintf("%.0f%%", t*100)
}

// Unwrap returns ErrMassDelete.
func (e *MassDeleteError) Unwrap() error { return ErrMassDelete }

// guard is the mass-delete guard: a pass that would delete more than the threshold of its
// destination's live items (files and folders), at any count, stops the session before it
// changes anything. The rule is the same for 3 items and for 30,000: 2 of 3 stops, 1 of 2 goes
// through, 1 of 1 stops.
func (s *session) guard(plans []plannedPass) error {
	t := s.cfg.MassDeleteThreshold
	if s.cfg.AllowMassDelete || t < 0 || t >= 1 {
		return nil
	}
	for _, pl := range plans {
		if pl.deletes > 0 && float64(pl.deletes) > t*float64(pl.live) {
			return &MassDeleteError{Side: pl.to, Deletes: pl.deletes, Items: pl.live, Threshold: t}
		}
	}
	return nil
}
