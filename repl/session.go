package repl

import (
	"context"
	"fmt"
	"time"
)

// Direction says which way a session sends changes between its sides a and b.
type Direction int

// Directions.
const (
	// BothWays sends b's changes to a, then a's changes to b (and b's again if settling
	// conflicts created items on b).
	BothWays Direction = iota
	// AToB sends only a's changes to b (b's changes are still detected and kept).
	AToB
	// BToA sends only b's changes to a.
	BToA
)

func (d Direction) String() string {
	switch d {
	case BothWays:
		return "both ways"
	case AToB:
		return "a to b"
	case BToA:
		return "b to a"
	}
	return fmt.Sprintf("direction(%d)", int(d))
}

// Rule is how a conflict is settled.
type Rule int

// Rules.
const (
	// Ask records the conflict with both versions and changes nothing until Resolve.
	Ask Rule = iota
	// Wins keeps the version of the side Policy.Winner names.
	Wins
	// Newest keeps the version with the later modification time (ties go to the higher
	// version, the same answer on every computer).
	Newest
	// KeepBoth keeps the newest under the item's name and saves the other beside it as
	// "name (conflict 2026-11-21 side).ext"; both propagate.
	KeepBoth
)

func (r Rule) String() string {
	switch r {
	case Ask:
		return "ask"
	case Wins:
		return "wins"
	case Newest:
		return "newest"
	case KeepBoth:
		return "keep-both"
	}
	return fmt.Sprintf("rule(%d)", int(r))
}

// Policy is a partnership's conflict policy.
type Policy struct {
	Rule   Rule
	Winner string // for Wins: the name of the side whose version is kept
}

// Config tunes a session. The zero value is a two-way session under the Ask policy.
type Config struct {
	Direction Direction
	Policy    Policy
	// BatchSize is how many changes the destination applies per committed batch; 0 means 200.
	BatchSize int
	// MassDeleteThreshold is the fraction of a replica's items a session may delete: one that
	// would delete more stops before changing anything (the mass-delete guard), whatever the
	// number of items, so emptying a replica always stops. 0 means 0.5; 1 or more, or a negative
	// value, disables the guard.
	MassDeleteThreshold float64
	// AllowMassDelete lets a session past the guard (the user confirmed).
	AllowMassDelete bool
	// TombstoneAge is how long a tombstone is kept at most when not every partner has learned
	// its delete; 0 means DefaultTombstoneAge, a negative value keeps them until they have.
	TombstoneAge time.Duration
	// Progress, if set, is called from the session's goroutine at most every ProgressInterval
	// (0 means 200ms), and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Now is the clock for conflict times and copy names; nil is time.Now.
	Now func() time.Time
}

