package repl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
)

// keepBoth keeps one version under the name (the one the policy picks: under KeepBoth and Ask the
// newer) and saves the other beside it; reason says why, for the report.
func (a *applier) keepBoth(ctx context.Context, c, l *record, reason string) error {
	return a.keepBothAs(ctx, c, l, a.localWins(c, l), reason)
}

// keepBothAs keeps the destination's version under the name when localKeeps (else the source's)
// and saves the other beside it under a conflict name.
func (a *applier) keepBothAs(ctx context.Context, c, l *record, localKeeps bool, reason string) error {
	now := a.now()
	if localKeeps && l.Stamp.Kind == KindFile && c.Stamp.Kind == l.Stamp.Kind {
		// An earlier attempt that stopped half-way may have saved ours aside already, to take
		// theirs: finish that, rather than save theirs aside too.
		if _, done, err := a.findCopy(ctx, l.Name, a.dst().Name, now, l.Stamp, a.dst().Store, l.Handle); err != nil {
			return err
		} else if done {
			localKeeps = false
		}
	}
	if localKeeps {
		// The source's version becomes a new item here, beside ours.
		name, done, err := a.findCopy(ctx, l.Name, a.src().Name, now, c.Stamp, a.src().Store, c.Handle)
		if err != nil {
			return err
		}
		if !done {
			// An attempt the other way round that stopped half-way may have saved the source's
			// version aside in the source already: that copy is an item of its own, on its way
			// here, and a second one would be a duplicate.
			if name, done, err = a.findCopyIn(ctx, false, l.Name, a.src().Name, now, c.Stamp, a.src().Store, c.Handle); err != nil {
				return err
			}
		}
		if !done {
			var e Entry
			name, e, err = writeCopy(l.Name, a.src().Name, now, func(n string) (Entry, error) { return a.write(ctx, c, n, nil, CauseNone) })
			if err != nil {
				return err
			}
			if err := a.newItem(ctx, e, name); err != nil {
				return err
			}
		}
		if err := a.keepLocal(c, l, ""); err != nil {
			return err
		}
		a.p.s.setCause(l.GID, CausePolicy)
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: l.Name, Rule: a.keptRule(), Kept: a.dst().Name,
			Lost: a.src().Name, Copy: name, Reason: reason})
		return nil
	}
	// Ours is older: copy it aside first (nothing is lost if we stop half-way: the next attempt
	// finds the copy), then take theirs.
	name, done, err := a.findCopy(ctx, l.Name, a.dst().Name, now, l.Stamp, a.dst().Store, l.Handle)
	if err != nil {
		return err
	}
	if !done {
		spool, err := a.spool(ctx, l)
		if err != nil {
			return err
		}
		defer spool.close()
		var units func() (Units, error)
		if l.Units != nil {
			if du, ok := a.dst().Store.(UnitStore); ok {
				u, err := du.ReadUnits(ctx, l.Handle)
				if err != nil {
					return a.dstErr("read units of", l.Handle, err)
				}
				units = func() (Units, error) { return u, nil }
			}
		}
		var e Entry
		name, e, err = writeCopy(l.Name, a.dst().Name, now, func(n string) (Entry, error) {
			return a.writeFrom(ctx, l, nil, n, nil, CauseNone, spool.open, units)
		})
		if err != nil {
			return err
		}
		if err := a.newItem(ctx, e, name); err != nil {
			return err
		}
	}
	v := a.rd.mint()
	a.cause = a.p.s.causeOf(c.GID, CausePolicy)
	if err := a.update(ctx, c, l, a.joinV(c, l).With(v), v); err != nil {
		return err
	}
	a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: c.Name, Rule: a.keptRule(), Kept: a.src().Name,
		Lost: a.dst().Name, Copy: name, Reason: reason})
	return nil
}

// keptRule is the rule a keep-both decision reports: the policy's (Ask keeps both only when the
// user chose, which is no decision of a session).
func (a *applier) keptRule() Rule {
	if r := a.p.s.cfg.Policy.Rule; r != Ask {
		return r
	}
	return KeepBoth
}

// findCopy looks for a conflict copy of the version st describes (the item at handle in store) that
// an earlier, interrupted attempt already saved in the destination: a recorded item under one of
// the copy names with the same size and modification time, and the same content.
func (a *applier) findCopy(ctx context.Context, name, side string, now time.Time, st Stamp, store Store, handle string) (string, bool, error) {
	return a.findCopyIn(ctx, true, name, side, now, st, store, handle)
}

