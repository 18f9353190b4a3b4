package repl

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// A pass sends one source's changes to one destination: it lists what the destination's knowledge
// lacks, applies it in batches committed with their metadata, retries what had to wait, and learns
// the source's knowledge.

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
	skippedBefore int // the session's skips when the pass began
	// aside maps a folder's name to the conflict name this pass wrote it under at the
	// destination (the name was taken there, as a case-folding device takes "Docs" for "docs"):
	// the items it holds follow it there, instead of failing under a name that is taken.
	aside map[string]string
}

// underAside returns name with its folder moved to where this pass put that folder aside.
func (p *pass) underAside(name string) string {
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if to, ok := p.aside[dir]; ok {
			return to + name[len(dir):]
		}
	}
	return name
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
	p.skippedBefore = p.s.skips
	bs := p.s.cfg.BatchSize
	for done := 0; len(changes) > 0; {
		n := min(bs, len(changes))
		if err := p.batch(ctx, changes[:n], false, n == len(changes)); err != nil {
			return err
		}
		// What is applied is let go (a change held for its retry is a copy): its name at once,
		// and the array it sat in once the changes left fit in half of it.
		clear(changes[:n])
		changes, done = changes[n:], done+n
		if done >= len(changes) && len(changes) > 0 {
			changes, done = slices.Clone(changes), 0
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
	p.complete = len(p.deferred) == 0 && p.s.skips == p.skippedBefore
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
	for _, gid := range gids {
		s.setCause(gid, CauseConflict)
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
				p.s.skip(Skipped{From: p.src.Name, To: p.dst.Name, Name: c.name, Err: err})
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
		if last && fatal == nil && len(p.deferred) == 0 && p.s.skips == p.skippedBefore && !p.only {
			// The pass is complete: learn the source's whole knowledge with this batch.
			p.learnSource(rs, rd)
			p.learned = true
		}
		// A store that defers its writes makes them durable before the records say they
		// are applied; if it cannot, none of the batch is recorded.
		if err := persist(ctx, p.src, p.dst); err != nil {
			return err
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

func (e *storeError) Unwrap() error { return e.err }

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
