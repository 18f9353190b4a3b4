package repl

import (
	"context"
	"slices"
	"strings"
)

// mergeUnits merges two concurrent versions of an item unit by unit: a unit changed on one side
// only is taken from that side; a unit changed on both sides is a conflict under the policy.
func (a *applier) mergeUnits(ctx context.Context, c, l *record) error {
	su := a.src().Store.(UnitStore)
	du := a.dst().Store.(UnitStore)
	cu, err := su.ReadUnits(ctx, c.Handle)
	if err != nil {
		return a.srcErr("read units of", c.Handle, err)
	}
	lu, err := du.ReadUnits(ctx, l.Handle)
	if err != nil {
		return a.dstErr("read units of", l.Handle, err)
	}
	names := map[string]bool{}
	for _, u := range c.Units {
		names[u.Name] = true
	}
	for _, u := range l.Units {
		names[u.Name] = true
	}
	type pick struct {
		fromSrc bool
		rec     unitRec
	}
	picks := map[string]pick{}
	var clashes []string
	for name := range names {
		lr, lok := l.unit(name)
		cr, cok := c.unit(name)
		lChanged := lok && (a.across || !c.V.Contains(lr.Ver))
		cChanged := cok && (a.across || !l.V.Contains(cr.Ver))
		switch {
		case lChanged && cChanged && !(lr.Deleted == cr.Deleted && (lr.Deleted || lr.Hash == cr.Hash)):
			clashes = append(clashes, name)
		case cChanged:
			picks[name] = pick{true, cr}
		case lok:
			picks[name] = pick{false, lr}
		default:
			picks[name] = pick{true, cr}
		}
	}
	if len(clashes) > 0 {
		slices.Sort(clashes)
		switch a.p.s.cfg.Policy.Rule {
		case Ask:
			return a.recordConflict(c, l)
		case KeepBoth:
			return a.keepBoth(ctx, c, l, "policy")
		}
		fromSrc := !a.localWins(c, l)
		for _, name := range clashes {
			if fromSrc {
				cr, _ := c.unit(name)
				picks[name] = pick{true, cr}
			} else {
				lr, _ := l.unit(name)
				picks[name] = pick{false, lr}
			}
		}
		kept, lost, dropped := a.dst().Name, a.src().Name, state(c)
		if fromSrc {
			kept, lost, dropped = lost, kept, state(l)
		}
		a.p.s.rep.Decisions = append(a.p.s.rep.Decisions, Decision{Name: l.Name, Rule: a.p.s.cfg.Policy.Rule,
			Kept: kept, Lost: lost, Reason: "policy (fields " + strings.Join(clashes, ", ") + ")", Dropped: dropped})
	}
	merged := Units{}
	var recs []unitRec
	changedHere := false
	for name, pk := range picks {
		recs = append(recs, pk.rec)
		if pk.rec.Deleted {
			if _, ok := lu[name]; ok {
				changedHere = true
			}
			continue
		}
		val, ok := lu[name]
		if pk.fromSrc {
			sv, sok := cu[name]
			if !sok {
				continue
			}
			if !ok || string(sv) != string(val) {
				changedHere = true
			}
			val = sv
		} else if !ok {
			continue
		}
		merged[name] = val
	}
	slices.SortFunc(recs, func(x, y unitRec) int { return strings.Compare(x.Name, y.Name) })
	v := a.rd.mint()
	rec := *l
	rec.Ver, rec.V = v, a.joinV(c, l).With(v)
	if !changedHere {
		rec.Units = recs
		return a.rd.put(l, &rec)
	}
	req := WriteRequest{Handle: l.Handle, Name: l.Name, Kind: KindFile, Size: -1, ModTime: a.now(), Cause: a.cause}
	stamp := l.Stamp
	req.Expected = &stamp
	e, err := du.WriteUnits(ctx, req, merged)
	if err != nil {
		return a.dstErr("write", l.Name, err)
	}
	rec.CVer = v
	if err := a.fill(ctx, &rec, e, recs); err != nil {
		return err
	}
	a.counts().Updated++
	return a.rd.put(l, &rec)
}
