package mtp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Transfer sizes. gousb makes one libusb transfer per call, so the size of each call dominates
// throughput (see docs/performance-usb.md): reads and writes of data phases move 512 KiB or more.
const (
	// readChunk is the largest bulk-in read of a data phase.
	readChunk = 1 << 20
	// writeChunk is the size of each bulk-out write of a data phase. It divides 512 KiB, and the
	// container header travels inside the first write, never alone: QEMU's usb-mtp aborts
	// otherwise.
	writeChunk = 512 << 10
	// maxDataset bounds a dataset read into memory (a property list of a huge folder); whatever
	// a container's length field claims, no more is ever allocated.
	maxDataset = 128 << 20
	// maxSkips bounds the stale containers (answers to an older transaction) skipped while
	// waiting for a response.
	maxSkips = 16
	// resetWait bounds the recovery after an aborted transaction.
	resetWait = 3 * time.Second
	// drainWait is how long a drain read waits for stale data before it decides there is none.
	drainWait = 100 * time.Millisecond
)

// conn is the initiator's transaction layer over a Transport: it sends commands, moves data
// phases in large chunks, reads responses and checks their transaction IDs, and recovers the
// pipe after a failed transaction.
//
// Concurrency: a conn is not safe for concurrent use; Device serialises every transaction behind
// its lock. Only gone and markGone may be called from any goroutine.
type conn struct {
	t      Transport
	packet int
	log    *slog.Logger
	tid    uint32 // next transaction ID inside the session
	inSess bool
	// noZLPOut omits the zero-length packet after a data phase that ends on a packet boundary.
	noZLPOut bool
	rbuf     []byte
	wbuf     []byte

	goneMu  sync.Mutex
	goneErr error
	goneCh  chan struct{} // closed by markGone
}

func newConn(t Transport, log *slog.Logger) *conn {
	p := t.MaxPacket()
	if p <= 0 || readChunk%p != 0 || writeChunk%p != 0 {
		p = 512
	}
	return &conn{
		t:      t,
		packet: p,
		log:    log,
		rbuf:   make([]byte, readChunk),
		wbuf:   make([]byte, writeChunk),
		goneCh: make(chan struct{}),
	}
}

// gone returns the error every call returns once the device is gone or closed, else nil.
func (c *conn) gone() error {
	c.goneMu.Lock()
	defer c.goneMu.Unlock()
	return c.goneErr
}

// markGone records that the device cannot be used any more and returns the error calls get.
func (c *conn) markGone(cause error) error {
	c.goneMu.Lock()
	defer c.goneMu.Unlock()
	if c.goneErr == nil {
		c.goneErr = &goneError{cause: cause}
		close(c.goneCh)
	}
	return c.goneErr
}

// call describes one transaction.
type call struct {
	op     OpCode
	params []uint32
	// send, when not nil, is the data phase to the device: sendSize bytes read from it.
	send     io.Reader
	sendSize int64
	// recv, when not nil, consumes the data phase from the device. It need not read it all.
	recv func(io.Reader) error
	// expect is the payload size of the data phase from the device when the caller knows it
	// (an object over 4 GiB arrives with an unknown container length), else -1.
	expect int64
}

// sourceError is a failure reading the caller's data for a data-out phase.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reading the data to send: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// sinkError is a failure of the caller's consumer of a data-in phase.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// busyRetries are the waits before retrying an operation the device answered DeviceBusy.
var busyRetries = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}

// do runs a transaction, retrying while the device answers DeviceBusy (phones do while they
// prepare their storage) unless the call sent data. A response other than OK is returned with a
// *ResponseError.
func (c *conn) do(ctx context.Context, k call) (Container, error) {
	for i := 0; ; i++ {
		resp, err := c.run(ctx, k)
		if !isResponse(err, RespDeviceBusy) || k.send != nil || i == len(busyRetries) {
			return resp, err
		}
		c.log.Debug("mtp: device busy, retrying", "op", k.op, "wait", busyRetries[i])
		select {
		case <-ctx.Done():
			return resp, err
		case <-time.After(busyRetries[i]):
		}
	}
}