func (c *Config) fill() {
	if c.BatchSize <= 0 {
		c.BatchSize = 200
	}
	if c.MassDeleteThreshold == 0 {
		c.MassDeleteThreshold = 0.5
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 200 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TombstoneAge == 0 {
		c.TombstoneAge = DefaultTombstoneAge
	}
}

// Phase is what a session is doing.
type Phase string

// Phases.
const (
	PhaseDetecting Phase = "detecting"
	PhaseSyncing   Phase = "syncing"
	PhaseDone      Phase = "done"
)

// Progress reports how far a session is.
type Progress struct {
	Phase      Phase
	From, To   string // the pass running (side names)
	ItemsDone  int
	ItemsTotal int
	BytesDone  int64
	BytesTotal int64
	Current    string // the item being applied
}

// Counts are the save actions applied to one side.
type Counts struct {
	Created     int
	Updated     int
	Renamed     int
	Deleted     int
	VersionOnly int // nothing to write: versions brought up to date
}

// Total returns how many items were written or deleted.
func (c Counts) Total() int { return c.Created + c.Updated + c.Renamed + c.Deleted }

// Decision is a conflict the policy settled (or that settled itself) during a session.
type Decision struct {
	Name   string
	Rule   Rule   // the policy's rule; Ask never appears here
	Kept   string // the side whose version was kept under the name
	Lost   string // the side whose version was replaced
	Copy   string // KeepBoth: the name the other version was saved under
	Reason string // "policy", "an edit beats a delete", "the name is taken by another item", ...
	// Dropped describes the version that was discarded (Rule Wins or Newest); zero otherwise.
	Dropped ItemState
}

// ItemState is one side's version of an item, as conflicts and decisions show it.
type ItemState struct {
	Exists  bool
	Kind    Kind
	Size    int64
	ModTime time.Time
	Handle  string
}

// Skipped is a change a session could not apply; it stays pending and is retried by the next one.
type Skipped struct {
	From, To string
	Name     string
	Err      error
}

// skip reports a change the session could not apply. The last pass of the first direction tries
// again what that direction's first pass skipped: an item is reported once, with its last error.
// Passes tell whether they skipped anything by s.skips, which counts every try.
func (s *session) skip(sk Skipped) {
	s.skips++
	k := [3]string{sk.From, sk.To, sk.Name}
	if i, ok := s.skipAt[k]; ok {
		s.rep.Skipped[i] = sk
		return
	}
	if s.skipAt == nil {
		s.skipAt = map[[3]string]int{}
	}
	s.skipAt[k] = len(s.rep.Skipped)
	s.rep.Skipped = append(s.rep.Skipped, sk)
}

// Report says what a session did.
type Report struct {
	Detected  []DetectReport
	Applied   map[string]*Counts // by destination side name
	Conflicts []Conflict         // recorded or updated under Ask
	Decisions []Decision
	Skipped   []Skipped
	Bytes     int64 // content bytes written
	// Complete is true when every change was applied or recorded: nothing is pending.
	Complete bool
}

func (r *Report) counts(side string) *Counts {
	if r.Applied == nil {
		r.Applied = map[string]*Counts{}
	}
	c := r.Applied[side]
	if c == nil {
		c = &Counts{}
		r.Applied[side] = c
	}
	return c
}

// session is one Sync.
type session struct {
	hf   *HandleFile
	a, b Side
	cfg  Config
	rep  *Report
	prog Progress
	last time.Time
	// causes holds, per item, why a later write over the other side's version happens: a
	// conflict the user resolved, the policy's decision. Items not in it are plain updates.
	causes map[Version]Cause
	// dry is set for a Forecast: the guard does not stop the session, it records massDelete.
	dry        bool
	massDelete *MassDeleteError
	conflicts  func(from, to string, c *Conflict) // told of each conflict recorded (Forecast)
	// skips counts the changes the passes skipped, tries again included; skipAt is where each
	// skipped item is in rep.Skipped.
	skips  int
	skipAt map[[3]string]int
}

// Sync runs a session between sides a and b: detection on both, then the passes cfg.Direction
// asks for. It returns the report with an error when the session stopped early (what was
// committed stays and the next session resumes from there); a *MassDeleteError stops it before
// anything changes. Conflicts left under the Ask policy are not errors.
func (hf *HandleFile) Sync(ctx context.Context, a, b Side, cfg Config) (*Report, error) {
	hf.mu.Lock()
	defer hf.mu.Unlock()
	s, err := hf.newSession(a, b, cfg)
	if err != nil {
		return nil, err
	}
	err = s.run(ctx)
	// What a store deferred (Flusher) reaches its replica now, also after an error.
	err = flush(ctx, err, s.a, s.b)
	if err == nil {
		// What every partner has learned may be forgotten (an interrupted session leaves it
		// to the next).
		_, err = hf.forgetTombstones(time.Now(), s.cfg.TombstoneAge)
	}
	s.prog.Phase = PhaseDone
	s.progress(true)
	return s.rep, err
}

func (hf *HandleFile) newSession(a, b Side, cfg Config) (*session, error) {
	if a.Name == "" || b.Name == "" || a.Name == b.Name {
		return nil, fmt.Errorf("sync: sides need two different names, got %q and %q", a.Name, b.Name)
	}
	if a.Store == nil || b.Store == nil {
		return nil, fmt.Errorf("sync %s with %s: a side has no store", a.Name, b.Name)
	}
	if cfg.Policy.Rule == Wins && cfg.Policy.Winner != a.Name && cfg.Policy.Winner != b.Name {
		return nil, fmt.Errorf("sync %s with %s: the policy names winner %q, which is neither side", a.Name, b.Name, cfg.Policy.Winner)
	}
	cfg.fill()
	return &session{hf: hf, a: a, b: b, cfg: cfg, rep: &Report{Applied: map[string]*Counts{}}}, nil
}

func (s *session) passes() [][2]Side {
	switch s.cfg.Direction {
	case AToB:
		return [][2]Side{{s.a, s.b}}
	case BToA:
		return [][2]Side{{s.b, s.a}}
	}
	return [][2]Side{{s.b, s.a}, {s.a, s.b}}
}

func (s *session) run(ctx context.Context) error {
	if err := s.prepare(ctx); err != nil {
		return err
	}
	plans, err := s.plan(ctx)
	if err != nil {
		return err
	}
	if err := s.guard(plans); err != nil {
		if !s.dry {
			return err
		}
		s.massDelete = err.(*MassDeleteError)
	}
	s.prog.Phase = PhaseSyncing
	for _, pl := range plans {
		s.prog.ItemsTotal += pl.n
		s.prog.BytesTotal += pl.bytes
	}
	complete := true
	for i, pr := range s.passes() {
		p := s.newPass(pr[0], pr[1])
		changes := plans[i].changes
		plans[i].changes = nil // the pass lets go of what it applied
		if i > 0 {
			// Earlier passes changed the metadata (settled conflicts, merged items): list again.
			var pl plannedPass
			if changes, pl, err = p.collect(); err != nil {
				return err
			}
			s.prog.ItemsTotal += len(changes) - plans[i].n
			s.prog.BytesTotal += pl.bytes - plans[i].bytes
		}
		if err := p.run(ctx, changes); err != nil {
			return err
		}
		complete = complete && p.complete
	}
	// Settling conflicts in the second pass gives its destination new versions (one that
	// includes both sides' changes, a conflict copy): one more pass of the first direction
	// brings them back, so both replicas end the session equal.
	if s.cfg.Direction == BothWays {
		first := s.passes()[0]
		p := s.newPass(first[0], first[1])
		changes, _, err := p.collect()
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			s.prog.ItemsTotal += len(changes)
			if err := p.run(ctx, changes); err != nil {
				return err
			}
			complete = complete && p.complete
		}
	}
	s.rep.Complete = complete && len(s.rep.Skipped) == 0
	return nil
}

