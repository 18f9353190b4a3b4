package repl

// Recording what detection found: new versions, renames and tombstones, and the stamps, hashes
// and racy flags of the records.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// prepared is what record needs from the store for a new or changed item, fetched before the
// write transaction so no store call runs inside it.
type prepared struct {
	key   string
	units Units
}

func prepare(ctx context.Context, side Side, e Entry) (prepared, error) {
	var p prepared
	k, err := side.Store.NaturalKey(ctx, e)
	if err != nil {
		return p, fmt.Errorf("natural key of %q in %s: %w", e.Handle, side.Name, err)
	}
	p.key = k
	if us, ok := side.Store.(UnitStore); ok && e.Kind == KindFile {
		if p.units, err = us.ReadUnits(ctx, e.Handle); err != nil {
			return p, fmt.Errorf("read units of %q in %s: %w", e.Handle, side.Name, err)
		}
		if p.units == nil {
			p.units = Units{}
		}
	}
	return p, nil
}

// record writes what detection found: new versions, renames and tombstones, in one transaction.
// It first asks the content where the stamps cannot tell (renames, touches, racy items).
func (hf *HandleFile) record(ctx context.Context, side Side, f *found, rep *DetectReport) error {
	rc := &recorder{sums: map[string]contentOf{}, prep: map[string]prepared{}, taken: f.taken, g: f.g, rep: rep,
		now: time.Now().UnixNano()}
	if err := pairRenames(ctx, side, f, rc.sums); err != nil {
		return err
	}
	if err := hf.checkContent(ctx, side, f, rc.sums); err != nil {
		return err
	}
	// Versions are minted in handle order: a pass sends live items in name order, so the
	// destination learns them in tick order and its knowledge stays a plain vector.
	slices.SortFunc(f.created, compareEntries)
	slices.SortFunc(f.changed, compareEntries)
	if len(f.created)+len(f.changed)+len(f.deleted)+len(f.renamed)+len(f.overwrote)+len(f.refreshed) == 0 {
		return nil
	}
	for _, list := range [][]Entry{f.created, f.changed} {
		for _, e := range list {
			p, err := prepare(ctx, side, e)
			if errors.Is(err, ErrNotFound) {
				continue // gone again already: the next pass sees it
			}
			if err != nil {
				return err
			}
			rc.prep[e.Handle] = p
		}
	}
	for _, rn := range append(slices.Clone(f.renamed), f.overwrote...) {
		p, err := prepare(ctx, side, rn.e)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err == nil {
			rc.prep[rn.e.Handle] = p
		}
	}
	type op struct {
		created, changed, refreshed *Entry
		renamed, overwrote          *renaming
		deleted                     *record
	}
	ops := make([]op, 0, len(f.created)+len(f.changed)+len(f.renamed)+len(f.deleted)+len(f.refreshed))
	for i := range f.created {
		ops = append(ops, op{created: &f.created[i]})
	}
	for i := range f.changed {
		ops = append(ops, op{changed: &f.changed[i]})
	}
	for i := range f.refreshed {
		ops = append(ops, op{refreshed: &f.refreshed[i]})
	}
	for i := range f.renamed {
		ops = append(ops, op{renamed: &f.renamed[i]})
	}
	for i := range f.overwrote {
		ops = append(ops, op{overwrote: &f.overwrote[i]})
	}
	for _, d := range f.deleted {
		ops = append(ops, op{deleted: d})
	}
	// Committed in chunks: a transaction that grows without bound makes bbolt slow, and every
	// chunk is consistent on its own (deletions were inferred before the first one).
	const chunk = 5000
	for start := 0; start < len(ops); start += chunk {
		part := ops[start:min(start+chunk, len(ops))]
		err := hf.update(func(tx *bolt.Tx) error {
			r, err := hf.openReplica(tx, side.Name, true)
			if err != nil {
				return err
			}
			for _, o := range part {
				var err error
				switch {
				case o.created != nil:
					err = rc.created(r, *o.created)
				case o.changed != nil:
					err = rc.changed(r, *o.changed)
				case o.refreshed != nil:
					err = rc.refreshed(r, *o.refreshed)
				case o.renamed != nil:
					err = rc.renamed(r, *o.renamed)
				case o.overwrote != nil:
					err = rc.overwrote(r, *o.overwrote)
				default:
					err = recordDeleted(r, o.deleted, rc.now, rep)
				}
				if err != nil {
					return err
				}
			}
			return r.save()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// recorder records one detection's findings.
type recorder struct {
	prep  map[string]prepared
	sums  map[string]contentOf
	now   int64         // Unix nanoseconds, the time of the changes
	taken time.Time     // the store's time when it was looked at
	g     time.Duration // the store's time granularity
	rep   *DetectReport
}

// content sets what is known of e's content in rec: its hash, when it was read, and whether the
// stamp is racily clean.
func (rc *recorder) content(rec *record, e Entry) {
	rec.Stamp = e.Stamp()
	rec.Sum = [32]byte{}
	if c := rc.sums[e.Handle]; c.ok {
		rec.Sum = c.sum
	}
	rec.Racy = racyAt(e, rc.taken, rc.g)
}

func (rc *recorder) created(r *rtx, e Entry) error {
	p, ok := rc.prep[e.Handle]
	if !ok {
		return nil
	}
	if old, err := r.byHandle(e.Handle); err != nil {
		return err
	} else if old != nil {
		return fmt.Errorf("replica %q: new item %q already has a record: %w", r.name, e.Handle, errMalformed)
	}
	v := r.mint()
	rec := &record{GID: v, Ver: v, CVer: v, NVer: v, V: Vector{v}, Handle: e.Handle, Name: e.Handle, Key: p.key,
		When: rc.now, Units: unitsFrom(nil, p.units, v)}
	rc.content(rec, e)
	if err := r.put(nil, rec); err != nil {
		return err
	}
	rc.rep.Created++
	return nil
}

func (rc *recorder) changed(r *rtx, e Entry) error {
	p, ok := rc.prep[e.Handle]
	if !ok {
		return nil
	}
	old, err := r.byHandle(e.Handle)
	if err != nil || old == nil {
		return err
	}
	v := r.mint()
	rec := *old
	rec.Ver, rec.V, rec.When = v, old.V.With(v), rc.now
	s := e.Stamp()
	sameContent := s.Kind == old.Stamp.Kind && s.Hash != "" && s.Hash == old.Stamp.Hash
	if p.units != nil && old.Units != nil && s.Kind == old.Stamp.Kind {
		u := unitsFrom(old.Units, p.units, v)
		sameContent = sameUnits(old.Units, u)
		rec.Units = u
	} else {
		rec.Units = unitsFrom(nil, p.units, v)
	}
	if !sameContent {
		rec.CVer = v
	}
	rec.Key = p.key
	rc.content(&rec, e)
	if err := r.put(old, &rec); err != nil {
		return err
	}
	rc.rep.Changed++
	return nil
}

// refreshed records a new stamp over the same content: no version, nothing to send.
func (rc *recorder) refreshed(r *rtx, e Entry) error {
	old, err := r.byHandle(e.Handle)
	if err != nil || old == nil || old.Tomb || old.Missing {
		return err
	}
	rec := *old
	rc.content(&rec, e)
	if !rec.hasSum() {
		rec.Sum = old.Sum
	}
	if rec.Stamp == old.Stamp && rec.Sum == old.Sum && rec.Racy == old.Racy {
		return nil
	}
	return r.put(old, &rec)
}

func (rc *recorder) renamed(r *rtx, rn renaming) error {
	old, err := r.byGID(rn.old.GID)
	if err != nil {
		return err
	}
	if old == nil || old.Tomb || old.Missing || old.Handle != rn.old.Handle {
		return nil
	}
	p, ok := rc.prep[rn.e.Handle]
	if !ok {
		return recordDeleted(r, old, rc.now, rc.rep) // the new name vanished too: an ordinary delete
	}
	v := r.mint()
	rec := *old
	rec.Ver, rec.NVer, rec.V, rec.When = v, v, old.V.With(v), rc.now
	rec.Handle, rec.Name, rec.Key = rn.e.Handle, rn.e.Handle, p.key
	rc.content(&rec, rn.e)
	if !rec.hasSum() {
		rec.Sum = old.Sum // the same content, proved by the store's hash
	}
	if p.units != nil {
		rec.Units = unitsFrom(old.Units, p.units, v)
	}
	if err := r.put(old, &rec); err != nil {
		return err
	}
	rc.rep.Renamed++
	return nil
}

// overwrote records a file moved over another: the other (at rn.e's handle) is deleted, and the
// moved one renamed there.
func (rc *recorder) overwrote(r *rtx, rn renaming) error {
	target, err := r.byHandle(rn.e.Handle)
	if err != nil {
		return err
	}
	if target != nil {
		if err := recordDeleted(r, target, rc.now, rc.rep); err != nil {
			return err
		}
	}
	return rc.renamed(r, rn)
}

func recordDeleted(r *rtx, d *record, now int64, rep *DetectReport) error {
	old, err := r.byGID(d.GID)
	if err != nil {
		return err
	}
	if old == nil || old.Tomb || old.Missing || old.Handle != d.Handle {
		return nil
	}
	v := r.mint()
	rec := *old
	rec.Tomb, rec.Ver, rec.V, rec.When = true, v, old.V.With(v), now
	if err := r.put(old, &rec); err != nil {
		return err
	}
	rep.Deleted++
	return nil
}

// unitsFrom returns unit records for the values now in an item: units whose value is unchanged
// keep their record, changed or new ones get version v, and units that disappeared stay as
// deleted markers with version v. old is nil for an item seen for the first time; now nil means
// the store has no units.
func unitsFrom(old []unitRec, now Units, v Version) []unitRec {
	if now == nil {
		return nil
	}
	out := make([]unitRec, 0, len(now))
	for name, val := range now {
		h := unitHash(val)
		u := unitRec{Name: name, Ver: v, Hash: h}
		if i, ok := slices.BinarySearchFunc(old, name, func(u unitRec, n string) int { return strings.Compare(u.Name, n) }); ok {
			if o := old[i]; !o.Deleted && o.Hash == h {
				u = o
			}
		}
		out = append(out, u)
	}
	for _, o := range old {
		if _, ok := now[o.Name]; !ok {
			if !o.Deleted {
				o = unitRec{Name: o.Name, Ver: v, Deleted: true}
			}
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b unitRec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func sameUnits(a, b []unitRec) bool {
	return slices.EqualFunc(a, b, func(x, y unitRec) bool {
		return x.Name == y.Name && x.Deleted == y.Deleted && (x.Deleted || x.Hash == y.Hash)
	})
}