// run performs one transaction: command, optional data out, optional data in, response.
func (c *conn) run(ctx context.Context, k call) (Container, error) {
	if err := c.gone(); err != nil {
		return Container{}, fmt.Errorf("%v: %w", k.op, err)
	}
	tid := c.nextTID(k.op)
	cmd, err := Container{Type: ContainerCommand, Code: uint16(k.op), TransactionID: tid, Params: k.params}.MarshalBinary()
	if err != nil {
		return Container{}, fmt.Errorf("%v: %w", k.op, err)
	}
	if err := c.out(ctx, cmd); err != nil {
		return Container{}, c.failed(ctx, k.op, err)
	}
	if k.send != nil {
		if err := c.sendData(ctx, k.op, tid, k.sendSize, k.send); err != nil {
			return Container{}, c.failed(ctx, k.op, err)
		}
	}
	resp, err := c.readPhase(ctx, k, tid)
	if err != nil {
		return resp, c.failed(ctx, k.op, err)
	}
	if ResponseCode(resp.Code) != RespOK {
		return resp, &ResponseError{Op: k.op, Code: ResponseCode(resp.Code), Params: resp.Params}
	}
	return resp, nil
}

// nextTID returns the transaction ID for op: 0 outside a session and for OpenSession, then 1, 2,
// ... (skipping 0 and 0xFFFFFFFF when it wraps).
func (c *conn) nextTID(op OpCode) uint32 {
	if op == OpOpenSession || !c.inSess {
		return 0
	}
	t := c.tid
	c.tid++
	if c.tid == 0xFFFFFFFF {
		c.tid = 1
	}
	return t
}

// failed turns a transaction's failure into the error its caller gets. When the device may still
// be inside the transaction (the caller's context ended, the data source or sink failed, the
// device broke the protocol), it asks the transport to cancel the transaction and drains what
// the device still sends, so the next transaction starts clean; when that fails too, or the
// transport is closed, the device is gone for good.
func (c *conn) failed(ctx context.Context, op OpCode, err error) error {
	if gone := c.gone(); gone != nil {
		return fmt.Errorf("%v: %w", op, gone)
	}
	if errors.Is(err, ErrTransportClosed) {
		return fmt.Errorf("%v: %w", op, c.markGone(err))
	}
	var re *ResponseError
	if errors.As(err, &re) {
		return err
	}
	if rerr := c.abort(); rerr != nil {
		c.log.Warn("mtp: cannot recover after a failed transaction", "op", op, "err", err, "reset", rerr)
		return fmt.Errorf("%v: %w (%w)", op, err, c.markGone(fmt.Errorf("the device stopped responding (%v)", rerr)))
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%v: the device did not finish in time: %w", op, err)
	}
	return fmt.Errorf("%v: %w", op, err)
}

// abort cancels the transaction in progress (Transport.Reset) and discards whatever the device
// still sends.
func (c *conn) abort() error {
	ctx, cancel := context.WithTimeout(context.Background(), resetWait)
	defer cancel()
	if err := c.t.Reset(ctx); err != nil {
		return err
	}
	c.drain(ctx)
	return nil
}

// drain discards what the device sends until it stays silent for drainWait: stale data or
// responses from a transaction that was cancelled, or left by a program that crashed.
func (c *conn) drain(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		rctx, cancel := context.WithTimeout(ctx, drainWait)
		got, err := c.t.BulkIn(rctx, c.rbuf)
		cancel()
		if got > 0 {
			c.log.Debug("mtp: discarded stale data", "bytes", got)
		}
		if err != nil || (got == 0 && n > 0) {
			return
		}
	}
}

// out writes one bulk-out transfer.
func (c *conn) out(ctx context.Context, p []byte) error {
	n, err := c.t.BulkOut(ctx, p)
	if err == nil && n != len(p) {
		err = fmt.Errorf("%w: the device accepted %d of %d bytes", ErrProtocol, n, len(p))
	}
	return err
}

