package repl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Intents protect stores whose writes are not atomic (Atomicity): before a batch writes to such a
// store, the engine records which names it may write and how big each item will be; the batch's
// commit clears them. An intent left behind means the session stopped mid-batch, so the item at
// that name may be partial: the next session removes it quietly (it is neither a user's delete
// nor an edit, and nothing propagates) and the change, which was never learned, is sent again.

type intent struct {
	name  string
	size  int64
	prior string // the item's handle before the write (an update or a move), or ""
}

func (hf *HandleFile) writeIntents(src, dst string, changes []changeRef) error {
	return hf.update(func(tx *bolt.Tx) error {
		rd, err := hf.openReplica(tx, dst, true)
		if err != nil {
			return err
		}
		for _, c := range changes {
			if c.tomb || c.kind == KindFolder {
				continue
			}
			var prior string
			if l, err := rd.byGID(c.gid); err != nil {
				return err
			} else if l.live() && !l.Missing {
				prior = l.Handle
			}
			v := appendVarint(nil, c.size)
			v = appendString(v, prior)
			if err := rd.i.Put([]byte(c.name), v); err != nil {
				return err
			}
		}
		return rd.save()
	})
}

// clearIntents drops the intents, except those of keep.
func (r *rtx) clearIntents(keep map[string]bool) error {
	var drop [][]byte
	if err := r.i.ForEach(func(k, _ []byte) error {
		if !keep[string(k)] {
			drop = append(drop, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range drop {
		if err := r.i.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// recoverIntents removes what unfinished writes may have left in side's store.
func (hf *HandleFile) recoverIntents(ctx context.Context, side Side) error {
	var intents []intent
	err := hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if errors.Is(err, ErrUnknownReplica) {
			return nil
		}
		if err != nil {
			return err
		}
		return r.i.ForEach(func(k, v []byte) error {
			d := decoder{b: v}
			in := intent{name: string(k), size: d.varint(), prior: d.string()}
			if d.err != nil {
				return fmt.Errorf("replica %q, intent %q: %w", side.Name, k, d.err)
			}
			intents = append(intents, in)
			return nil
		})
	})
	if err != nil || len(intents) == 0 {
		return err
	}
	lookup, err := lookupFunc(ctx, side)
	if err != nil {
		return err
	}
	var missing []string // handles whose records must be marked Missing
	for _, in := range intents {
		var rec *record
		if err := hf.view(func(tx *bolt.Tx) error {
			r, err := hf.openReplica(tx, side.Name, false)
			if err != nil {
				return err
			}
			rec, err = r.byHandle(in.name)
			return err
		}); err != nil {
			return err
		}
		e, ok, err := lookup(in.name)
		if err != nil {
			return err
		}
		switch {
		case ok && e.Kind == KindFile && rec != nil && !rec.Missing && !StampChanged(rec.Stamp, e):
			// Untouched: the batch never reached it.
		case ok && e.Kind == KindFile && e.Size < in.size:
			if err := side.Store.Delete(ctx, in.name, e.Stamp()); err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("remove the partial %q that an interrupted sync left in %s: %w", in.name, side.Name, err)
			}
			if rec != nil {
				missing = append(missing, in.name)
			}
		case !ok && rec != nil && !rec.Missing:
			missing = append(missing, in.name)
		}
		if in.prior != "" && in.prior != in.name {
			if _, ok, err := lookup(in.prior); err != nil {
				return err
			} else if !ok {
				missing = append(missing, in.prior)
			}
		}
	}
	return hf.update(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if err != nil {
			return err
		}
		for _, h := range missing {
			rec, err := r.byHandle(h)
			if err != nil {
				return err
			}
			if rec == nil || rec.Missing {
				continue
			}
			m := *rec
			m.Missing = true
			if err := r.put(rec, &m); err != nil {
				return err
			}
		}
		if err := r.clearIntents(nil); err != nil {
			return err
		}
		return r.save()
	})
}

// lookupFunc returns a way to look one handle up: Stat when the store has it, else one
// enumeration.
func lookupFunc(ctx context.Context, side Side) (func(string) (Entry, bool, error), error) {
	if st, ok := side.Store.(Stater); ok {
		return func(h string) (Entry, bool, error) {
			e, err := st.Stat(ctx, h)
			if errors.Is(err, ErrNotFound) {
				return Entry{}, false, nil
			}
			if err != nil {
				return Entry{}, false, fmt.Errorf("look at %q in %s: %w", h, side.Name, err)
			}
			return e, true, nil
		}, nil
	}
	it, err := side.Store.Enumerate(ctx)
	if err != nil {
		return nil, fmt.Errorf("enumerate %s: %w", side.Name, err)
	}
	defer it.Close()
	all := map[string]Entry{}
	for {
		e, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("enumerate %s: %w", side.Name, err)
		}
		all[e.Handle] = e
	}
	return func(h string) (Entry, bool, error) {
		e, ok := all[h]
		return e, ok, nil
	}, nil
}
