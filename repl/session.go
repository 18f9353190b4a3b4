package repl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
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
	// MassDeleteThreshold is the fraction of a replica's items a session may delete before the
	// guard stops it; 0 means 0.5, a negative value disables the guard.
	MassDeleteThreshold float64
	// MassDeleteMinItems: replicas with fewer live items are not guarded by the threshold
	// (deleting 6 of 10 files is an ordinary clean-up); 0 means 10. Emptying a replica of two
	// or more items is always guarded (a phone reset or a card swapped looks like that, and a
	// small folder is no less precious).
	MassDeleteMinItems int
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
	if c.MassDeleteMinItems <= 0 {
		c.MassDeleteMinItems = 10
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

// ErrMassDelete is matched by *MassDeleteError.
var ErrMassDelete = errors.New("mass delete stopped")

// MassDeleteError reports a session that would have deleted too much of a replica. Nothing was
// changed in either store.
type MassDeleteError struct {
	Side    string
	Deletes int
	Items   int
}

func (e *MassDeleteError) Error() string {
	return fmt.Sprintf("this sync would delete %d of the %d items on the %s side, so it was stopped before changing anything; "+
		"if the deletions are intended, sync again and allow them", e.Deletes, e.Items, e.Side)
}

// Unwrap returns ErrMassDelete.
func (e *MassDeleteError) Unwrap() error { return ErrMassDelete }

// session is one Sync.
type session struct {
	hf   *HandleFile
	a, b Side
	cfg  Config
	rep  *Report
	prog Progress
	last time.Time
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
		return err
	}
	s.prog.Phase = PhaseSyncing
	for _, pl := range plans {
		s.prog.ItemsTotal += len(pl.changes)
		s.prog.BytesTotal += pl.bytes
	}
	complete := true
	for i, pr := range s.passes() {
		p := s.newPass(pr[0], pr[1])
		changes := plans[i].changes
		if i > 0 {
			// Earlier passes changed the metadata (settled conflicts, merged items): list again.
			var pl plannedPass
			if changes, pl, err = p.collect(); err != nil {
				return err
			}
			s.prog.ItemsTotal += len(changes) - len(plans[i].changes)
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
	return s.hf.applyPendingResolutions(ctx, s.a, s.b, s.cfg.Now(), s.rep)
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
	changes  []changeRef
	bytes    int64
	deletes  int // live items of the destination the pass would delete
	live     int // live items of the destination
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
		pl.changes = changes
		out = append(out, pl)
	}
	return out, nil
}

func (s *session) guard(plans []plannedPass) error {
	if s.cfg.AllowMassDelete || s.cfg.MassDeleteThreshold < 0 {
		return nil
	}
	for _, pl := range plans {
		emptied := pl.live >= 2 && pl.deletes >= pl.live
		if pl.live < s.cfg.MassDeleteMinItems && !emptied {
			continue
		}
		if emptied || float64(pl.deletes) > s.cfg.MassDeleteThreshold*float64(pl.live) {
			return &MassDeleteError{Side: pl.to, Deletes: pl.deletes, Items: pl.live}
		}
	}
	return nil
}

// pass sends one source's changes to one destination.
type pass struct {
	s        *session
	src, dst Side
	srcKnow  *Knowledge
	deferred []changeRef
	complete bool
	// only marks a pass that sends chosen items, not all the source has: the destination then
	// learns those items' versions only, never the source's whole knowledge.
	only bool
	// holes are the versions of the changes a conflict left to the user: when the destination
	// learns the source's knowledge, they stay unknown (Knowledge.Forget).
	holes []Version
	// learned is set when the last batch learned the source's whole knowledge in its own
	// transaction (one commit fewer).
	learned       bool
	skippedBefore int
}

func (s *session) newPass(src, dst Side) *pass {
	return &pass{s: s, src: src, dst: dst}
}

// collect lists the source's changes that the destination's knowledge lacks, sorted for
// applying: live items by name (folders before what they hold), then tombstones by name in
// reverse (contents before their folder). It also counts what the mass-delete guard needs.
func (p *pass) collect() ([]changeRef, plannedPass, error) {
	pl := plannedPass{from: p.src.Name, to: p.dst.Name}
	var changes []changeRef
	err := p.s.hf.view(func(tx *bolt.Tx) error {
		rs, err := p.s.hf.openReplica(tx, p.src.Name, false)
		if errors.Is(err, ErrUnknownReplica) {
			return nil
		}
		if err != nil {
			return err
		}
		p.srcKnow = rs.know.Clone()
		dk := &Knowledge{}
		rd, err := p.s.hf.openReplica(tx, p.dst.Name, false)
		switch {
		case errors.Is(err, ErrUnknownReplica):
			rd = nil
		case err != nil:
			return err
		default:
			dk = rd.know
			pl.live = int(rd.count)
		}
		c := rs.x.Cursor()
		seek := func(v Version) ([]byte, []byte) {
			k, _, _ := rs.vkey(v, false) // the author of a key just read is in the list
			return c.Seek(k)
		}
		for k, xv := c.First(); k != nil; {
			ver, ok := rs.versionOfKey(k)
			if !ok {
				return fmt.Errorf("replica %q: bad version index key %x: %w", rs.name, k, errMalformed)
			}
			if base := dk.vec.Get(ver.Replica); ver.Tick <= base {
				// Known, but for the holes conflicts left: skip to the next one, or past the run.
				h, ok := dk.nextHole(ver.Replica, ver.Tick)
				switch {
				case !ok || h.Tick > base:
					k, xv = seek(Version{ver.Replica, base + 1})
					continue
				case h.Tick > ver.Tick:
					k, xv = seek(h)
					continue
				}
			}
			if !dk.Contains(ver) {
				rec, err := rs.atVersion(ver, xv)
				if err != nil {
					return err
				}
				if rec == nil || rec.Missing {
					// An item created at ver and changed since (its current version has a key
					// of its own), or one whose data was a partial write the engine removed:
					// nothing to send until its change comes again.
					k, xv = c.Next()
					continue
				}
				gid := rec.GID
				changes = append(changes, changeRef{gid: gid, name: rec.Name, tomb: rec.Tomb, merged: rec.Tomb && !rec.Merged.IsZero(),
					kind: rec.Stamp.Kind, size: rec.Stamp.Size, mod: rec.Stamp.ModTime})
				if rec.Tomb {
					if rd != nil {
						l, err := rd.byGID(gid)
						if err != nil {
							return err
						}
						if l.live() && !l.Missing && rec.V.Contains(l.Ver) && (rec.Merged.IsZero()) {
							pl.deletes++
						}
					}
				} else if rec.Stamp.Kind == KindFile {
					pl.bytes += rec.Stamp.Size
				}
			}
			k, xv = c.Next()
		}
		if rd != nil && !dk.Covers(rs.forgotten) {
			// The destination has not learned all the source forgot: compare in full.
			gone, err := forgottenDeletes(rs, rd)
			if err != nil {
				return err
			}
			changes = append(changes, gone...)
			pl.deletes += len(gone)
		}
		return nil
	})
	sortChanges(changes)
	return changes, pl, err
}

// sortChanges orders a pass: first the tombstones of merged items (they re-key local items, which
// the survivor's change then updates), then live items by name (a folder before what it holds),
// then deletions by name in reverse (what a folder holds before the folder).
func sortChanges(changes []changeRef) {
	rank := func(c changeRef) int {
		switch {
		case c.merged:
			return 0
		case !c.tomb:
			return 1
		}
		return 2
	}
	slices.SortFunc(changes, func(x, y changeRef) int {
		if rx, ry := rank(x), rank(y); rx != ry {
			return rx - ry
		}
		if x.tomb && !x.merged {
			if c := strings.Compare(y.name, x.name); c != 0 {
				return c
			}
		} else if c := strings.Compare(x.name, y.name); c != 0 {
			return c
		}
		return x.gid.Compare(y.gid)
	})
}

// run applies the changes in batches, then retries what had to wait, and finally learns the
// source's whole knowledge if nothing was left out.
func (p *pass) run(ctx context.Context, changes []changeRef) error {
	if p.srcKnow == nil {
		if _, _, err := p.collect(); err != nil { // for the knowledge snapshot
			return err
		}
		if p.srcKnow == nil {
			p.complete = true
			return nil // the source replica does not exist yet: nothing to send
		}
	}
	p.s.prog.From, p.s.prog.To = p.src.Name, p.dst.Name
	p.skippedBefore = len(p.s.rep.Skipped)
	bs := p.s.cfg.BatchSize
	for i := 0; i < len(changes); i += bs {
		if err := p.batch(ctx, changes[i:min(i+bs, len(changes))], false, i+bs >= len(changes)); err != nil {
			return err
		}
	}
	if len(p.deferred) > 0 {
		retry := p.deferred
		p.deferred = nil
		if err := p.redetect(ctx, retry); err != nil {
			return err
		}
		if err := p.batch(ctx, retry, true, true); err != nil {
			return err
		}
	}
	p.complete = len(p.deferred) == 0 && len(p.s.rep.Skipped) == p.skippedBefore
	if !p.complete || p.only || p.learned {
		return nil
	}
	// Nothing to send (or the last batch could not learn): learn the source's knowledge now,
	// unless it brings nothing new.
	var news bool
	if err := p.s.hf.view(func(tx *bolt.Tx) error {
		rs, err := p.s.hf.openReplica(tx, p.src.Name, false)
		if err != nil {
			return err
		}
		rd, err := p.s.hf.openReplica(tx, p.dst.Name, false)
		if errors.Is(err, ErrUnknownReplica) {
			news = true
			return nil
		}
		if err != nil {
			return err
		}
		_, news = p.afterLearning(rs, rd)
		return nil
	}); err != nil || !news {
		return err
	}
	return p.s.hf.update(func(tx *bolt.Tx) error {
		rs, err := p.s.hf.openReplica(tx, p.src.Name, false)
		if err != nil {
			return err
		}
		rd, err := p.s.hf.openReplica(tx, p.dst.Name, true)
		if err != nil {
			return err
		}
		p.learnSource(rs, rd)
		return rd.save()
	})
}

// learnSource makes the destination know what the source knows, but the changes conflicts left
// unapplied (the holes).
func (p *pass) learnSource(rs, rd *rtx) {
	if know, changed := p.afterLearning(rs, rd); changed {
		rd.know = know
		rd.dirty = true
	}
}

// afterLearning returns the destination's knowledge once it learned the source's, and whether that is
// news. A hole of an earlier session whose version the source itself made and has since replaced
// is learned: nothing will ever send that version again (the item's later version includes it),
// and knowledge must not grow with every conflict ever settled.
func (p *pass) afterLearning(rs, rd *rtx) (*Knowledge, bool) {
	know := rd.know.Clone()
	know.Merge(p.srcKnow)
	for _, h := range know.Holes() {
		if h.Replica == rs.author && !slices.Contains(p.holes, h) {
			if current, err := rs.isCurrentVersion(h); err == nil && !current {
				know.Add(h)
			}
		}
	}
	for _, h := range p.holes {
		know.Forget(h)
	}
	return know, !know.Covers(rd.know) || !rd.know.Covers(know)
}

// pushItems sends chosen items of from to to at once (a resolved conflict, while both stores are
// at hand), without a full session.
func (hf *HandleFile) pushItems(ctx context.Context, from, to Side, gids []Version) error {
	s, err := hf.newSession(from, to, Config{Direction: AToB})
	if err != nil {
		return err
	}
	p := s.newPass(from, to)
	p.only = true
	var refs []changeRef
	err = hf.view(func(tx *bolt.Tx) error {
		rs, err := hf.openReplica(tx, from.Name, false)
		if err != nil {
			return err
		}
		p.srcKnow = rs.know.Clone()
		for _, gid := range gids {
			rec, err := rs.byGID(gid)
			if err != nil {
				return err
			}
			if rec != nil && !rec.Missing {
				refs = append(refs, changeRef{gid: gid, name: rec.Name, tomb: rec.Tomb, merged: rec.Tomb && !rec.Merged.IsZero(),
					kind: rec.Stamp.Kind, size: rec.Stamp.Size, mod: rec.Stamp.ModTime})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sortChanges(refs)
	// An item that cannot be written now (it changed again meanwhile) stays pending for the
	// next session, like any skipped change; only an error that stops everything is returned.
	return p.run(ctx, refs)
}

// redetect looks again at the destination items that refused a change, so the retry sees the
// user's changes as the concurrent changes they are.
func (p *pass) redetect(ctx context.Context, retry []changeRef) error {
	if _, ok := p.dst.Store.(Stater); !ok {
		_, err := p.s.hf.detect(ctx, Side{Name: p.dst.Name, Store: p.dst.Store}, false)
		return err
	}
	cs := &ChangeSet{handles: map[string]struct{}{}}
	err := p.s.hf.view(func(tx *bolt.Tx) error {
		rd, err := p.s.hf.openReplica(tx, p.dst.Name, false)
		if err != nil {
			return err
		}
		for _, c := range retry {
			cs.handles[c.name] = struct{}{}
			if l, err := rd.byGID(c.gid); err != nil {
				return err
			} else if l.live() {
				cs.handles[l.Handle] = struct{}{}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = p.s.hf.detect(ctx, Side{Name: p.dst.Name, Store: p.dst.Store, Changes: cs}, true)
	return err
}

// batch applies changes and commits their metadata and the destination's knowledge in one
// transaction, after the data is written. A fatal error (the context, a store gone or full)
// stops the batch: what was applied before it is still committed.
func (p *pass) batch(ctx context.Context, changes []changeRef, retry, last bool) error {
	atomicDst := true
	if a, ok := p.dst.Store.(Atomicity); ok && !a.WritesAtomic() {
		atomicDst = false
	}
	var copies map[string][]string // conflict copies' intents, by change
	if !atomicDst {
		var err error
		if copies, err = p.s.hf.writeIntents(p.src.Name, p.dst.Name, changes, p.s.cfg.Now()); err != nil {
			return err
		}
	}
	var fatal error
	err := p.s.hf.update(func(tx *bolt.Tx) error {
		rs, err := p.s.hf.openReplica(tx, p.src.Name, false)
		if err != nil {
			return err
		}
		rd, err := p.s.hf.openReplica(tx, p.dst.Name, true)
		if err != nil {
			return err
		}
		a := &applier{p: p, rs: rs, rd: rd, tx: tx, retry: retry}
		var settled []string // intents to drop: items dealt with, one way or another
		for _, c := range changes {
			if err := ctx.Err(); err != nil {
				fatal = fmt.Errorf("sync %s to %s: %w", p.src.Name, p.dst.Name, err)
				break
			}
			p.s.prog.Current = c.name
			p.s.progress(false)
			err := a.apply(ctx, c)
			if !retry {
				p.s.prog.ItemsDone++ // a retried change was counted on its first try
			}
			if err == nil {
				settled = append(settled, c.name)
				continue
			}
			a.trace("  failed: %v", err)
			var se *storeError
			if !errors.As(err, &se) {
				return err // the handle file itself failed: nothing of this batch is committed
			}
			if se.fatal() {
				// The intent of this item stays (and those of the items after it, never
				// tried): the next session checks it for a partial item.
				fatal = err
				break
			}
			if !atomicDst && !(se.dst && refusedUpFront(err)) {
				// A write that failed half-way (the destination's error, or the source's
				// mid-stream) may have left a partial item: remove it now.
				if cerr := a.removePartial(ctx, c); cerr != nil {
					fatal = fmt.Errorf("%w (while cleaning up after: %v)", cerr, err)
					break
				}
			}
			if se.deferrable() && !retry {
				p.deferred = append(p.deferred, c)
			} else {
				p.s.rep.Skipped = append(p.s.rep.Skipped, Skipped{From: p.src.Name, To: p.dst.Name, Name: c.name, Err: err})
			}
			settled = append(settled, c.name)
		}
		if !atomicDst {
			if err := rd.dropIntents(settled); err != nil {
				return err
			}
			for _, n := range settled {
				if err := rd.dropIntents(copies[n]); err != nil {
					return err
				}
			}
		}
		if last && fatal == nil && len(p.deferred) == 0 && len(p.s.rep.Skipped) == p.skippedBefore && !p.only {
			// The pass is complete: learn the source's whole knowledge with this batch.
			p.learnSource(rs, rd)
			p.learned = true
		}
		if err := rs.save(); err != nil {
			return err
		}
		return rd.save()
	})
	if err != nil {
		return err
	}
	return fatal
}

// refusedUpFront reports errors with which a store refuses a write before writing anything.
func refusedUpFront(err error) bool {
	for _, e := range []error{ErrChanged, ErrExists, ErrNotFound, ErrInvalidName, ErrPermission, ErrReadOnly} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// storeError is an error from a store call during a pass.
type storeError struct {
	side string
	op   string
	name string
	err  error
	dst  bool // the destination's store (else the source's)
}

func (e *storeError) Error() string {
	return fmt.Sprintf("%s %q in %s: %v", e.op, e.name, e.side, e.err)
}

func (e *storeError) Unwrap() error   { return e.err }
func (e *storeError) errSide() string { return e.side }

// deferrable: the destination item is not as detection saw it; look again and retry.
func (e *storeError) deferrable() bool {
	return e.dst && (errors.Is(e.err, ErrChanged) || errors.Is(e.err, ErrExists) || errors.Is(e.err, ErrNotFound) ||
		errors.Is(e.err, ErrNotEmpty)) // a folder becoming a file: its items' deletions come later in the pass
}

// fatal: nothing more can be done in this session.
func (e *storeError) fatal() bool {
	return errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded) ||
		errors.Is(e.err, ErrGone) || errors.Is(e.err, ErrNoSpace) || (e.dst && errors.Is(e.err, ErrReadOnly))
}
