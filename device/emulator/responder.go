package emulator

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cradle-sync/cradle/device/mtp"
)

// errIncomplete is a data phase that ended before its container's length.
var errIncomplete = errors.New("the data phase ended early")

// zlpWait is how long the device waits for the zero-length packet that must follow a data phase
// ending on a packet boundary before it counts it missing and answers anyway.
const zlpWait = 100 * time.Millisecond

// dataOutOps are the operations whose data phase goes from the initiator to the device: the
// device reads it even when it refuses the operation.
var dataOutOps = map[mtp.OpCode]bool{
	mtp.OpSendObjectInfo: true, mtp.OpSendObject: true, mtp.OpSetObjectPropValue: true,
	mtp.OpSetObjectPropList: true, mtp.OpSendObjectPropList: true, mtp.OpSetObjectReferences: true,
	mtp.OpSetDevicePropValue: true,
}

// responder is the device's side of the protocol: the firmware loop. Only the serve goroutine
// uses it.
type responder struct {
	e     *Emulator
	back  []byte // a bulk-out transfer read too early, given back to the next read
	abort <-chan struct{}
	tid   uint32
	op    mtp.OpCode
	// recvBuf receives uploads, reused from one to the next (the responder is one goroutine).
	recvBuf []byte
	// parts counts the temporary files of uploads, which it names.
	parts uint64
	// sending is set while a data-in phase is being sent.
	sending bool
}

// answer is a response to send: a code and its parameters.
type answer struct {
	code   mtp.ResponseCode
	params []uint32
}

func ok(params ...uint32) answer            { return answer{code: mtp.RespOK, params: params} }
func fail(code mtp.ResponseCode) answer     { return answer{code: code} }
func (a answer) is(c mtp.ResponseCode) bool { return a.code == c }

// serve is the device's main loop: read a command, run it, answer; until the device is gone.
func (e *Emulator) serve() {
	r := &responder{e: e}
	for {
		r.abort = e.currentAbort()
		r.sending = false
		cmd, err := r.command()
		if err == nil && e.isWedged() {
			e.log.Debug("emulator: wedged; ignoring a command", "op", mtp.OpCode(cmd.Code))
			continue
		}
		if err == nil {
			err = r.handle(cmd)
		}
		switch {
		case err == nil:
		case errors.Is(err, errAborted):
			if e.opts.CancelWedge && r.sending {
				e.log.Info("emulator: a data-in phase was cancelled; the device stops answering until a USB reset")
				e.wedge()
			}
			r.acknowledgeAbort()
		case errors.Is(err, mtp.ErrTransportClosed):
			return
		default:
			e.log.Warn("emulator: protocol error", "op", r.op, "err", err)
		}
	}
}

// acknowledgeAbort tells a waiting Reset that the device is idle again.
func (r *responder) acknowledgeAbort() {
	e := r.e
	e.abortMu.Lock()
	idle := e.idle
	e.abortCh, e.idle = make(chan struct{}), make(chan struct{})
	e.abortMu.Unlock()
	close(idle)
}

// next returns the next bulk-out transfer.
func (r *responder) next() ([]byte, error) {
	if r.back != nil {
		b := r.back
		r.back = nil
		return b, nil
	}
	select {
	case b := <-r.e.out:
		return b, nil
	case <-r.abort:
		return nil, errAborted
	case <-r.e.gone:
		return nil, mtp.ErrTransportClosed
	}
}

// command reads the next command container; stray zero-length packets and data are skipped.
func (r *responder) command() (mtp.Container, error) {
	for {
		b, err := r.next()
		if err != nil {
			return mtp.Container{}, err
		}
		if len(b) == 0 {
			continue
		}
		var c mtp.Container
		if err := c.UnmarshalBinary(b); err != nil || c.Type != mtp.ContainerCommand {
			r.e.log.Warn("emulator: ignoring a bulk-out transfer that is not a command", "bytes", len(b), "err", err)
			continue
		}
		return c, nil
	}
}