// findCopyIn is findCopy among the destination's items (inDst) or the source's.
func (a *applier) findCopyIn(ctx context.Context, inDst bool, name, side string, now time.Time, st Stamp, store Store, handle string) (string, bool, error) {
	rt, in, inErr := a.rd, a.dst().Store, a.dstErr
	if !inDst {
		rt, in, inErr = a.rs, a.src().Store, a.srcErr
	}
	for n := 1; n <= maxCopies; n++ {
		cn := copyName(name, side, now, n)
		rec, err := rt.byHandle(cn)
		if err != nil {
			return "", false, err
		}
		if rec == nil {
			return "", false, nil
		}
		if in == store && rec.Handle == handle {
			continue // the version itself, under a copy name (renamed there), is no copy of it
		}
		d := rec.Stamp.ModTime - st.ModTime
		if rec.Missing || rec.Stamp.Kind != st.Kind || rec.Stamp.Size != st.Size || d <= -modSlack || d >= modSlack {
			continue
		}
		if st.Kind == KindFolder {
			return cn, true, nil
		}
		x, err := contentHash(ctx, in, rec.Handle)
		if err != nil {
			return "", false, inErr("read", rec.Handle, err)
		}
		y, err := contentHash(ctx, store, handle)
		if err != nil {
			return "", false, &storeError{side: side, op: "read", name: handle, err: err, dst: store == a.dst().Store}
		}
		if x == y {
			return cn, true, nil
		}
	}
	return "", false, nil
}

// contentHash reads an item through and returns the SHA-256 of its content (one stream at a
// time: a device may not serve two at once).
func contentHash(ctx context.Context, st Store, handle string) ([32]byte, error) {
	rc, err := st.Open(ctx, handle)
	if err != nil {
		return [32]byte{}, err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// newItem records an item the engine created in the destination (a conflict copy) as a change of
// the destination replica, so it propagates.
func (a *applier) newItem(ctx context.Context, e Entry, name string) error {
	v := a.rd.mint()
	rec := &record{GID: v, Ver: v, CVer: v, NVer: v, V: Vector{v}, Name: name, When: a.now().UnixNano()}
	if err := a.fill(ctx, rec, e, nil); err != nil {
		return err
	}
	if rec.Units != nil {
		for i := range rec.Units {
			rec.Units[i].Ver = v
		}
	}
	a.counts().Created++
	return a.rd.put(nil, rec)
}

// spooled is a local item's content copied to a temporary file, so the store is never read and
// written at once.
type spooled struct {
	f *os.File
}

func (s *spooled) open() (io.ReadCloser, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.NopCloser(s.f), nil
}

func (s *spooled) close() {
	name := s.f.Name()
	s.f.Close()
	os.Remove(name)
}

func (a *applier) spool(ctx context.Context, l *record) (*spooled, error) {
	f, err := os.CreateTemp("", "cradle-conflict-*")
	if err != nil {
		return nil, fmt.Errorf("keep both versions of %q: temporary copy: %w", l.Name, err)
	}
	s := &spooled{f: f}
	if l.Stamp.Kind == KindFolder {
		return s, nil
	}
	rc, err := a.dst().Store.Open(ctx, l.Handle)
	if err != nil {
		s.close()
		return nil, a.dstErr("open", l.Handle, err)
	}
	defer rc.Close()
	if _, err := io.Copy(f, rc); err != nil {
		s.close()
		return nil, a.dstErr("copy aside", l.Handle, err)
	}
	return s, nil
}

// copyName is the name a conflict's other version is saved under:
// "dir/report (conflict 2026-11-21 device).txt", and for n > 1
// "dir/report (conflict 2026-11-21 device 2).txt".
func copyName(name, side string, now time.Time, n int) string {
	dir, base := path.Split(name)
	ext := path.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if stem == "" { // ".profile"
		stem, ext = base, ""
	}
	tag := side
	if n > 1 {
		tag = fmt.Sprintf("%s %d", side, n)
	}
	return fmt.Sprintf("%s%s (conflict %s %s)%s", dir, stem, now.Format("2006-01-02"), tag, ext)
}

// maxCopies bounds the names tried for a conflict copy.
const maxCopies = 100

// writeCopy writes a conflict copy under the first free copy name.
func writeCopy(name, side string, now time.Time, write func(name string) (Entry, error)) (string, Entry, error) {
	for n := 1; ; n++ {
		cn := copyName(name, side, now, n)
		e, err := write(cn)
		if err == nil || !errors.Is(err, ErrExists) || n == maxCopies {
			return cn, e, err
		}
	}
}
