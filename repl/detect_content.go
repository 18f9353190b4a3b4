package repl

// What detection asks of content where a stamp cannot tell: renames proved by content, touched
// and racily clean items, files moved over others.

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// overwriteSig is what a file moved over another leaves of the other: its size and time.
type overwriteSig struct{ size, mod int64 }

// overwriteSigs returns the signatures of the deleted files whose content may have been moved
// over an item with an unchanged stamp.
func overwriteSigs(f *found) map[overwriteSig]bool {
	gone := map[overwriteSig]bool{}
	for _, d := range f.deleted {
		if d.Stamp.Kind == KindFile && d.Stamp.Size > 0 {
			gone[overwriteSig{d.Stamp.Size, d.Stamp.ModTime}] = true
		}
	}
	return gone
}

// checkOverwrites sends to the content check the unchanged items whose stamp is a deleted file's:
// a file moved over another (mv -f, a save through a temporary file) with the same size and time
// (two files saved in one second) leaves the target's stamp as it was, and only its content shows
// that the deleted file's content is there now. After a full pass, the unchanged items are the
// live records that nothing found changed, gone, new or ignored, and their entries are what the
// records say (their stamps did not change).
func checkOverwrites(r *rtx, f *found, ignored map[string]struct{}) error {
	gone := overwriteSigs(f)
	if len(gone) == 0 {
		return nil
	}
	looked := map[string]bool{}
	for _, list := range [][]Entry{f.created, f.changed, f.verify, f.refreshed} {
		for _, e := range list {
			looked[e.Handle] = true
		}
	}
	for _, d := range f.deleted {
		looked[d.Handle] = true
	}
	for h := range ignored {
		looked[h] = true // not replicated, or left for the next session with its intent
	}
	c := r.h.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		p, ok := peekStamp(v)
		if !ok {
			return fmt.Errorf("replica %q, handle %q: bad stamp: %w", r.name, k, errMalformed)
		}
		if p.kind != KindFile || !gone[overwriteSig{p.size, p.mod}] || looked[string(k)] {
			continue
		}
		e := Entry{Handle: string(k), Kind: KindFile, Size: p.size, Hash: string(p.hash)}
		if p.mod != 0 {
			e.ModTime = time.Unix(0, p.mod)
		}
		f.verify = append(f.verify, e)
	}
	return nil
}

// checkUnchanged is checkOverwrites for an incremental pass: the unchanged entries are the
// notified ones.
func checkUnchanged(f *found, unchanged []Entry) {
	gone := overwriteSigs(f)
	if len(gone) == 0 {
		return
	}
	for _, e := range unchanged {
		if s := e.Stamp(); e.Kind == KindFile && gone[overwriteSig{s.Size, s.ModTime}] {
			f.verify = append(f.verify, e)
		}
	}
}

// contentOf is what detection learned of a new or changed item's content: its hash, when read
// and vouched for (readSum).
type contentOf struct {
	sum [32]byte
	ok  bool
}

// pairRenames turns a deleted record and a created entry that hold the same content into a
// rename, so the item keeps its identity (an edit made meanwhile on the other side follows it to
// its new name). Content is the only proof: the created item's hash (read now, or the store's own
// hash) must be the deleted record's, and the pairing unique on both sides. A size and a time
// prove nothing: an unrelated file of the same size and time is a new file. The hashes read are
// kept in sums for the created items' records.
func pairRenames(ctx context.Context, side Side, f *found, sums map[string]contentOf) error {
	if len(f.deleted) == 0 || len(f.created)+len(f.changed) == 0 {
		return nil
	}
	sizes := map[int64]bool{}
	for _, rec := range f.deleted {
		if rec.Stamp.Kind == KindFile && rec.Stamp.Size > 0 && (rec.hasSum() || rec.Stamp.Hash != "") {
			sizes[rec.Stamp.Size] = true
		}
	}
	if len(sizes) == 0 {
		return nil
	}
	// The content of each deleted record, and of each created entry of a size some deleted one
	// had: "s" and the engine's hash, or "h" and the store's own.
	gone := map[string][]int{}
	for i, rec := range f.deleted {
		if rec.Stamp.Kind != KindFile || rec.Stamp.Size <= 0 {
			continue
		}
		if rec.hasSum() {
			gone["s"+string(rec.Sum[:])] = append(gone["s"+string(rec.Sum[:])], i)
		}
		if rec.Stamp.Hash != "" {
			gone["h"+rec.Stamp.Hash] = append(gone["h"+rec.Stamp.Hash], i)
		}
	}
	born := map[string][]int{}
	for i, e := range f.created {
		if e.Kind != KindFile || !sizes[e.Size] {
			continue
		}
		if e.Hash != "" {
			born["h"+e.Hash] = append(born["h"+e.Hash], i)
		}
		sum, ok, err := readSum(ctx, side.Store, e)
		if errors.Is(err, ErrNotFound) {
			continue // gone again already: the next pass sees it
		}
		if err != nil {
			return fmt.Errorf("detect changes in %s: read %q: %w", side.Name, e.Handle, err)
		}
		if ok {
			sums[e.Handle] = contentOf{sum: sum, ok: true}
			born["s"+string(sum[:])] = append(born["s"+string(sum[:])], i)
		}
	}
	pairedDel := map[int]bool{}
	pairedNew := map[int]bool{}
	for k, bi := range born {
		di := gone[k]
		if len(bi) != 1 || len(di) != 1 || pairedDel[di[0]] || pairedNew[bi[0]] {
			continue // none, or ambiguous (a copy of one file, two files alike): a delete and a create
		}
		rec, e := f.deleted[di[0]], f.created[bi[0]]
		if rec.Stamp.Size != e.Size {
			continue
		}
		f.renamed = append(f.renamed, renaming{old: rec, e: e})
		pairedDel[di[0]] = true
		pairedNew[bi[0]] = true
	}
	// A changed file whose content is a deleted file's (and no other's): that file was moved
	// over it.
	over := map[string][]int{}
	for i, e := range f.changed {
		if e.Kind != KindFile || !sizes[e.Size] {
			continue
		}
		if e.Hash != "" {
			over["h"+e.Hash] = append(over["h"+e.Hash], i)
			continue
		}
		sum, ok, err := readSum(ctx, side.Store, e)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("detect changes in %s: read %q: %w", side.Name, e.Handle, err)
		}
		if ok {
			sums[e.Handle] = contentOf{sum: sum, ok: true}
			over["s"+string(sum[:])] = append(over["s"+string(sum[:])], i)
		}
	}
	pairedChanged := map[int]bool{}
	for k, ci := range over {
		di := gone[k]
		if len(ci) != 1 || len(di) != 1 || pairedDel[di[0]] || len(born[k]) > 0 {
			continue
		}
		rec, e := f.deleted[di[0]], f.changed[ci[0]]
		if rec.Stamp.Size != e.Size {
			continue
		}
		f.overwrote = append(f.overwrote, renaming{old: rec, e: e})
		pairedDel[di[0]] = true
		pairedChanged[ci[0]] = true
	}
	if len(pairedChanged) > 0 {
		ch := f.changed[:0]
		for i, e := range f.changed {
			if !pairedChanged[i] {
				ch = append(ch, e)
			}
		}
		f.changed = ch
	}
	if len(f.renamed) == 0 && len(f.overwrote) == 0 {
		return nil
	}
	del := f.deleted[:0]
	for i, rec := range f.deleted {
		if !pairedDel[i] {
			del = append(del, rec)
		}
	}
	f.deleted = del
	cre := f.created[:0]
	for i, e := range f.created {
		if !pairedNew[i] {
			cre = append(cre, e)
		}
	}
	f.created = cre
	return nil
}

