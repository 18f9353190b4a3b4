package contacts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/versions"
	"github.com/cradle-sync/cradle/repl"
)

// Deferred uploads (DeferUploads): the cards the engine writes and deletes change the contacts
// file in memory and are listed, in order, in a journal in the state folder (device-pending.jsonl,
// one change a line, appended and synced at each Persist, before the engine commits the batch);
// Flush uploads the file once (deviceupload.go, with its own journal for an unplug during the
// upload) and only then removes the journal. Whoever opens the store next, this process or the
// next one after a kill, replays the journal over the file the device has (ensure): the store
// reports the cards the engine recorded, and the next Flush uploads them.
//
// A change is replayed only over the card it was made over: a card edited on the device since
// (on the phone, between a kill and the next session) is left as the device has it, and the
// card Cradle had written is kept in the versions area at the next Flush; a card deleted on the
// device since gets the written one back (an edit beats a delete); a card already as the change
// left it (the upload was done, the journal not removed yet) is left alone.

// pendingOp is one change of the contacts file not uploaded yet: the card UID written as Card
// (nil: removed), over the card whose units hash was Prev ("" when there was none), leaving one
// whose hash is Next.
type pendingOp struct {
	UID  string `json:"uid"`
	Card []byte `json:"card,omitempty"`
	Prev string `json:"prev,omitempty"`
	Next string `json:"next,omitempty"`
}

var _ repl.Flusher = (*DeviceFile)(nil)

// DeferUploads makes Write, WriteUnits and Delete change the file in memory and in a journal in
// the state folder, and Flush upload it once (repl.Flusher: the engine calls Persist before it
// commits each batch and Flush at the end of the session). Without it, each change uploads the
// whole file. A store without a state folder keeps writing through. Call it before the store is
// used.
func (s *DeviceFile) DeferUploads() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deferUploads = s.stateDir != ""
}

func (s *DeviceFile) pendingPath() string { return filepath.Join(s.stateDir, "device-pending.jsonl") }

// loadPending reads the journal of changes not uploaded yet, once per store. A line cut short
// (a Persist the process did not finish, whose batch the engine never committed) ends it. Called
// with s.mu held.
func (s *DeviceFile) loadPending() error {
	if s.pendingLoaded || s.stateDir == "" {
		return nil
	}
	data, err := os.ReadFile(s.pendingPath())
	if errors.Is(err, os.ErrNotExist) {
		s.pendingLoaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the journal of contacts not yet written to the device: %w", providers.MapFSError(err))
	}
	var ops []pendingOp
	torn := false
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var op pendingOp
		if i < 0 || json.Unmarshal(data[:i], &op) != nil || op.UID == "" {
			torn = true
			break
		}
		ops = append(ops, op)
		data = data[i+1:]
	}
	s.pending = append(ops, s.pending...)
	s.persisted = len(ops)
	if torn {
		// The next Persist writes the journal whole: nothing may follow a torn line.
		s.persisted = 0
		s.log("contacts: the journal %s ends with a change cut short; its %d whole changes are kept", s.pendingPath(), len(ops))
	}
	s.pendingLoaded = true
	return nil
}

// replay applies the pending changes to the file as just read, and notes those it had to leave
// out. Called with s.mu held.
func (s *DeviceFile) replay() {
	s.clashes = nil
	for _, op := range s.pending {
		if s.replayOne(op) {
			s.clashes = append(s.clashes, op)
		}
	}
}

// replayOne applies one pending change unless the device changed its card since it was made; it
// reports such a clash.
func (s *DeviceFile) replayOne(op pendingOp) (clash bool) {
	d := s.file.byHandle[op.UID]
	switch {
	case d != nil && d.bad != nil:
		return true // a card Cradle cannot read: left as it is
	case op.Card == nil && d == nil:
		return false // gone already
	case op.Card == nil && d.hash != op.Prev:
		return true // edited on the device since: the edit beats the delete
	case op.Card == nil:
		s.removeCard(d)
		return false
	case d != nil && d.hash == op.Next:
		return false // there already
	case d != nil && d.hash != op.Prev:
		return true // edited on the device since
	}
	if _, err := s.putCard(d, op.UID, op.Card); err != nil {
		s.log("contacts: a card waiting for the device in %s cannot be read (%v); it is left out", s.pendingPath(), err)
		return true
	}
	return false
}

// putCard puts raw, the card with UID uid, in place of target (nil: at the end of the file) in
// memory. Called with s.mu held.
func (s *DeviceFile) putCard(target *devSeg, uid string, raw []byte) (*devSeg, error) {
	c, err := parseCard(raw, 1)
	if err != nil {
		return nil, err
	}
	d := &devSeg{segment: segment{raw: raw, line: 1, card: true}, card: c, handle: uid, hash: unitsHash(c.units()), modTime: time.Now()}
	if rev, ok := parseREV(c.fields.Value("REV")); ok {
		d.modTime = rev
	}
	f := s.file
	if i := slices.Index(f.segs, target); target != nil && i >= 0 {
		f.segs[i] = d
	} else {
		f.segs = append(f.segs, d)
	}
	f.byHandle[uid] = d
	return d, nil
}

