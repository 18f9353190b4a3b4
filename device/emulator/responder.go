package emulator

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
		cmd, err := r.command()
		if err == nil {
			err = r.handle(cmd)
		}
		switch {
		case err == nil:
		case errors.Is(err, errAborted):
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
	h := handlers[op]
	if h == nil || !e.offers(op) {
		return refuse(fail(mtp.RespOperationNotSupported))
	}
	e.mu.Lock()
	t := &e.tab
	var pre answer
	switch {
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
	switch op {
	case mtp.OpGetObjectPropList:
		return e.opts.PropList != PropListAbsent
	case mtp.OpGetPartialObject:
		return !e.opts.NoPartial
	case mtp.OpGetPartialObject64:
		return !e.opts.NoPartial && !e.opts.NoPartial64
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
	select {
	case b := <-d.r.e.out:
		if len(b) != 0 {
			d.r.back = b
			d.r.e.stats.missingZLP.Add(1)
		}
		return nil
	case <-time.After(zlpWait):
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

// handler runs one operation; it returns the answer, or an error when the transaction ended
// without one (cancelled, device gone).
type handler func(r *responder, p []uint32) (answer, error)

var handlers map[mtp.OpCode]handler

func init() {
	handlers = map[mtp.OpCode]handler{
		mtp.OpGetDeviceInfo:           (*responder).getDeviceInfo,
		mtp.OpOpenSession:             (*responder).openSession,
		mtp.OpCloseSession:            (*responder).closeSession,
		mtp.OpGetStorageIDs:           (*responder).getStorageIDs,
		mtp.OpGetStorageInfo:          (*responder).getStorageInfo,
		mtp.OpGetNumObjects:           (*responder).getNumObjects,
		mtp.OpGetObjectHandles:        (*responder).getObjectHandles,
		mtp.OpGetObjectInfo:           (*responder).getObjectInfo,
		mtp.OpGetObject:               (*responder).getObject,
		mtp.OpGetPartialObject:        (*responder).getPartialObject,
		mtp.OpGetPartialObject64:      (*responder).getPartialObject,
		mtp.OpDeleteObject:            (*responder).deleteObject,
		mtp.OpSendObjectInfo:          (*responder).sendObjectInfo,
		mtp.OpSendObject:              (*responder).sendObject,
		mtp.OpMoveObject:              (*responder).moveObject,
		mtp.OpGetObjectPropsSupported: (*responder).getObjectPropsSupported,
		mtp.OpGetObjectPropDesc:       (*responder).getObjectPropDesc,
		mtp.OpGetObjectPropValue:      (*responder).getObjectPropValue,
		mtp.OpSetObjectPropValue:      (*responder).setObjectPropValue,
		mtp.OpGetObjectPropList:       (*responder).getObjectPropList,
	}
}

func param(p []uint32, i int) uint32 {
	if i < len(p) {
		return p[i]
	}
	return 0
}

// deviceInfo is the DeviceInfo dataset: an Android-like phone.
func (e *Emulator) deviceInfo() *mtp.DeviceInfo {
	var ops []mtp.OpCode
	for op := range handlers {
		if e.offers(op) {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	return &mtp.DeviceInfo{
		StandardVersion:        100,
		VendorExtensionID:      6,
		VendorExtensionVersion: 100,
		VendorExtensionDesc:    "microsoft.com: 1.0; android.com: 1.0;",
		OperationsSupported:    ops,
		EventsSupported: []mtp.EventCode{mtp.EventObjectAdded, mtp.EventObjectRemoved, mtp.EventObjectInfoChanged,
			mtp.EventStoreAdded, mtp.EventStoreRemoved},
		PlaybackFormats: []mtp.FormatCode{mtp.FormatUndefined, mtp.FormatAssociation, mtp.FormatText, mtp.FormatMP3,
			mtp.FormatEXIFJPEG, mtp.FormatPNG, mtp.FormatMP4, mtp.FormatVCard3},
		Manufacturer:  Manufacturer,
		Model:         Model,
		DeviceVersion: Version,
		SerialNumber:  e.serial,
	}
}

func (r *responder) getDeviceInfo(p []uint32) (answer, error) {
	b, err := r.e.deviceInfo().MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

func (r *responder) openSession(p []uint32) (answer, error) {
	id := param(p, 0)
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	switch {
	case id == 0:
		return fail(mtp.RespInvalidParameter), nil
	case t.stale:
		return answer{code: mtp.RespSessionAlreadyOpen, params: []uint32{id}}, nil
	case t.session != 0:
		return answer{code: mtp.RespSessionAlreadyOpen, params: []uint32{t.session}}, nil
	}
	t.clear()
	t.session, t.lastTID = id, 0
	t.sessions++
	return ok(), nil
}

func (r *responder) closeSession(p []uint32) (answer, error) {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	if t.stale {
		t.stale = false
		return ok(), nil
	}
	t.clear()
	t.session, t.lastTID = 0, 0
	e.intr.clear()
	return ok(), nil
}

func (r *responder) getStorageIDs(p []uint32) (answer, error) {
	r.e.mu.Lock()
	var ids []uint32
	for _, st := range r.e.tab.present() {
		ids = append(ids, st.id)
	}
	r.e.mu.Unlock()
	return ok(), r.sendBytes(mtp.MarshalHandles(ids))
}

func (r *responder) getStorageInfo(p []uint32) (answer, error) {
	r.e.mu.Lock()
	st := r.e.tab.storage(param(p, 0))
	r.e.mu.Unlock()
	if st == nil {
		return fail(mtp.RespInvalidStorageID), nil
	}
	free, total, err := diskSpace(st.dir)
	if err != nil {
		r.e.log.Debug("emulator: free space unknown", "dir", st.dir, "err", err)
	}
	if r.e.opts.FreeSpaceZero {
		free = 0
	}
	si := mtp.StorageInfo{
		StorageType:        st.typ,
		FilesystemType:     mtp.FilesystemGenericHierarchical,
		AccessCapability:   mtp.AccessReadWrite,
		MaxCapacity:        total,
		FreeSpaceInBytes:   free,
		FreeSpaceInObjects: 0xFFFFFFFF,
		StorageDescription: st.desc,
	}
	b, err := si.MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

// selectObjects returns the objects GetObjectHandles and GetNumObjects ask for: in storage sid
// (0xFFFFFFFF: all), of format (0: all), in folder parent (0xFFFFFFFF: the root; 0: anywhere).
// It runs under e.mu.
func (r *responder) selectObjects(sid, format, parent uint32) ([]*object, answer) {
	t := &r.e.tab
	var sts []*storage
	if sid == 0xFFFFFFFF {
		sts = t.present()
	} else if st := t.storage(sid); st != nil {
		sts = []*storage{st}
	} else {
		return nil, fail(mtp.RespInvalidStorageID)
	}
	var out []*object
	match := func(o *object) {
		if format == 0 || mtp.FormatCode(format) == objectFormat(o) {
			out = append(out, o)
		}
	}
	for _, st := range sts {
		switch parent {
		case 0:
			if err := t.walk(st.root, match); err != nil {
				return nil, fail(mtp.RespStoreNotAvailable)
			}
			continue
		case 0xFFFFFFFF:
			if err := r.listFolder(st.root); err != nil {
				return nil, fail(mtp.RespStoreNotAvailable)
			}
			for _, c := range sortedChildren(st.root) {
				match(c)
			}
		default:
			o, _ := t.lookup(parent)
			if o == nil {
				return nil, fail(mtp.RespInvalidObjectHandle)
			}
			if !o.dir || (sid != 0xFFFFFFFF && o.st != st) {
				return nil, fail(mtp.RespInvalidParentObject)
			}
			if err := r.listFolder(o); err != nil {
				return nil, fail(mtp.RespInvalidObjectHandle)
			}
			for _, c := range sortedChildren(o) {
				match(c)
			}
			return out, ok()
		}
	}
	return out, ok()
}

// listFolder brings folder o's children up to date for the command running (under e.mu). An
// initiator lists a folder with GetObjectHandles and asks for its objects' properties with
// GetObjectPropList in the very next transaction: like a phone answering from its object
// database, the device reads the folder once for both (a change on the host in between reaches
// the initiator as an event, as it would from a phone). Every other listing reads the folder.
func (r *responder) listFolder(o *object) error {
	t := &r.e.tab
	l := &t.listing
	if r.op == mtp.OpGetObjectPropList && l.session == t.session && t.session != 0 && l.tid+1 == t.lastTID &&
		slices.Contains(l.folders, o) && o.children != nil {
		return nil
	}
	if err := t.enumerate(o); err != nil {
		return err
	}
	if r.op == mtp.OpGetObjectHandles {
		if l.session != t.session || l.tid != t.lastTID {
			*l = listing{session: t.session, tid: t.lastTID}
		}
		l.folders = append(l.folders, o)
	}
	return nil
}

func (r *responder) getObjectHandles(p []uint32) (answer, error) {
	r.e.mu.Lock()
	objs, a := r.selectObjects(param(p, 0), param(p, 1), param(p, 2))
	r.e.mu.Unlock()
	if !a.is(mtp.RespOK) {
		return a, nil
	}
	hs := make([]uint32, len(objs))
	for i, o := range objs {
		hs[i] = o.handle
	}
	return ok(), r.sendBytes(mtp.MarshalHandles(hs))
}

func (r *responder) getNumObjects(p []uint32) (answer, error) {
	r.e.mu.Lock()
	objs, a := r.selectObjects(param(p, 0), param(p, 1), param(p, 2))
	r.e.mu.Unlock()
	if !a.is(mtp.RespOK) {
		return a, nil
	}
	return ok(uint32(len(objs))), nil
}

func objectFormat(o *object) mtp.FormatCode {
	if o.dir {
		return mtp.FormatAssociation
	}
	return mtp.FormatForName(o.name)
}

func parentHandle(o *object) uint32 {
	if o.parent == nil || o.parent.parent == nil {
		return 0
	}
	return o.parent.handle
}

// objectInfo describes o; it records what the initiator is told.
func (r *responder) objectInfo(o *object, fi fs.FileInfo) mtp.ObjectInfo {
	o.record(fi)
	oi := mtp.ObjectInfo{
		StorageID:        o.st.id,
		ObjectFormat:     objectFormat(o),
		ParentObject:     parentHandle(o),
		Filename:         r.e.reportName(o.name),
		CaptureDate:      fi.ModTime(),
		ModificationDate: fi.ModTime(),
	}
	if o.dir {
		oi.AssociationType = mtp.AssociationGenericFolder
	} else {
		oi.CompressedSize = uint32(min(fi.Size(), 0xFFFFFFFF))
	}
	return oi
}

func (r *responder) getObjectInfo(p []uint32) (answer, error) {
	r.e.mu.Lock()
	o, fi := r.e.tab.lookup(param(p, 0))
	var oi mtp.ObjectInfo
	if o != nil {
		oi = r.objectInfo(o, fi)
	}
	r.e.mu.Unlock()
	if o == nil {
		return fail(mtp.RespInvalidObjectHandle), nil
	}
	b, err := oi.MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

// reportName is the name the device reports for an object named name on the host: Names
// applied, cut to the 254 UTF-16 code units a PTP string holds (a 255-byte file name does not
// fit), as phones do.
func (e *Emulator) reportName(name string) string {
	if v, ok := e.opts.Names[name]; ok {
		name = v
	}
	units := 0
	for i, c := range name {
		n := 1
		if c > 0xFFFF {
			n = 2
		}
		if units+n > 254 {
			return name[:i]
		}
		units += n
	}
	return name
}

// openFile opens the file of handle h for reading.
func (r *responder) openFile(h uint32) (*os.File, fs.FileInfo, answer) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	o, fi := r.e.tab.lookup(h)
	if o == nil {
		return nil, nil, fail(mtp.RespInvalidObjectHandle)
	}
	if o.dir {
		return nil, nil, fail(mtp.RespInvalidObjectFormatCode)
	}
	f, err := os.Open(r.e.tab.path(o))
	if err != nil {
		return nil, nil, fail(mtp.RespAccessDenied)
	}
	o.record(fi)
	return f, fi, ok()
}

func (r *responder) getObject(p []uint32) (answer, error) {
	f, fi, a := r.openFile(param(p, 0))
	if f == nil {
		return a, nil
	}
	defer f.Close()
	size := fi.Size()
	short := false
	err := r.sendData(size, func(w *transferWriter) error {
		var err error
		short, err = w.readFrom(fileReader(f, 0, size), size)
		return err
	})
	if err != nil {
		return answer{}, err
	}
	if short {
		return fail(mtp.RespIncompleteTransfer), nil
	}
	return ok(), nil
}

func (r *responder) getPartialObject(p []uint32) (answer, error) {
	off, n := int64(param(p, 1)), int64(param(p, 2))
	if r.op == mtp.OpGetPartialObject64 {
		off |= int64(param(p, 2)) << 32
		n = int64(param(p, 3))
	}
	f, fi, a := r.openFile(param(p, 0))
	if f == nil {
		return a, nil
	}
	defer f.Close()
	if off > fi.Size() {
		return fail(mtp.RespInvalidParameter), nil
	}
	n = min(n, fi.Size()-off)
	short := false
	err := r.sendData(n, func(w *transferWriter) error {
		var err error
		short, err = w.readFrom(fileReader(f, off, n), n)
		return err
	})
	if err != nil {
		return answer{}, err
	}
	if short {
		return fail(mtp.RespIncompleteTransfer), nil
	}
	return ok(uint32(n)), nil
}

func (r *responder) deleteObject(p []uint32) (answer, error) {
	h := param(p, 0)
	if h == 0xFFFFFFFF {
		return fail(mtp.RespParameterNotSupported), nil
	}
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	o, _ := e.tab.lookup(h)
	if o == nil {
		return fail(mtp.RespInvalidObjectHandle), nil
	}
	path := e.tab.path(o)
	var err error
	if o.dir {
		err = os.RemoveAll(path)
	} else {
		err = os.Remove(path)
	}
	if err != nil {
		e.log.Warn("emulator: delete failed", "path", path, "err", err)
		return fail(mtp.RespAccessDenied), nil
	}
	e.tab.remove(o)
	return ok(), nil
}

// validName tells whether the device accepts name for a new file or folder: what the host file
// system accepts in one path component.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") &&
		len(name) <= 255 && !strings.HasPrefix(name, partPrefix)
}

func (r *responder) sendObjectInfo(p []uint32) (answer, error) {
	b, err := r.recvBytes(64 << 10)
	if errors.Is(err, errIncomplete) {
		return fail(mtp.RespIncompleteTransfer), nil
	}
	if err != nil {
		return answer{}, err
	}
	var oi mtp.ObjectInfo
	if err := oi.UnmarshalBinary(b); err != nil {
		return fail(mtp.RespInvalidDataset), nil
	}
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	sid := param(p, 0)
	if sid == 0 {
		sid = e.storages[0].id
	}
	st := t.storage(sid)
	if st == nil {
		return fail(mtp.RespInvalidStorageID), nil
	}
	parent := t.folder(st, param(p, 1))
	if parent == nil {
		return fail(mtp.RespInvalidParentObject), nil
	}
	if !validName(oi.Filename) {
		return fail(mtp.RespInvalidParameter), nil
	}
	if parent.children == nil && e.opts.LateObjects <= 0 {
		// (A device that registers objects late does not read the folder for this, as QEMU's
		// does not: what the initiator creates there has no handle until the folder is listed.)
		if err := t.enumerate(parent); err != nil {
			return fail(mtp.RespInvalidParentObject), nil
		}
	}
	target := filepath.Join(t.path(parent), oi.Filename)
	if _, err := os.Lstat(target); err == nil {
		return fail(mtp.RespGeneralError), nil
	}
	parentParam := param(p, 1)
	if parent == st.root {
		parentParam = 0xFFFFFFFF
	}
	if oi.ObjectFormat == mtp.FormatAssociation {
		if err := os.Mkdir(target, 0o755); err != nil {
			e.log.Warn("emulator: mkdir failed", "path", target, "err", err)
			return fail(mtp.RespAccessDenied), nil
		}
		if !oi.ModificationDate.IsZero() {
			os.Chtimes(target, oi.ModificationDate, oi.ModificationDate)
		}
		fi, err := os.Lstat(target)
		if err != nil {
			return fail(mtp.RespGeneralError), nil
		}
		t.pending = nil
		guess := t.guess(parent, oi.Filename)
		if t.late(parent, oi.Filename, target) {
			return ok(st.id, parentParam, guess), nil
		}
		o := t.add(parent, oi.Filename, fi)
		o.children = map[string]*object{}
		t.pending = nil
		return ok(st.id, parentParam, o.handle), nil
	}
	size := int64(oi.CompressedSize)
	if oi.CompressedSize == 0xFFFFFFFF {
		size = -1
	}
	free, _, err := diskSpace(st.dir)
	if e.opts.FreeSpaceZero || (err == nil && size > 0 && uint64(size) > free) {
		return fail(mtp.RespStoreFull), nil
	}
	h := t.guess(parent, oi.Filename)
	if e.opts.LateObjects <= 0 && t.visible(oi.Filename) && t.prefixOf(parent, oi.Filename) == nil {
		h = t.newHandle()
	}
	t.pending = &pendingSend{handle: h, parent: parent, name: oi.Filename, size: size, mtime: oi.ModificationDate}
	if e.opts.IgnoreDates {
		t.pending.mtime = time.Time{}
	}
	return ok(st.id, parentParam, t.pending.handle), nil
}

// zeros is compared with incoming chunks: all-zero chunks are skipped with a seek, so the
// device writes large sparse files without filling the disk.
var zeros = make([]byte, 1<<20)

func (r *responder) sendObject(p []uint32) (answer, error) {
	e := r.e
	e.mu.Lock()
	ps := e.tab.pending
	e.tab.pending = nil
	var dir string
	if ps != nil {
		dir = e.tab.path(ps.parent)
	}
	e.mu.Unlock()
	if ps == nil {
		if err := r.discardData(); err != nil && !errors.Is(err, errIncomplete) {
			return answer{}, err
		}
		return fail(mtp.RespNoValidObjectInfo), nil
	}
	tmp, err := os.CreateTemp(dir, partName(os.Getpid(), ps.handle))
	if err != nil {
		e.log.Warn("emulator: cannot create a file", "dir", dir, "err", err)
		if err := r.discardData(); err != nil && !errors.Is(err, errIncomplete) {
			return answer{}, err
		}
		return fail(mtp.RespAccessDenied), nil
	}
	written, err := r.receiveFile(tmp)
	if err == nil && ps.size >= 0 && written != ps.size {
		err = fmt.Errorf("%w: %d of %d bytes", errIncomplete, written, ps.size)
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		if e.keepingPartial() {
			e.log.Info("emulator: keeping a partial upload", "name", ps.name, "bytes", written)
			r.install(ps, tmp.Name())
		} else {
			os.Remove(tmp.Name())
		}
		if errors.Is(err, errIncomplete) {
			return fail(mtp.RespIncompleteTransfer), nil
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fail(mtp.RespStoreFull), nil
		}
		return answer{}, err
	}
	if a := r.install(ps, tmp.Name()); !a.is(mtp.RespOK) {
		os.Remove(tmp.Name())
		return a, nil
	}
	return ok(), nil
}

// receiveFile writes SendObject's data phase to f, sparsely where the data is zeros.
func (r *responder) receiveFile(f *os.File) (int64, error) {
	d, err := r.recvData()
	if err != nil {
		return 0, err
	}
	if r.recvBuf == nil {
		r.recvBuf = make([]byte, 1<<20)
	}
	buf := r.recvBuf
	var written int64
	for {
		n, rerr := io.ReadFull(d, buf)
		if n > 0 {
			chunk := buf[:n]
			if bytes.Equal(chunk, zeros[:n]) {
				_, err = f.Seek(int64(n), io.SeekCurrent)
			} else {
				_, err = f.Write(chunk)
			}
			if err != nil {
				return written, err
			}
			written += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return written, rerr
		}
	}
	if err := f.Truncate(written); err != nil {
		return written, err
	}
	return written, d.finish()
}

// install renames an upload into place, keeps its modification date and gives it the handle
// SendObjectInfo announced; a device that registers objects late (or never, for hidden names)
// leaves that to later.
func (r *responder) install(ps *pendingSend, tmp string) answer {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	target := filepath.Join(t.path(ps.parent), ps.name)
	late := t.late(ps.parent, ps.name, target)
	if err := os.Rename(tmp, target); err != nil {
		e.log.Warn("emulator: cannot install an upload", "path", target, "err", err)
		return fail(mtp.RespGeneralError)
	}
	if !ps.mtime.IsZero() {
		if err := os.Chtimes(target, ps.mtime, ps.mtime); err != nil {
			e.log.Warn("emulator: cannot keep the modification date", "path", target, "err", err)
		}
	}
	fi, err := os.Lstat(target)
	if err != nil {
		return fail(mtp.RespGeneralError)
	}
	if old := ps.parent.children[ps.name]; old != nil {
		t.remove(old)
	}
	if late {
		return ok() // registered later, or never (a hidden name)
	}
	if t.byHandle[ps.handle] != nil {
		ps.handle = t.newHandle() // renumbered meanwhile
	}
	o := &object{handle: ps.handle, st: ps.parent.st, parent: ps.parent, name: ps.name}
	o.record(fi)
	if ps.parent.children == nil {
		ps.parent.children = map[string]*object{}
	}
	ps.parent.children[ps.name] = o
	t.byHandle[o.handle] = o
	return ok()
}

func (r *responder) moveObject(p []uint32) (answer, error) {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	o, _ := t.lookup(param(p, 0))
	if o == nil {
		return fail(mtp.RespInvalidObjectHandle), nil
	}
	st := t.storage(param(p, 1))
	if st == nil {
		return fail(mtp.RespInvalidStorageID), nil
	}
	if st != o.st {
		return fail(mtp.RespSpecificationOfDestinationUnsup), nil
	}
	dest := t.folder(st, param(p, 2))
	if dest == nil {
		return fail(mtp.RespInvalidParentObject), nil
	}
	for x := dest; x != nil; x = x.parent {
		if x == o {
			return fail(mtp.RespInvalidParentObject), nil
		}
	}
	if dest.children == nil {
		infos, err := t.readDir(dest)
		if err != nil {
			return fail(mtp.RespInvalidParentObject), nil
		}
		dest.children = map[string]*object{}
		for name, fi := range infos {
			t.add(dest, name, fi)
		}
	}
	target := filepath.Join(t.path(dest), o.name)
	if _, err := os.Lstat(target); err == nil {
		return fail(mtp.RespGeneralError), nil
	}
	if err := os.Rename(t.path(o), target); err != nil {
		e.log.Warn("emulator: move failed", "to", target, "err", err)
		return fail(mtp.RespAccessDenied), nil
	}
	delete(o.parent.children, o.name)
	o.parent = dest
	dest.children[o.name] = o
	return ok(), nil
}

// props are the object properties the device describes, with their types.
var props = []struct {
	code     mtp.PropCode
	typ      mtp.DataType
	writable bool
}{
	{mtp.PropStorageID, mtp.TypeUint32, false},
	{mtp.PropObjectFormat, mtp.TypeUint16, false},
	{mtp.PropProtectionStatus, mtp.TypeUint16, false},
	{mtp.PropObjectSize, mtp.TypeUint64, false},
	{mtp.PropObjectFileName, mtp.TypeString, true},
	{mtp.PropDateModified, mtp.TypeString, true},
	{mtp.PropParentObject, mtp.TypeUint32, false},
	{mtp.PropPersistentUniqueObjectID, mtp.TypeUint128, false},
	{mtp.PropName, mtp.TypeString, false},
}

func propType(code mtp.PropCode) (mtp.DataType, bool, bool) {
	for _, x := range props {
		if x.code == code {
			return x.typ, x.writable, true
		}
	}
	return 0, false, false
}

func (r *responder) getObjectPropsSupported(p []uint32) (answer, error) {
	codes := make([]mtp.PropCode, len(props))
	for i, x := range props {
		codes[i] = x.code
	}
	return ok(), r.sendBytes(mtp.MarshalCodes(codes))
}

func (r *responder) getObjectPropDesc(p []uint32) (answer, error) {
	code := mtp.PropCode(param(p, 0))
	typ, writable, known := propType(code)
	if !known {
		return fail(mtp.RespInvalidObjectPropCode), nil
	}
	d := mtp.PropDesc{Code: code, Type: typ, Writable: writable && !r.e.opts.ReadOnlyProps, Default: mtp.Value{Type: typ}}
	switch code {
	case mtp.PropDateModified:
		d.Form = mtp.FormDateTime
	case mtp.PropProtectionStatus:
		d.Form = mtp.FormEnum
		d.Enum = []mtp.Value{mtp.UintValue(typ, 0), mtp.UintValue(typ, 1)}
	case mtp.PropObjectFileName:
		d.Form = mtp.FormLongString
		d.MaxLength = 255
	}
	b, err := d.MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

// propValue returns o's value of property code, from its recorded size and time.
func (r *responder) propValue(o *object, code mtp.PropCode) (mtp.Value, bool) {
	typ, _, known := propType(code)
	if !known {
		return mtp.Value{}, false
	}
	v := mtp.Value{Type: typ}
	switch code {
	case mtp.PropStorageID:
		v.Int = uint64(o.st.id)
	case mtp.PropObjectFormat:
		v.Int = uint64(objectFormat(o))
	case mtp.PropObjectSize:
		v.Int = uint64(o.size)
	case mtp.PropObjectFileName, mtp.PropName:
		v.Str = r.e.reportName(o.name)
	case mtp.PropDateModified:
		v.Str = mtp.FormatDate(o.mtime)
	case mtp.PropParentObject:
		v.Int = uint64(parentHandle(o))
	case mtp.PropPersistentUniqueObjectID:
		sum := sha256.Sum256([]byte(r.e.tab.path(o)))
		copy(v.Wide[:], sum[:16])
	}
	return v, true
}

func (r *responder) getObjectPropValue(p []uint32) (answer, error) {
	r.e.mu.Lock()
	o, fi := r.e.tab.lookup(param(p, 0))
	var v mtp.Value
	known := false
	if o != nil {
		o.record(fi)
		v, known = r.propValue(o, mtp.PropCode(param(p, 1)))
	}
	r.e.mu.Unlock()
	switch {
	case o == nil:
		return fail(mtp.RespInvalidObjectHandle), nil
	case !known:
		return fail(mtp.RespInvalidObjectPropCode), nil
	}
	b, err := mtp.MarshalValue(v)
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

func (r *responder) setObjectPropValue(p []uint32) (answer, error) {
	b, err := r.recvBytes(64 << 10)
	if errors.Is(err, errIncomplete) {
		return fail(mtp.RespIncompleteTransfer), nil
	}
	if err != nil {
		return answer{}, err
	}
	code := mtp.PropCode(param(p, 1))
	typ, writable, known := propType(code)
	if !known {
		return fail(mtp.RespInvalidObjectPropCode), nil
	}
	if !writable {
		return fail(mtp.RespAccessDenied), nil
	}
	v, err := mtp.UnmarshalValue(b, typ)
	if err != nil {
		return fail(mtp.RespInvalidObjectPropFormat), nil
	}
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	t := &e.tab
	o, _ := t.lookup(param(p, 0))
	if o == nil {
		return fail(mtp.RespInvalidObjectHandle), nil
	}
	path := t.path(o)
	switch code {
	case mtp.PropObjectFileName:
		if !validName(v.Str) {
			return fail(mtp.RespInvalidObjectPropValue), nil
		}
		if v.Str == o.name {
			return ok(), nil
		}
		target := filepath.Join(filepath.Dir(path), v.Str)
		if _, err := os.Lstat(target); err == nil {
			return fail(mtp.RespGeneralError), nil
		}
		if err := os.Rename(path, target); err != nil {
			return fail(mtp.RespAccessDenied), nil
		}
		if o.parent.children != nil {
			delete(o.parent.children, o.name)
			o.parent.children[v.Str] = o
		}
		o.name = v.Str
	case mtp.PropDateModified:
		mt, err := mtp.ParseDate(v.Str)
		if err != nil || mt.IsZero() {
			return fail(mtp.RespInvalidObjectPropValue), nil
		}
		if err := os.Chtimes(path, mt, mt); err != nil {
			return fail(mtp.RespAccessDenied), nil
		}
		if fi, err := os.Lstat(path); err == nil {
			o.record(fi)
		}
	}
	return ok(), nil
}

func (r *responder) getObjectPropList(p []uint32) (answer, error) {
	if r.e.opts.PropList == PropListBroken {
		return fail(mtp.RespOperationNotSupported), nil
	}
	h, format, code, group, depth := param(p, 0), param(p, 1), param(p, 2), param(p, 3), param(p, 4)
	var codes []mtp.PropCode
	switch {
	case code == 0xFFFFFFFF:
		for _, x := range props {
			codes = append(codes, x.code)
		}
	case code == 0 && group == 0:
		return fail(mtp.RespSpecificationByGroupUnsupported), nil
	case code == 0:
		return fail(mtp.RespGroupNotSupported), nil
	default:
		if _, _, known := propType(mtp.PropCode(code)); !known {
			return fail(mtp.RespInvalidObjectPropCode), nil
		}
		codes = []mtp.PropCode{mtp.PropCode(code)}
	}
	e := r.e
	e.mu.Lock()
	t := &e.tab
	var objs []*object
	var a answer
	switch {
	case depth == 0 && h == 0xFFFFFFFF:
		objs, a = r.selectObjects(0xFFFFFFFF, format, 0)
	case depth == 0:
		if o, fi := t.lookup(h); o != nil {
			o.record(fi)
			objs, a = []*object{o}, ok()
		} else {
			a = fail(mtp.RespInvalidObjectHandle)
		}
	case depth == 1 && (h == 0 || h == 0xFFFFFFFF):
		objs, a = r.selectObjects(0xFFFFFFFF, format, 0xFFFFFFFF)
	case depth == 1:
		if o, _ := t.lookup(h); o == nil {
			a = fail(mtp.RespInvalidObjectHandle)
		} else {
			objs, a = r.selectObjects(o.st.id, format, h)
		}
	default:
		a = fail(mtp.RespSpecificationByDepthUnsupported)
	}
	// Enumerating (or looking up) the objects just brought their sizes and times up to date.
	var list mtp.PropList
	for _, o := range objs {
		for _, c := range codes {
			if v, ok := r.propValue(o, c); ok {
				list = append(list, mtp.PropListEntry{Handle: o.handle, Code: c, Value: v})
			}
		}
	}
	e.mu.Unlock()
	if !a.is(mtp.RespOK) {
		return a, nil
	}
	b, err := list.MarshalBinary()
	if err != nil {
		return answer{}, err
	}
	return ok(), r.sendBytes(b)
}

// event queues an MTP event about handle h (only inside a session); the caller holds e.mu.
func (e *Emulator) event(code mtp.EventCode, h uint32) {
	if e.tab.session == 0 {
		return
	}
	b, _ := mtp.Container{Type: mtp.ContainerEvent, Code: uint16(code), Params: []uint32{h}}.MarshalBinary()
	e.intr.push(b)
}