// checkContent asks the content of the items whose stamp changed over the same size, and of the
// racily clean ones: a stamp that changed over the same content (a touch, a copy with the same
// bytes) is no edit, and a racy item whose content changed is one even though its stamp did not.
// Items found unchanged move to f.refreshed; hashes read are kept in sums.
func (hf *HandleFile) checkContent(ctx context.Context, side Side, f *found, sums map[string]contentOf) error {
	if len(f.changed) == 0 && len(f.verify) == 0 {
		return nil
	}
	olds := map[string]*record{}
	err := hf.view(func(tx *bolt.Tx) error {
		r, err := hf.openReplica(tx, side.Name, false)
		if err != nil {
			return err
		}
		for _, list := range [][]Entry{f.changed, f.verify} {
			for _, e := range list {
				rec, err := r.byHandle(e.Handle)
				if err != nil {
					return err
				}
				if rec != nil {
					olds[e.Handle] = rec
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	read := func(e Entry) (contentOf, bool, error) {
		sum, ok, err := readSum(ctx, side.Store, e)
		if errors.Is(err, ErrNotFound) {
			return contentOf{}, false, nil
		}
		if err != nil {
			return contentOf{}, false, fmt.Errorf("detect changes in %s: read %q: %w", side.Name, e.Handle, err)
		}
		return contentOf{sum: sum, ok: ok}, true, nil
	}
	movedHere := map[[32]byte]bool{} // contents of deleted files: one found under another name moved there
	for _, d := range f.deleted {
		if d.hasSum() {
			movedHere[d.Sum] = true
		}
	}
	changed := f.changed[:0]
	for _, e := range f.changed {
		old := olds[e.Handle]
		if old == nil || e.Hash != "" || e.Kind != KindFile || old.Stamp.Kind != KindFile || e.Size != old.Stamp.Size || !old.hasSum() {
			changed = append(changed, e)
			continue
		}
		c, found, err := read(e)
		if err != nil {
			return err
		}
		if found && c.ok {
			sums[e.Handle] = c
			if c.sum == old.Sum {
				f.refreshed = append(f.refreshed, e)
				continue
			}
		}
		changed = append(changed, e)
	}
	f.changed = changed
	for _, e := range f.verify {
		old := olds[e.Handle]
		if old == nil {
			continue
		}
		if e.Hash != "" && e.Hash == old.Stamp.Hash {
			f.refreshed = append(f.refreshed, e) // the store's own hash vouches for the content
			continue
		}
		c, found, err := read(e)
		if err != nil {
			return err
		}
		if !found {
			continue // gone: the next pass sees it
		}
		if c.ok {
			sums[e.Handle] = c
		}
		if c.ok && (c.sum == old.Sum || !old.hasSum() && !movedHere[c.sum]) {
			// The same content; or no hash was ever known, which means its bytes never left
			// this store (a transfer, a comparison would have kept one): whatever it holds now
			// is what a transfer will send, unless it is a deleted file's, moved over it.
			f.refreshed = append(f.refreshed, e)
			continue
		}
		// Another content under the same stamp, or a content that cannot be vouched for (it
		// is changing now): an edit.
		f.changed = append(f.changed, e)
	}
	f.verify = nil
	return nil
}