// prepare recovers from unfinished writes, applies pending resolutions and detects changes on
// both sides.
func (s *session) prepare(ctx context.Context) error {
	s.prog.Phase = PhaseDetecting
	s.progress(true)
	if err := s.hf.recoverIntents(ctx, s.a, s.b); err != nil {
		return err
	}
	if err := s.hf.recoverIntents(ctx, s.b, s.a); err != nil {
		return err
	}
	reps, err := s.hf.detectSides(ctx, []Side{s.a, s.b}, true)
	if err != nil {
		return err
	}
	s.rep.Detected = append(s.rep.Detected, reps...)
	return s.hf.applyPendingResolutions(ctx, s.a, s.b, s.cfg.Now(), s.rep, func(gid Version) { s.setCause(gid, CauseConflict) })
}

func (s *session) progress(force bool) {
	if s.cfg.Progress == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(s.last) < s.cfg.ProgressInterval {
		return
	}
	s.last = now
	s.cfg.Progress(s.prog)
}

// plannedPass is what one pass would send.
type plannedPass struct {
	from, to string
	// changes are the first pass's changes; a later pass lists its own again once the passes
	// before it are applied, so only their count (n) is kept.
	changes []changeRef
	n       int
	bytes   int64
	deletes int // live items of the destination the pass would delete
	live    int // live items of the destination
}

// changeRef is one change a source would send.
type changeRef struct {
	gid    Version
	name   string
	tomb   bool
	merged bool // a tombstone of an item merged into another: applied first
	// forgotten marks a delete the source forgot (a full comparison found it): the source has
	// no record of the item.
	forgotten bool
	kind      Kind
	size      int64
	mod       int64 // modification time, Unix nanoseconds
}

// plan lists what each pass would send, from the metadata as it is after detection.
func (s *session) plan(_ context.Context) ([]plannedPass, error) {
	var out []plannedPass
	for _, pr := range s.passes() {
		p := s.newPass(pr[0], pr[1])
		changes, pl, err := p.collect()
		if err != nil {
			return nil, err
		}
		pl.n = len(changes)
		if len(out) == 0 {
			pl.changes = changes
		}
		out = append(out, pl)
	}
	return out, nil
}