// handle runs one command.
func (r *responder) handle(cmd mtp.Container) error {
	e := r.e
	r.op, r.tid = mtp.OpCode(cmd.Code), cmd.TransactionID
	e.stats.transactions.Add(1)
	op := r.op
	refuse := func(a answer) error {
		if dataOutOps[op] {
			if err := r.discardData(); err != nil && !errors.Is(err, errIncomplete) {
				return err
			}
		}
		return r.respond(a)
	}
	if stall, busy := e.takeFault(op); stall {
		select {
		case <-r.abort:
			return errAborted
		case <-e.gone:
			return mtp.ErrTransportClosed
		}
	} else if busy {
		return refuse(fail(mtp.RespDeviceBusy))
	}
	if d := e.takeSlow(op); d > 0 {
		select {
		case <-time.After(d):
		case <-r.abort:
			return errAborted
		case <-e.gone:
			return mtp.ErrTransportClosed
		}
	}
	h := handlers[op]
	if h == nil || !e.offers(op) {
		return refuse(fail(mtp.RespOperationNotSupported))
	}
	e.mu.Lock()
	t := &e.tab
	var pre answer
	switch {
	case op == mtp.OpGetDeviceInfo && t.session == 0 && e.opts.SessionFirst:
		pre = fail(mtp.RespSessionNotOpen)
	case op == mtp.OpGetDeviceInfo || op == mtp.OpOpenSession:
	case t.session == 0 && !(t.stale && op == mtp.OpCloseSession):
		pre = fail(mtp.RespSessionNotOpen)
	case t.session != 0 && r.tid <= t.lastTID:
		pre = fail(mtp.RespInvalidTransactionID)
	}
	if t.session != 0 && r.tid > t.lastTID {
		t.lastTID = r.tid
	}
	e.mu.Unlock()
	if pre.code != 0 {
		return refuse(pre)
	}
	a, err := h(r, cmd.Params)
	if err != nil {
		return err
	}
	return r.respond(a)
}

// offers tells whether the device lists op in its DeviceInfo.
func (e *Emulator) offers(op mtp.OpCode) bool {
	if e.opts.PTP && (op >= 0x9000 || op == mtp.OpMoveObject) {
		return false // PTP offers no MTP operation
	}
	switch op {
	case mtp.OpGetObjectPropList:
		return e.opts.PropList != PropListAbsent
	case mtp.OpGetPartialObject:
		return !e.opts.NoPartial
	case mtp.OpGetPartialObject64:
		return !e.opts.NoPartial && !e.opts.NoPartial64 && !e.opts.NoAndroidExtensions
	case mtp.OpSetObjectPropValue, mtp.OpMoveObject:
		return !e.opts.ReadOnlyProps
	}
	return true
}

// respond queues the response, unless the transaction was cancelled meanwhile.
func (r *responder) respond(a answer) error {
	select {
	case <-r.abort:
		return errAborted
	default:
	}
	if r.e.takeStale() && r.tid > 1 {
		stale, _ := mtp.Container{Type: mtp.ContainerResponse, Code: uint16(mtp.RespOK), TransactionID: r.tid - 1}.MarshalBinary()
		if err := r.e.in.push(stale, r.abort, r.e.gone); err != nil {
			return err
		}
	}
	b, err := mtp.Container{Type: mtp.ContainerResponse, Code: uint16(a.code), TransactionID: r.tid, Params: a.params}.MarshalBinary()
	if err != nil {
		return err
	}
	return r.e.in.push(b, r.abort, r.e.gone)
}

// sendData sends a data phase of size payload bytes that fill writes.
func (r *responder) sendData(size int64, fill func(w *transferWriter) error) error {
	err := r.sendPhase(size, fill)
	r.sending = errors.Is(err, errAborted) // serve sees it: a data-in phase was cancelled
	return err
}

func (r *responder) sendPhase(size int64, fill func(w *transferWriter) error) error {
	w := r.e.newTransfer(r.abort)
	length := uint32(mtp.LengthUnknown)
	if size+mtp.HeaderSize < mtp.LengthUnknown {
		length = uint32(size + mtp.HeaderSize)
	}
	if size >= 0 {
		w.grow(int(min(size+mtp.HeaderSize, int64(w.chunk))))
	}
	hdr, _ := mtp.Header{Length: length, Type: mtp.ContainerData, Code: uint16(r.op), TransactionID: r.tid}.AppendBinary(nil)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if err := fill(w); err != nil {
		return err
	}
	return w.end()
}

// sendBytes sends a dataset.
func (r *responder) sendBytes(b []byte) error {
	return r.sendData(int64(len(b)), func(w *transferWriter) error {
		_, err := w.Write(b)
		return err
	})
}

