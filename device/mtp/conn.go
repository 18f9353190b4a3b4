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

	"github.com/cradle-sync/cradle/device"
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
	// defaultTimeout is how long the device may stay silent in a transaction (Options.Timeout):
	// libmtp waits 20 to 60 s, phones take seconds to open a big file or to flush one written.
	defaultTimeout = 30 * time.Second
	// flushRate is the slowest rate at which a device is expected to store what it received:
	// the wait for the response after a data phase to the device grows by size/flushRate.
	flushRate = 4 << 20
	// zlpRescue is how long the response to a data phase sent without its zero-length packet is
	// awaited before the packet is sent after all (a device that waits for it, Android).
	zlpRescue = time.Second
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
	// timeout is how long the device may stay silent within a transaction (see silentError).
	timeout time.Duration
	// reopen opens a new session after a USB reset (set by Device; it runs under the lock).
	reopen func(ctx context.Context) error
	// recovering is set while a silent device is being brought back: failures then do not
	// recover again.
	recovering bool
	// lastTID is the transaction ID of the transaction in progress (or the last one).
	lastTID uint32

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
		t:       t,
		packet:  p,
		log:     log,
		rbuf:    make([]byte, readChunk),
		wbuf:    make([]byte, writeChunk),
		goneCh:  make(chan struct{}),
		timeout: defaultTimeout,
	}
}

// silentError is a device that sent or took nothing for its deadline in the middle of a
// transaction. It wraps device.ErrNotAnswering.
type silentError struct {
	op   OpCode
	wait time.Duration
}

func (e *silentError) Error() string {
	return fmt.Sprintf("%v (nothing for %s during %v): unlock the phone and keep its screen on, then sync again; "+
		"if it happens again, unplug it and plug it in again", device.ErrNotAnswering, e.wait.Round(time.Millisecond), e.op)
}

func (e *silentError) Unwrap() error { return device.ErrNotAnswering }

// bulkIn reads from the device, giving up after wait: a device silent for that long is a
// *silentError (the caller's own context ending stays the caller's error).
func (c *conn) bulkIn(ctx context.Context, op OpCode, p []byte, wait time.Duration) (int, error) {
	tctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	n, err := c.t.BulkIn(tctx, p)
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		err = &silentError{op: op, wait: wait}
	}
	return n, err
}

