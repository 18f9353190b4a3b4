package emulator

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cradle-sync/cradle/device/mtp"
)

// packetSize is the bulk endpoints' packet size: a high-speed device's.
const packetSize = 512

// errAborted is how the responder's blocking calls end when the initiator cancels the
// transaction (Reset).
var errAborted = errors.New("transaction cancelled by the initiator")

// errOverflow is a bulk-in read whose buffer cannot hold the packet that arrives: USB's
// "babble", LIBUSB_ERROR_OVERFLOW. An initiator that reads in sizes that are not whole packets
// meets it.
var errOverflow = errors.New("bulk in: overflow: the read buffer is not a whole number of packets and a packet did not fit")

// segment is a piece of what the device sends on bulk in. A segment whose length is a whole
// number of packets does not end the USB transfer: the next segment's packets follow in it.
// A segment with a short last packet ends the transfer, and so does an empty one (a zero-length
// packet).
type segment struct {
	b   []byte
	off int
}

// inPipe is the bulk-in pipe: the responder queues segments (blocking while more than max bytes
// wait), the initiator's reads take them with USB packet semantics.
type inPipe struct {
	mu     sync.Mutex
	segs   []*segment
	queued int
	max    int
	data   chan struct{} // signalled when a segment is queued
	space  chan struct{} // signalled when bytes are taken
}