// sendData writes a data phase of size bytes read from r: writeChunk bytes per transfer, the
// header inside the first one, and a zero-length packet when the container ends on a packet
// boundary (a device reads until a short packet when the length is unknown, and Android waits
// for it).
func (c *conn) sendData(ctx context.Context, op OpCode, tid uint32, size int64, r io.Reader) error {
	total := size + HeaderSize
	length := uint32(LengthUnknown)
	if total < LengthUnknown {
		length = uint32(total)
	}
	b, _ := Header{Length: length, Type: ContainerData, Code: uint16(op), TransactionID: tid}.AppendBinary(c.wbuf[:0])
	first := min(int64(len(c.wbuf)-HeaderSize), size)
	if err := readSource(r, c.wbuf[HeaderSize:HeaderSize+first], 0, size); err != nil {
		return err
	}
	if err := c.out(ctx, b[:HeaderSize+first]); err != nil {
		return err
	}
	for sent := first; sent < size; {
		n := min(int64(len(c.wbuf)), size-sent)
		if err := readSource(r, c.wbuf[:n], sent, size); err != nil {
			return err
		}
		if err := c.out(ctx, c.wbuf[:n]); err != nil {
			return err
		}
		sent += n
	}
	if total%int64(c.packet) != 0 || c.noZLPOut {
		return nil
	}
	err := c.out(ctx, nil)
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrTransportClosed) {
		// QEMU's usb-mtp stalls a zero-length packet. This transaction is lost; later ones
		// end their data phases without one.
		c.log.Warn("mtp: the device refused a zero-length packet; not sending them any more", "op", op, "err", err)
		c.noZLPOut = true
	}
	return err
}

// readSource fills p from r; off and size are for the message when r ends early.
func readSource(r io.Reader, p []byte, off, size int64) error {
	n, err := io.ReadFull(r, p)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return &sourceError{fmt.Errorf("the data ended after %d of %d bytes: %w", off+int64(n), size, io.ErrUnexpectedEOF)}
	}
	if err != nil {
		return &sourceError{err}
	}
	return nil
}

// readPhase reads what the device answers to transaction tid: an optional data phase, handed to
// k.recv, then the response. Containers of other transactions (stale ones after a cancel or a
// crash) are skipped, up to maxSkips; empty reads (a zero-length packet ending a data phase on a
// packet boundary) are accepted.
func (c *conn) readPhase(ctx context.Context, k call, tid uint32) (Container, error) {
	sawData, skips, empties := false, 0, 0
	skip := func(what string, h Header) error {
		skips++
		c.log.Debug("mtp: skipping a stale container", "what", what, "type", h.Type, "tid", h.TransactionID, "want", tid)
		if skips > maxSkips {
			return fmt.Errorf("%w: %d containers of other transactions while waiting for transaction %d", ErrProtocol, skips, tid)
		}
		return nil
	}
	for {
		// One packet first: a short container ends there, and a long data phase is then read
		// with sizes computed from its length, so no read runs into the response even when
		// the device sends no zero-length packet.
		n, err := c.t.BulkIn(ctx, c.rbuf[:c.packet])
		if err != nil {
			return Container{}, err
		}
		if n == 0 {
			if empties++; empties > 4 {
				return Container{}, fmt.Errorf("%w: the device sent only empty packets", ErrProtocol)
			}
			continue
		}
		h, err := ParseHeader(c.rbuf[:n])
		if err != nil {
			return Container{}, fmt.Errorf("%w: reading the answer to %v: %w", ErrProtocol, k.op, err)
		}
		switch h.Type {
		case ContainerData:
			dr := newDataReader(ctx, c, h, n, k.expect)
			if h.TransactionID != tid || sawData || k.recv == nil {
				if err := skip("data phase", h); err != nil {
					return Container{}, err
				}
				if _, err := io.Copy(io.Discard, dr); err != nil && dr.early == nil {
					return Container{}, err
				}
			} else {
				sawData = true
				if err := k.recv(dr); err != nil && dr.early == nil {
					return Container{}, &sinkError{err}
				}
				if _, err := io.Copy(io.Discard, dr); err != nil && dr.early == nil {
					return Container{}, err
				}
			}
			if dr.early != nil {
				if dr.early.TransactionID == tid && ResponseCode(dr.early.Code) == RespOK {
					return Container{}, dr.err
				}
				if dr.early.TransactionID == tid {
					return *dr.early, nil
				}
			}
		case ContainerResponse:
			var r Container
			if err := r.UnmarshalBinary(c.rbuf[:n]); err != nil {
				return Container{}, fmt.Errorf("%w: reading the answer to %v: %w", ErrProtocol, k.op, err)
			}
			if r.TransactionID != tid {
				if err := skip("response", h); err != nil {
					return Container{}, err
				}
				continue
			}
			if k.recv != nil && !sawData && ResponseCode(r.Code) == RespOK {
				// Some devices skip an empty data phase.
				if err := k.recv(bytes.NewReader(nil)); err != nil {
					return Container{}, &sinkError{err}
				}
			}
			return r, nil
		default:
			if err := skip("container", h); err != nil {
				return Container{}, err
			}
		}
	}
}