// bulkOut writes one transfer, giving up after c.timeout (see bulkIn).
func (c *conn) bulkOut(ctx context.Context, op OpCode, p []byte) (int, error) {
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	n, err := c.t.BulkOut(tctx, p)
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		err = &silentError{op: op, wait: c.timeout}
	}
	return n, err
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
	if err := ctx.Err(); err != nil {
		// Nothing was sent: the device is not inside this transaction, nothing to recover.
		return Container{}, fmt.Errorf("%v: %w", k.op, err)
	}
	tid := c.nextTID(k.op)
	c.lastTID = tid
	cmd, err := Container{Type: ContainerCommand, Code: uint16(k.op), TransactionID: tid, Params: k.params}.MarshalBinary()
	if err != nil {
		return Container{}, fmt.Errorf("%v: %w", k.op, err)
	}
	if err := c.out(ctx, k.op, cmd); err != nil {
		return Container{}, c.failed(ctx, k.op, err, false)
	}
	first := c.timeout
	noZLP := false
	if k.send != nil {
		var err error
		if noZLP, err = c.sendData(ctx, k.op, tid, k.sendSize, k.send); err != nil {
			return Container{}, c.failed(ctx, k.op, err, true)
		}
		// The device may take a while to store what it received before it answers.
		first += time.Duration(k.sendSize / flushRate * int64(time.Second))
	}
	resp, err := c.readPhase(ctx, k, tid, first, noZLP)
	if err != nil {
		return resp, c.failed(ctx, k.op, err, false)
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
func (c *conn) failed(ctx context.Context, op OpCode, err error, sending bool) error {
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
	var se *silentError
	if errors.As(err, &se) && !c.recovering {
		return c.silent(op, se)
	}
	if !sending && ctx.Err() != nil && errors.Is(err, ctx.Err()) && c.settle(c.lastTID) {
		// The caller gave up while the device was answering: it finished on its own, and
		// the pipe is clean without a cancel request (which some devices handle worst:
		// uMTP-Responder 1.3 stops answering for good after one).
		return fmt.Errorf("%v: the device did not finish in time: %w", op, err)
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

// settleWait bounds how long an abandoned answer is read to its end before the transaction is
// cancelled instead.
const settleWait = time.Second

// settle reads and discards what the device still sends for transaction tid, which its caller
// abandoned while the answer came (no data phase to the device in flight), up to its response.
// It reports whether the response came within settleWait; a device that is not answering, or a
// long data phase, is cancelled instead.
func (c *conn) settle(tid uint32) bool {
	ctx, cancel := context.WithTimeout(context.Background(), settleWait)
	defer cancel()
	for ctx.Err() == nil {
		got, err := c.t.BulkIn(ctx, c.rbuf)
		if err != nil {
			return false
		}
		var r Container
		if got >= HeaderSize && got <= HeaderSize+4*MaxParams && int(binary.LittleEndian.Uint32(c.rbuf)) == got &&
			r.UnmarshalBinary(c.rbuf[:got]) == nil && r.Type == ContainerResponse && r.TransactionID == tid {
			return true
		}
		if got > 0 {
			c.log.Debug("mtp: discarded the rest of an abandoned answer", "bytes", got)
		}
	}
	return false
}

// pingWait bounds each look at whether a device that fell silent answers again.
const pingWait = 5 * time.Second

// silent brings back a device that stopped answering in the middle of op: it cancels the
// transaction and clears halted endpoints (abort), checks that the device answers (GetDeviceInfo),
// and if it does not, resets the USB device (where the transport can), opens a new session and
// checks again. The transaction's error is returned either way; when the device stays silent,
// it is gone (the session ends, and the user is told to re-plug it).
func (c *conn) silent(op OpCode, se *silentError) error {
	c.recovering = true
	defer func() { c.recovering = false }()
	c.log.Warn("mtp: the device stopped answering; cancelling the transaction", "op", op, "after", se.wait)
	err := c.abort()
	if err == nil {
		err = c.ping()
	}
	if err != nil {
		r, ok := c.t.(DeviceResetter)
		if !ok || c.reopen == nil {
			return fmt.Errorf("%w (%w)", se, c.markGone(se))
		}
		c.log.Warn("mtp: the device does not answer after the cancel; resetting it", "err", err)
		ctx, cancel := context.WithTimeout(context.Background(), 3*pingWait)
		defer cancel()
		c.inSess = false
		if err = r.ResetDevice(ctx); err == nil {
			c.drain(ctx)
			if err = c.reopen(ctx); err == nil {
				err = c.ping()
			}
		}
		if err != nil {
			c.log.Warn("mtp: the device does not answer after a reset", "err", err)
			return fmt.Errorf("%w (%w)", se, c.markGone(se))
		}
	}
	c.log.Info("mtp: the device answers again", "op", op)
	return se
}

// ping checks that the device answers a transaction (GetDeviceInfo, valid in and out of a
// session) within pingWait, without recovering when it does not.
func (c *conn) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), pingWait)
	defer cancel()
	saved := c.timeout
	c.timeout = min(c.timeout, pingWait)
	defer func() { c.timeout = saved }()
	_, err := c.run(ctx, call{op: OpGetDeviceInfo, expect: -1, recv: func(r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	}})
	return err
}

