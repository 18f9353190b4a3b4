package repl

import (
	"context"
	"fmt"
	"strings"
)

// Constraint conflicts: changes that each make sense alone but cannot both stand in one tree, as
// opposed to two edits of one content. A file and a folder that took one name (one side turned a
// file into a folder while the other edited it), and an item whose folder is a file on the
// destination (one side turned a folder into a file while the other changed something in it). No
// policy has to drop anything for them: the file moves aside under a conflict name, and the
// folder, which may hold other items, keeps the name.

// ReasonKindClash is the Decision.Reason when a file and a folder took one name: both kept.
const ReasonKindClash = "a file and a folder took one name"

// clearPath makes room for c on the destination: a live file of another item where c's name (for
// a folder) or one of its parent folders should be is moved aside (yieldToFolder).
func (a *applier) clearPath(ctx context.Context, c *record) error {
	if !c.live() {
		return nil
	}
	name := c.Name
	if c.Stamp.Kind != KindFolder {
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return nil
		}
		name = name[:i]
	}
	for {
		m, err := a.rd.byHandle(name)
		if err != nil {
			return err
		}
		if m.live() && m.Stamp.Kind == KindFile && m.GID != c.GID {
			if !a.retry {
				if sc, err := a.rs.byGID(m.GID); err != nil {
					return err
				} else if sc != nil && !a.rd.know.Contains(sc.Ver) {
					// The source has a change of that file still to come in this pass (it
					// moves it aside, say): wait for it, and look again on the retry.
					return a.dstErr("write", c.Name, fmt.Errorf("%q is a file here, and changes later in this session: %w", m.Name, ErrExists))
				}
			}
			if err := a.yieldToFolder(ctx, m); err != nil {
				return err
			}
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return nil
		}
		name = name[:i]
	}
}

// yieldToFolder moves the destination's file f aside: its content is saved under a conflict name
// as a new item, and f becomes a folder, so that items the source holds in a folder of that name
// can be written. f's new version propagates the folder to the other side, the copy the file.
func (a *applier) yieldToFolder(ctx context.Context, f *record) error {
	a.trace("  the file %q yields its name to a folder", f.Name)
	now := a.now()
	name, done, err := a.findCopy(ctx, f.Name, a.dst().Name, now, f.Stamp, a.dst().Store, f.Handle)
	if err != nil {
		return err
	}
	if !done {
		spool, err := a.spool(ctx, f)
		if err != nil {
			return err
		}
		defer spool.close()
		var e Entry
		name, e, err = writeCopy(f.Name, a.dst().Name, now, func(n string) (Entry, error) {
			return a.writeFrom(ctx, f, nil, n, nil, CauseNone, spool.open, nil)
		})
		if err != nil {
			return err
		}
		if err := a.newItem(ctx, e, name); err != nil {
			return err
		}
	}
	stamp := f.Stamp
	e, err := a.dst().Store.Write(ctx, WriteRequest{Handle: f.Handle, Expected: &stamp, Name: f.Name, Kind: KindFolder})
	if err != nil {
		return a.dstErr("put a folder in place of", f.Name, err)
	}
	a.counts().Updated++ // the file became a folder here, as a forecast lists it
	v := a.rd.mint()
	rec := *f
	rec.Ver, rec.CVer, rec.V, rec.Units = v, v, f.V.With(v), nil
	a.written = writing{}
	if err := a.fill(ctx, &rec, e, nil); err != nil {
		return err
	}
	a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: f.Name, Rule: a.keptRule(), Kept: a.src().Name,
		Lost: a.dst().Name, Copy: name, Reason: ReasonKindClash})
	return a.rd.put(f, &rec)
}