// dataReader reads the payload of one data phase. It counts bytes against the container's
// length and reads in sizes that end exactly there, so it never swallows the response even when
// the device sends no zero-length packet; a phase of unknown length (over 4 GiB) ends with a
// short packet or after expect bytes.
type dataReader struct {
	ctx       context.Context
	c         *conn
	tid       uint32
	total     int64 // container bytes, header included; -1 when unknown
	got       int64 // container bytes received
	pending   []byte
	ended     bool
	lastShort bool
	zeros     int
	err       error
	early     *Container // a response that arrived before the data phase was complete
}

func newDataReader(ctx context.Context, c *conn, h Header, n int, expect int64) *dataReader {
	r := &dataReader{ctx: ctx, c: c, tid: h.TransactionID, total: int64(h.Length), got: int64(n)}
	if h.Length == LengthUnknown {
		r.total = -1
		if expect >= 0 {
			r.total = expect + HeaderSize
		}
	}
	r.pending = c.rbuf[HeaderSize:n]
	if r.total >= 0 && r.got > r.total {
		r.err = fmt.Errorf("%w: a packet of %d bytes holds a data container of %d", ErrProtocol, n, r.total)
		r.pending = c.rbuf[HeaderSize:r.total]
		r.got = r.total
	}
	if r.total < 0 && n < c.packet {
		r.ended = true
	}
	r.lastShort = n < c.packet
	return r
}

func (r *dataReader) done() bool {
	if r.total >= 0 {
		return r.got >= r.total
	}
	return r.ended
}

// Read implements io.Reader.
func (r *dataReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done() {
			return 0, io.EOF
		}
		r.fill()
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

func (r *dataReader) fill() {
	c := r.c
	want := len(c.rbuf)
	if r.total >= 0 {
		rem := r.total - r.got
		if rem < int64(want) {
			want = int((rem + int64(c.packet) - 1) / int64(c.packet) * int64(c.packet))
		}
	}
	n, err := c.t.BulkIn(r.ctx, c.rbuf[:want])
	if err != nil {
		r.err = err
		return
	}
	if n == 0 {
		if r.total < 0 {
			r.ended = true
			return
		}
		if r.zeros++; r.zeros > 2 {
			r.err = fmt.Errorf("%w: the device ended the data phase after %d of %d bytes", ErrProtocol, r.got-HeaderSize, r.total-HeaderSize)
		}
		return
	}
	if r.lastShort && r.total >= 0 && n <= HeaderSize+4*MaxParams {
		// The transfer before ended short: if this one is a response to our transaction, the
		// device gave up on the data phase.
		var resp Container
		if resp.UnmarshalBinary(c.rbuf[:n]) == nil && resp.Type == ContainerResponse &&
			resp.TransactionID == r.tid && int(binary.LittleEndian.Uint32(c.rbuf)) == n {
			r.early = &resp
			r.err = fmt.Errorf("%w: the device ended the data phase after %d of %d bytes", ErrProtocol, r.got-HeaderSize, r.total-HeaderSize)
			return
		}
	}
	r.lastShort = n < want || n%c.packet != 0
	r.got += int64(n)
	r.pending = c.rbuf[:n]
	if r.total >= 0 && r.got > r.total {
		extra := r.got - r.total
		r.pending = r.pending[:int64(n)-extra]
		r.got = r.total
		r.err = fmt.Errorf("%w: the device sent %d bytes more than its data container holds", ErrProtocol, extra)
	}
	if r.total < 0 && r.lastShort {
		r.ended = true
	}
}

// dataset runs a transaction that returns a dataset and reads it into memory (at most
// maxDataset bytes).
func (c *conn) dataset(ctx context.Context, op OpCode, params ...uint32) ([]byte, Container, error) {
	var buf bytes.Buffer
	resp, err := c.do(ctx, call{op: op, params: params, expect: -1, recv: func(r io.Reader) error {
		n, err := io.Copy(&buf, io.LimitReader(r, maxDataset+1))
		if err == nil && n > maxDataset {
			err = fmt.Errorf("%w: the device sent a dataset over %d MiB", ErrProtocol, maxDataset>>20)
		}
		return err
	}})
	return buf.Bytes(), resp, err
}