// DeviceResetter is a Transport that can reset the device (a USB port reset), the last resort for
// a device that stopped answering: it forgets its session. device/usb and device/emulator
// implement it.
type DeviceResetter interface {
	ResetDevice(ctx context.Context) error
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
func (c *conn) out(ctx context.Context, op OpCode, p []byte) error {
	n, err := c.bulkOut(ctx, op, p)
	if err == nil && n != len(p) {
		err = fmt.Errorf("%w: the device accepted %d of %d bytes", ErrProtocol, n, len(p))
	}
	return err
}

// sendData writes a data phase of size bytes read from r: writeChunk bytes per transfer, the
// header inside the first one, and a zero-length packet when the container ends on a packet
// boundary (a device reads until a short packet when the length is unknown, and Android waits
// for it). It reports whether it ended on a packet boundary without one (noZLPOut).
//
// A device that stalls the zero-length packet (QEMU's usb-mtp) loses that transaction, and later
// data phases go without; the first of them that the device does not answer gets its
// zero-length packet after all (see readPhase), which turns them on again: one refusal never
// turns them off for good. Failures of other kinds (a timeout, a cancel) change nothing.
func (c *conn) sendData(ctx context.Context, op OpCode, tid uint32, size int64, r io.Reader) (bool, error) {
	total := size + HeaderSize
	length := uint32(LengthUnknown)
	if total < LengthUnknown {
		length = uint32(total)
	}
	b, _ := Header{Length: length, Type: ContainerData, Code: uint16(op), TransactionID: tid}.AppendBinary(c.wbuf[:0])
	first := min(int64(len(c.wbuf)-HeaderSize), size)
	if err := readSource(r, c.wbuf[HeaderSize:HeaderSize+first], 0, size); err != nil {
		return false, err
	}
	if err := c.out(ctx, op, b[:HeaderSize+first]); err != nil {
		return false, err
	}
	for sent := first; sent < size; {
		n := min(int64(len(c.wbuf)), size-sent)
		if err := readSource(r, c.wbuf[:n], sent, size); err != nil {
			return false, err
		}
		if err := c.out(ctx, op, c.wbuf[:n]); err != nil {
			return false, err
		}
		sent += n
	}
	if total%int64(c.packet) != 0 {
		return false, nil
	}
	if c.noZLPOut {
		return true, nil
	}
	err := c.out(ctx, op, nil)
	if errors.Is(err, ErrStall) {
		// QEMU's usb-mtp stalls a zero-length packet. This transaction is lost; later ones
		// go without until the device shows it wants one.
		c.log.Warn("mtp: the device refused a zero-length packet; sending none until it waits for one", "op", op, "err", err)
		c.noZLPOut = true
	}
	return false, err
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
//
// first bounds the wait for the first packet; every later read waits c.timeout. noZLP says the
// data phase to the device ended on a packet boundary without a zero-length packet: if the
// device does not answer within zlpRescue, it is sent after all and kept on from then on.
func (c *conn) readPhase(ctx context.Context, k call, tid uint32, first time.Duration, noZLP bool) (Container, error) {
	sawData, skips, empties := false, 0, 0
	pre := -1 // bytes of a first packet already read
	if noZLP {
		n, err := c.bulkIn(ctx, k.op, c.rbuf[:c.packet], min(zlpRescue, first))
		var se *silentError
		switch {
		case errors.As(err, &se):
			c.log.Info("mtp: the device waits for a zero-length packet after all; sending it, and them from now on", "op", k.op)
			if err := c.out(ctx, k.op, nil); err != nil {
				return Container{}, err
			}
			c.noZLPOut = false
		case err != nil:
			return Container{}, err
		default:
			pre = n
		}
	}
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
		wait := c.timeout
		if skips == 0 && empties == 0 && !sawData {
			wait = first
		}
		n := pre
		pre = -1
		if n < 0 {
			var err error
			if n, err = c.bulkIn(ctx, k.op, c.rbuf[:c.packet], wait); err != nil {
				return Container{}, err
			}
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
	op        OpCode
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
	r := &dataReader{ctx: ctx, c: c, op: OpCode(h.Code), tid: h.TransactionID, total: int64(h.Length), got: int64(n)}
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
	n, err := c.bulkIn(r.ctx, r.op, c.rbuf[:want], c.timeout)
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

// presizeDataset bounds the room a dataset's announced length reserves before its bytes arrive,
// so that a device announcing more than it sends cannot make Cradle reserve maxDataset.
const presizeDataset = 16 << 20

// dataset runs a transaction that returns a dataset and reads it into memory (at most
// maxDataset bytes).
func (c *conn) dataset(ctx context.Context, op OpCode, params ...uint32) ([]byte, Container, error) {
	var buf bytes.Buffer
	resp, err := c.do(ctx, call{op: op, params: params, expect: -1, recv: func(r io.Reader) error {
		if dr, ok := r.(*dataReader); ok && dr.total > HeaderSize && dr.total-HeaderSize <= presizeDataset {
			// Room for the announced length at once (and for the last read's probe past it),
			// not the doublings of a growing buffer: a folder of a thousand files lists in
			// about 250 KB.
			buf.Grow(int(dr.total-HeaderSize) + bytes.MinRead)
		}
		n, err := io.Copy(&buf, io.LimitReader(r, maxDataset+1))
		if err == nil && n > maxDataset {
			err = fmt.Errorf("%w: the device sent a dataset over %d MiB", ErrProtocol, maxDataset>>20)
		}
		return err
	}})
	return buf.Bytes(), resp, err
}
