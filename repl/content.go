package repl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Content identity. A stamp (size, modification time) says whether to look at an item; its
// content says what changed. The engine keeps the SHA-256 of an item's content in its record
// (record.Sum) whenever it has the bytes anyway: while it streams a transfer, when it compares two
// items, when it checks a touched or racily clean item. Every decision that could lose data asks
// the content: a stamp that changed over the same content is no edit, a new item is taken for a
// renamed one only when its content is the deleted one's, and a copy whose source changed while
// it was read is not written.

// Clock is a Store that says how it keeps modification times. A Store without it is taken to keep
// them to DefaultGranularity on the computer's clock.
type Clock interface {
	// TimeGranularity is the step of the modification times the store keeps: a second for MTP,
	// two seconds for FAT, 0 for nanoseconds. An entry without a time (ModTime zero) is always
	// checked by its content.
	TimeGranularity() time.Duration
	// Now is the current time on the clock that stamps the store's items.
	Now() time.Time
}

// DefaultGranularity is the time granularity of a Store that does not say (Clock).
const DefaultGranularity = time.Second

// racySlack widens the racy window for clocks that are a little off (a device's clock against
// the computer's).
const racySlack = time.Second

// clockOf returns a store's time granularity and current time.
func clockOf(s Store) (time.Duration, time.Time) {
	if c, ok := s.(Clock); ok {
		return max(c.TimeGranularity(), 0), c.Now()
	}
	return DefaultGranularity, time.Now()
}

// racyAt tells whether e's stamp, taken at the store's time taken, is racily clean: a write in
// the same tick of the store's clock would keep its size and time, so only the content can tell
// the next detection whether it changed (git's racily clean index entries). An entry without a
// time is racy for ever: only content can tell.
func racyAt(e Entry, taken time.Time, g time.Duration) bool {
	if e.Kind != KindFile {
		return false
	}
	if e.ModTime.IsZero() {
		return true
	}
	return e.ModTime.Add(g + racySlack).After(taken)
}

// errSourceChanged is wrapped (with ErrChanged) by a copy whose source no longer holds what
// detection recorded.
var errSourceChanged = errors.New("the source changed after it was looked at; it is copied at the next sync")

// readSum reads the item e describes and returns the SHA-256 of its content. ok is false when the
// content read cannot be vouched for as the content of e's stamp: the item changed while or
// after it was read (the size read differs, or a Stat afterwards shows another stamp), or the
// store cannot be asked again (no Stater). A gone item is ErrNotFound.
func readSum(ctx context.Context, st Store, e Entry) (sum [32]byte, ok bool, err error) {
	rc, err := st.Open(ctx, e.Handle)
	if err != nil {
		return sum, false, err
	}
	h := sha256.New()
	n, err := io.Copy(h, rc)
	rc.Close()
	if errors.Is(err, ErrChanged) {
		return sum, false, nil
	}
	if err != nil {
		return sum, false, err
	}
	if n != e.Size {
		return sum, false, nil
	}
	sum = [32]byte(h.Sum(nil))
	stater, canStat := st.(Stater)
	if !canStat {
		return sum, false, nil
	}
	now, err := stater.Stat(ctx, e.Handle)
	if errors.Is(err, ErrNotFound) {
		return sum, false, nil
	}
	if err != nil {
		return sum, false, err
	}
	return sum, !StampChanged(e.Stamp(), now), nil
}

// sourceReader is the stream a transfer reads from the source store. It counts the bytes for
// progress, hashes them, and vouches that they are the content detection recorded: more bytes
// than the recorded size, fewer, a hash that differs from a recorded one, or a stamp that changed
// by the time the last byte is read fail the read (with ErrChanged) before the destination store
// has the whole content, so no torn or newer copy is written under the item's name; the item
// stays pending for the next session.
type sourceReader struct {
	r     io.Reader
	s     *session
	ctx   context.Context
	store Store
	rec   *record // the source's record: its handle, stamp and sum
	h     hash.Hash
	n     int64
	err   error // the source's own error, to blame the right store
	ok    bool  // the whole content was read and vouched for
	// unlike is set when the content read differs from the recorded hash: an edit the stamp
	// may not show (same size, same time), which detection must look at by content next time.
	unlike bool
}

func newSourceReader(ctx context.Context, s *session, store Store, rec *record, r io.Reader) *sourceReader {
	return &sourceReader{r: r, s: s, ctx: ctx, store: store, rec: rec, h: sha256.New()}
}

func (c *sourceReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.ok {
		// Everything announced was delivered; the source must end here.
		n, err := c.r.Read(p[:min(len(p), 1)])
		if n > 0 {
			return 0, c.fail(fmt.Errorf("%q grew while it was copied: %w", c.rec.Handle, ErrChanged))
		}
		if err != nil && err != io.EOF {
			return 0, c.fail(err)
		}
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	if int64(n) > c.rec.Stamp.Size-c.n {
		return 0, c.fail(fmt.Errorf("%q grew while it was copied: %w", c.rec.Handle, ErrChanged))
	}
	c.h.Write(p[:n])
	c.n += int64(n)
	if err != nil && err != io.EOF {
		return 0, c.fail(err)
	}
	if c.n == c.rec.Stamp.Size {
		// The last byte: vouch for the whole before the destination gets it.
		if verr := c.vouch(); verr != nil {
			return 0, c.fail(verr)
		}
		c.ok = true
		c.count(n)
		return n, nil
	}
	if err == io.EOF {
		return 0, c.fail(fmt.Errorf("%q has %d bytes, not the %d it had when it was looked at: %w", c.rec.Handle, c.n, c.rec.Stamp.Size, errors.Join(errSourceChanged, ErrChanged)))
	}
	c.count(n)
	return n, nil
}

func (c *sourceReader) count(n int) {
	c.s.prog.BytesDone += int64(n)
	c.s.rep.Bytes += int64(n)
	c.s.progress(false)
}

func (c *sourceReader) fail(err error) error {
	c.err = err
	return err
}

// vouch checks that what was read is the content the source's record describes: its hash is the
// recorded one (when known), and the item's stamp is still the recorded one.
func (c *sourceReader) vouch() error {
	if c.rec.hasSum() && [32]byte(c.h.Sum(nil)) != c.rec.Sum {
		c.unlike = true
		return fmt.Errorf("%q: %w", c.rec.Handle, errors.Join(errSourceChanged, ErrChanged))
	}
	st, ok := c.store.(Stater)
	if !ok {
		return nil
	}
	now, err := st.Stat(c.ctx, c.rec.Handle)
	if err != nil {
		return err
	}
	if StampChanged(c.rec.Stamp, now) {
		return fmt.Errorf("%q: %w", c.rec.Handle, errors.Join(errSourceChanged, ErrChanged))
	}
	return nil
}

// sum returns the hash of the content read, once it was all read and vouched for.
func (c *sourceReader) sum() ([32]byte, bool) {
	if !c.ok {
		return [32]byte{}, false
	}
	return [32]byte(c.h.Sum(nil)), true
}