// removeCard removes d from the file in memory. Called with s.mu held.
func (s *DeviceFile) removeCard(d *devSeg) {
	s.file.segs = slices.DeleteFunc(s.file.segs, func(x *devSeg) bool { return x == d })
	delete(s.file.byHandle, d.handle)
}

// deferWrite puts the card in memory and lists the change for the journal. Called with s.mu held.
func (s *DeviceFile) deferWrite(target *devSeg, uid string, raw []byte) (*devSeg, error) {
	op := pendingOp{UID: uid, Card: raw}
	if target != nil {
		op.Prev = target.hash
	}
	d, err := s.putCard(target, uid, raw)
	if err != nil {
		return nil, fmt.Errorf("the card written cannot be read back: %w", err)
	}
	op.Next = d.hash
	s.pending = append(s.pending, op)
	return d, nil
}

// deferDelete removes the card in memory and lists the change for the journal. Called with s.mu
// held.
func (s *DeviceFile) deferDelete(d *devSeg) {
	s.removeCard(d)
	s.pending = append(s.pending, pendingOp{UID: d.handle, Prev: d.hash})
}

// Persist appends the changes made since the last Persist to the journal and syncs it
// (repl.Flusher): from then on they survive a kill or an unplug, and reach the device at the next
// Flush, this process's or the next one's.
func (s *DeviceFile) Persist(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.persisted == len(s.pending) {
		return nil
	}
	if err := s.ids.save(); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, op := range s.pending[s.persisted:] {
		line, err := json.Marshal(op)
		if err != nil {
			return fmt.Errorf("journal contact %q: %w", op.UID, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	path := s.pendingPath()
	if err := os.MkdirAll(s.stateDir, 0o700); err != nil {
		return fmt.Errorf("journal the contacts written: %w", providers.MapFSError(err))
	}
	var err error
	if s.persisted == 0 {
		err = fsutil.WriteFileAtomic(path, b.Bytes(), atomically(path, time.Time{}))
	} else {
		err = appendSync(path, b.Bytes())
	}
	if err != nil {
		s.persisted = 0 // a part may have been appended: the next Persist writes the journal whole
		return fmt.Errorf("journal the contacts written: %w", providers.MapFSError(err))
	}
	s.persisted = len(s.pending)
	return nil
}

// appendSync appends data to the existing file at path and syncs it.
func appendSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Flush uploads the file with every change not uploaded yet, once, then clears the journal
// (repl.Flusher). The cards of changes that could not be replayed (edited on the device since)
// are kept in the versions area first. On failure the changes stay in the journal for the next
// Flush.
func (s *DeviceFile) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	if err := s.ensure(ctx); err != nil { // the device's file as it is now, with the changes replayed
		return err
	}
	if err := s.keepClashes(ctx); err != nil {
		return err
	}
	data := joinPieces(s.pieces())
	if !bytes.Equal(data, s.base) || (!s.exists && len(data) > 0) {
		if err := s.upload(ctx, data); err != nil {
			s.loaded = false // read the device again before anything else
			return err
		}
		if err := s.ids.save(); err != nil {
			return err
		}
	}
	return s.clearPending()
}

// clearPending forgets the changes once the device has them. Called with s.mu held.
func (s *DeviceFile) clearPending() error {
	s.pending, s.persisted, s.clashes, s.clashKept = nil, 0, nil, nil
	if s.stateDir == "" {
		return nil
	}
	if err := os.Remove(s.pendingPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear the journal of contacts written: %w", providers.MapFSError(err))
	}
	return nil
}

// keepClashes keeps, in the versions area, the cards Cradle had written that the device's own
// edits replace. Called with s.mu held.
func (s *DeviceFile) keepClashes(ctx context.Context) error {
	for _, op := range s.clashes {
		key := op.UID + "\x00" + op.Next
		if op.Card == nil || s.clashKept[key] {
			continue
		}
		s.log("contacts file %s: contact %s changed on the device before Cradle's version of it was written there; the device's is kept, Cradle's is saved with the versions", s.where(), op.UID)
		if s.versions != nil {
			name := op.UID + ".vcf"
			if s.nameFor != nil {
				name = s.nameFor(op.UID)
			}
			if err := s.versions.Save(ctx, bytes.NewReader(op.Card), name, versions.ReasonOf(repl.CauseConflict), time.Now()); err != nil {
				return fmt.Errorf("keep contact %q before the device's version replaces it: %w", op.UID, providers.MapFSError(err))
			}
		}
		if s.clashKept == nil {
			s.clashKept = map[string]bool{}
		}
		s.clashKept[key] = true
	}
	return nil
}

// pieces returns the file in memory as pieces to write. Called with s.mu held.
func (s *DeviceFile) pieces() []piece {
	pieces := make([]piece, 0, len(s.file.segs))
	for _, d := range s.file.segs {
		pieces = append(pieces, d.piece())
	}
	return pieces
}