func newInPipe(max int) *inPipe {
	return &inPipe{max: max, data: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push queues a segment, waiting while the pipe is full, until abort or gone is closed.
func (p *inPipe) push(b []byte, abort, gone <-chan struct{}) error {
	for {
		p.mu.Lock()
		if p.queued < p.max || len(p.segs) == 0 {
			p.segs = append(p.segs, &segment{b: b})
			p.queued += len(b)
			p.mu.Unlock()
			signal(p.data)
			return nil
		}
		p.mu.Unlock()
		select {
		case <-p.space:
		case <-abort:
			return errAborted
		case <-gone:
			return mtp.ErrTransportClosed
		}
	}
}

// clear drops everything queued (after a cancelled transaction).
func (p *inPipe) clear() {
	p.mu.Lock()
	p.segs, p.queued = nil, 0
	p.mu.Unlock()
	signal(p.space)
}

// read fills buf like a USB bulk-in transfer: whole packets until buf is full, a short packet
// arrives, or a zero-length packet arrives (then it returns what it has, maybe nothing). Where
// no short packet separates two transfers, a read runs on into the next, as on a real bus.
// limit, when >= 0, is how many bytes may still be delivered before the device disappears.
func (p *inPipe) read(ctx context.Context, buf []byte, gone <-chan struct{}, limit int64) (int, bool, error) {
	n := 0
	for {
		p.mu.Lock()
		if len(p.segs) == 0 {
			p.mu.Unlock()
			select {
			case <-p.data:
				continue
			case <-ctx.Done():
				return n, false, fmt.Errorf("bulk in: %w", ctx.Err())
			case <-gone:
				return n, false, mtp.ErrTransportClosed
			}
		}
		s := p.segs[0]
		if len(s.b) == 0 {
			p.pop()
			p.mu.Unlock()
			return n, false, nil
		}
		rem := s.b[s.off:]
		space := len(buf) - n
		take := len(rem)
		full := false
		if take > space {
			if space%packetSize != 0 {
				p.mu.Unlock()
				return n, false, errOverflow
			}
			take, full = space, true
		}
		cut := false
		if limit >= 0 && int64(n+take) > limit {
			take, cut = int(limit)-n, true
		}
		copy(buf[n:], rem[:take])
		n += take
		s.off += take
		p.queued -= take
		ended := false
		if s.off == len(s.b) {
			p.pop()
			ended = len(s.b)%packetSize != 0
		}
		p.mu.Unlock()
		signal(p.space)
		if cut {
			return n, true, mtp.ErrTransportClosed
		}
		if full || ended || n == len(buf) {
			return n, false, nil
		}
	}
}

// pop removes the first segment; p.mu is held.
func (p *inPipe) pop() {
	p.segs[0] = nil
	p.segs = p.segs[1:]
}

// transferWriter builds one bulk-in transfer from the responder's writes: whole packets are
// queued as they fill, the last short packet (or a zero-length packet, unless the device omits
// it) ends the transfer.
type transferWriter struct {
	pipe  *inPipe
	abort <-chan struct{}
	gone  <-chan struct{}
	zlp   bool
	buf   []byte
	total int64
	chunk int
}

// transferChunk is how many bytes the responder queues at a time.
const transferChunk = 256 << 10

func (e *Emulator) newTransfer(abort <-chan struct{}) *transferWriter {
	return &transferWriter{pipe: e.in, abort: abort, gone: e.gone, zlp: !e.opts.NoZLP, chunk: transferChunk}
}

func (w *transferWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		w.grow(len(b))
		n := copy(w.buf[len(w.buf):cap(w.buf)], b)
		w.buf = w.buf[:len(w.buf)+n]
		b = b[n:]
		written += n
		if len(w.buf) == w.chunk {
			if err := w.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// grow makes room in the transfer's buffer for n more bytes, up to a whole chunk: a dataset or a
// small file gets a buffer of its size, not a chunk (a sync of many small files would otherwise
// allocate a chunk for each of them).
func (w *transferWriter) grow(n int) {
	want := min(len(w.buf)+n, w.chunk)
	if cap(w.buf) >= want {
		return
	}
	b := make([]byte, len(w.buf), want)
	copy(b, w.buf)
	w.buf = b
}

func (w *transferWriter) flush() error {
	b := w.buf
	w.buf = nil
	w.total += int64(len(b))
	return w.pipe.push(b, w.abort, w.gone)
}

// end queues what remains and ends the transfer.
func (w *transferWriter) end() error {
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.total%packetSize == 0 && w.zlp {
		return w.pipe.push([]byte{}, w.abort, w.gone)
	}
	return nil
}

// eventQueue is the interrupt pipe: event containers waiting for the initiator to read them.
type eventQueue struct {
	mu      sync.Mutex
	q       [][]byte
	data    chan struct{}
	dropped int
	// pushed and taken count the events queued and read; took is signalled at every read.
	pushed, taken uint64
	took          chan struct{}
}

// maxEvents is how many events wait at most; a device drops what it cannot send.
const maxEvents = 4096

// push queues an event and returns its number, 0 when it was dropped.
func (q *eventQueue) push(b []byte) uint64 {
	q.mu.Lock()
	if len(q.q) >= maxEvents {
		q.dropped++
		q.mu.Unlock()
		return 0
	}
	q.q = append(q.q, b)
	q.pushed++
	seq := q.pushed
	q.mu.Unlock()
	signal(q.data)
	return seq
}

// waitTaken waits until event seq was read (or dropped with the queue), or gone is closed.
func (q *eventQueue) waitTaken(seq uint64, gone <-chan struct{}) {
	for {
		q.mu.Lock()
		done := q.taken >= seq
		q.mu.Unlock()
		if done {
			return
		}
		select {
		case <-q.took:
		case <-gone:
			return
		}
	}
}

func (q *eventQueue) read(ctx context.Context, p []byte, gone <-chan struct{}) (int, error) {
	for {
		q.mu.Lock()
		if len(q.q) > 0 {
			b := q.q[0]
			if len(p) < len(b) {
				q.mu.Unlock()
				return 0, fmt.Errorf("interrupt in: %w", errOverflow)
			}
			q.q = q.q[1:]
			q.taken++
			q.mu.Unlock()
			signal(q.took)
			return copy(p, b), nil
		}
		q.mu.Unlock()
		select {
		case <-q.data:
		case <-ctx.Done():
			return 0, fmt.Errorf("interrupt in: %w", ctx.Err())
		case <-gone:
			return 0, mtp.ErrTransportClosed
		}
	}
}

func (q *eventQueue) clear() {
	q.mu.Lock()
	q.q = nil
	q.taken = q.pushed
	q.mu.Unlock()
	signal(q.took)
}