// readFrom fills the transfer with n bytes of f, read straight into the transfer's buffers. A
// file that ends early is padded with zeros and reported.
func (w *transferWriter) readFrom(f io.Reader, n int64) (short bool, err error) {
	for n > 0 {
		w.grow(int(min(n, int64(w.chunk))))
		room := min(int64(cap(w.buf)-len(w.buf)), n)
		part := w.buf[len(w.buf) : len(w.buf)+int(room)]
		got, rerr := io.ReadFull(f, part)
		if rerr != nil {
			clear(part[got:])
			short = true
		}
		w.buf = w.buf[:len(w.buf)+int(room)]
		n -= room
		if len(w.buf) == w.chunk {
			if err := w.flush(); err != nil {
				return short, err
			}
		}
	}
	return short, nil
}

// dataReader reads a data phase the initiator sends, counting bytes against the container's
// length; a transfer with a short last packet ends the phase, early or not.
type dataReader struct {
	r     *responder
	total int64 // container bytes; -1 unknown (over 4 GiB)
	got   int64
	cur   []byte
	short bool // the last transfer ended with a short packet
	err   error
}

// recvData starts reading a data phase.
func (r *responder) recvData() (*dataReader, error) {
	b, err := r.next()
	for err == nil && len(b) == 0 {
		b, err = r.next()
	}
	if err != nil {
		return nil, err
	}
	h, err := mtp.ParseHeader(b)
	if err != nil || h.Type != mtp.ContainerData {
		// A new command where the data phase belonged: the initiator skipped it.
		r.back = b
		return nil, fmt.Errorf("%w: no data phase (got %d bytes: %v)", errIncomplete, len(b), err)
	}
	if h.TransactionID != r.tid {
		r.e.log.Warn("emulator: data phase of another transaction", "tid", h.TransactionID, "want", r.tid)
	}
	d := &dataReader{r: r, total: int64(h.Length), got: int64(len(b)), cur: b[mtp.HeaderSize:], short: len(b)%packetSize != 0}
	if h.Length == mtp.LengthUnknown {
		d.total = -1
	}
	d.clip()
	return d, nil
}

// clip drops bytes beyond the container's length.
func (d *dataReader) clip() {
	if d.total >= 0 && d.got > d.total {
		extra := d.got - d.total
		d.r.e.log.Warn("emulator: data phase longer than its container", "extra", extra)
		d.cur = d.cur[:int64(len(d.cur))-extra]
		d.got = d.total
	}
}

func (d *dataReader) complete() bool {
	if d.total >= 0 {
		return d.got >= d.total
	}
	return d.short
}

func (d *dataReader) Read(p []byte) (int, error) {
	for len(d.cur) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.complete() {
			return 0, io.EOF
		}
		if d.short {
			d.err = fmt.Errorf("%w: a short packet after %d of %d bytes", errIncomplete, d.got, d.total)
			return 0, d.err
		}
		b, err := d.r.next()
		if err != nil {
			d.err = err
			return 0, err
		}
		d.got += int64(len(b))
		d.cur = b
		d.short = len(b)%packetSize != 0 || len(b) == 0
		d.clip()
	}
	n := copy(p, d.cur)
	d.cur = d.cur[n:]
	return n, nil
}

// finish checks the zero-length packet that must follow a data phase ending on a packet
// boundary: Android waits for it. It counts it missing after zlpWait.
func (d *dataReader) finish() error {
	if d.total < 0 || d.total%packetSize != 0 || d.short || d.r.e.opts.StallZLP {
		return nil
	}
	var timeout <-chan time.Time
	if !d.r.e.opts.StrictZLP {
		timeout = time.After(zlpWait)
	}
	select {
	case b := <-d.r.e.out:
		if len(b) != 0 {
			d.r.e.stats.missingZLP.Add(1)
			if d.r.e.opts.StrictZLP {
				// The data phase is not over: this transfer (the initiator's next command)
				// ends it and is lost, as on Android.
				d.r.e.log.Info("emulator: a data phase ended on a packet boundary without a zero-length packet; the next transfer ends it", "bytes", len(b))
				return nil
			}
			d.r.back = b
		}
		return nil
	case <-timeout:
		d.r.e.stats.missingZLP.Add(1)
		return nil
	case <-d.r.abort:
		return errAborted
	case <-d.r.e.gone:
		return mtp.ErrTransportClosed
	}
}

// recvBytes reads a whole (small) data phase.
func (r *responder) recvBytes(max int64) ([]byte, error) {
	d, err := r.recvData()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(d, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		if _, err := io.Copy(io.Discard, d); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: dataset over %d bytes", errIncomplete, max)
	}
	return b, d.finish()
}

// discardData reads and drops a data phase.
func (r *responder) discardData() error {
	d, err := r.recvData()
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, d); err != nil {
		return err
	}
	return d.finish()
}
