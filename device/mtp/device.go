package mtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cradle-sync/cradle/device"
)

// Options tunes Open.
type Options struct {
	// Logger receives warnings (objects skipped for unsafe names, recoveries) and debug traces;
	// nil means slog.Default().
	Logger *slog.Logger
	// Transport is reported in Info.Transport: "mtp-usb" when empty; the emulator says
	// "mtp-emulated".
	Transport string
	// Serial is used when the device reports no serial number (the USB descriptor's serial).
	Serial string
	// EventBuffer is the capacity of the Events channel; 256 when zero.
	EventBuffer int
	// NoZeroLengthOut omits the zero-length packet that ends a data phase to the device when it
	// fills whole packets. Set it for QEMU's usb-mtp (46f4:0004), which stalls on one; other
	// devices (Android) need it. A device that stalls on one is also detected: its first such
	// transfer fails, the next ones go without.
	NoZeroLengthOut bool
}

// Timing of the event loop and of the path cache.
const (
	// eventPoll is the deadline of each interrupt read: QEMU's xHCI never completes a long
	// pending interrupt read, so the loop re-submits a short one.
	eventPoll = 250 * time.Millisecond
	// listFresh is how long a folder's listing is trusted to answer "no such child" without
	// asking the device again (events keep it up to date in between).
	listFresh = time.Second
	// partialChunk is the size of each GetPartialObject transaction of a reader from Open:
	// large for throughput, bounded so other calls get the device between chunks.
	partialChunk = 4 << 20
	// closeWait bounds how long Close waits for a transaction in progress before it closes the
	// transport under it.
	closeWait = 2 * time.Second
)

// Device is an MTP device behind a Transport; it implements device.Device with a path-based
// API over MTP's object handles, which it caches per session and never exposes.
//
// Concurrency: every method is safe for use from several goroutines. One lock serialises the
// device's transactions (MTP allows one at a time): a call waits for the one in progress and
// gives up when its context ends. A reader from Open holds the lock only while it fetches a
// chunk, except on devices without GetPartialObject, where it holds it until it is read to the
// end or closed. One goroutine, started by Open and stopped by Close, reads events.
//
// Once the device is gone (unplugged, or it stopped answering), every method returns an error
// wrapping device.ErrDisconnected, and Events delivers DeviceGone and is closed.
type Device struct {
	conn    *conn
	log     *slog.Logger
	info    device.Info
	devInfo DeviceInfo

	sem chan struct{} // the transaction lock; the fields below are guarded by it
	// propList is true while GetObjectPropList is offered and has worked.
	propList bool
	// setDate is false once the device refused to set DateModified.
	setDate bool
	cache   *cache
	// skippedHandles are the objects already counted in skipped.
	skippedHandles map[uint32]bool
	// lateObjects is set once the device did not show a new object behind the handle
	// SendObjectInfo answered: it registers new objects late (see created).
	lateObjects bool
	// session counts the sessions renewed since Open: handles from an earlier one mean nothing.
	session uint64

	events   chan device.Event
	overflow bool // guarded by the event loop: the next event to send is EventOverflow
	lost     atomic.Int64
	skipped  atomic.Int64

	// streams are the GetObject readers in progress; Close ends them.
	streamMu sync.Mutex
	streams  map[*streamReader]bool

	stopLoop  context.CancelFunc
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ device.Device = (*Device)(nil)

// Open talks to the MTP device behind t: it discards what a crashed predecessor may have left
// in the pipe, reads DeviceInfo, opens a session (closing and reopening one that is already
// open, retrying while the device answers DeviceBusy) and starts the event loop. Open owns t
// from then on: Close closes it, and so does Open when it fails. An error wraps device.ErrBusy
// when the device stayed busy.
func Open(ctx context.Context, t Transport, opts Options) (*Device, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.EventBuffer < 4 {
		opts.EventBuffer = 256
	}
	if opts.Transport == "" {
		opts.Transport = "mtp-usb"
	}
	c := newConn(t, log)
	c.noZLPOut = opts.NoZeroLengthOut
	d := &Device{
		conn:           c,
		log:            log,
		sem:            make(chan struct{}, 1),
		setDate:        true,
		cache:          newCache(),
		skippedHandles: map[uint32]bool{},
		events:         make(chan device.Event, opts.EventBuffer),
		loopDone:       make(chan struct{}),
		streams:        map[*streamReader]bool{},
	}
	dctx, cancel := context.WithTimeout(ctx, resetWait)
	d.conn.drain(dctx)
	cancel()
	if err := d.start(ctx, opts); err != nil {
		t.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	d.stopLoop = stop
	go d.loop(lctx)
	return d, nil
}

func (d *Device) start(ctx context.Context, opts Options) error {
	b, _, err := d.conn.dataset(ctx, OpGetDeviceInfo)
	if err != nil {
		return fmt.Errorf("read the device information: %w", err)
	}
	if err := d.devInfo.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("read the device information: %w", err)
	}
	if err := d.openSession(ctx); err != nil {
		return fmt.Errorf("open a session with %s %s: %w", d.devInfo.Manufacturer, d.devInfo.Model, err)
	}
	serial := strings.TrimSpace(d.devInfo.SerialNumber)
	if serial == "" {
		serial = opts.Serial
	}
	d.info = device.Info{
		Serial:       serial,
		Manufacturer: strings.TrimSpace(d.devInfo.Manufacturer),
		Model:        strings.TrimSpace(d.devInfo.Model),
		Version:      strings.TrimSpace(d.devInfo.DeviceVersion),
		Kind:         GuessKind(&d.devInfo),
		Transport:    opts.Transport,
	}
	d.propList = d.devInfo.Supports(OpGetObjectPropList)
	return nil
}

// sessionID is the ID Cradle opens its sessions with.
const sessionID = 1

// openSession opens the session. A session already open (a program that crashed, another
// initiator) is closed and opened again, or reused when the device refuses to close it.
func (d *Device) openSession(ctx context.Context) error {
	c := d.conn
	_, err := c.do(ctx, call{op: OpOpenSession, params: []uint32{sessionID}})
	if isResponse(err, RespSessionAlreadyOpen) {
		d.log.Info("mtp: a session was already open; closing it and opening a new one")
		c.inSess, c.tid = true, 1
		if _, cerr := c.do(ctx, call{op: OpCloseSession}); cerr != nil {
			d.log.Debug("mtp: closing the old session failed", "err", cerr)
		}
		c.inSess = false
		_, err = c.do(ctx, call{op: OpOpenSession, params: []uint32{sessionID}})
		if isResponse(err, RespSessionAlreadyOpen) {
			d.log.Info("mtp: reusing the session that was already open")
			err = nil
		}
	}
	if err != nil {
		return err
	}
	c.inSess, c.tid = true, 1
	return nil
}

// Info returns what the device says it is.
func (d *Device) Info() device.Info { return d.info }

// DeviceInfo returns the DeviceInfo dataset the device sent at Open.
func (d *Device) DeviceInfo() DeviceInfo { return d.devInfo }

// Skipped returns how many objects were left out of listings in this session because their
// names were unsafe (device.CheckName) or duplicated; each is counted (and logged) once.
func (d *Device) Skipped() int64 { return d.skipped.Load() }

// skip counts and logs an object left out of listings, once per object and session.
func (d *Device) skip(h uint32, msg string, args ...any) {
	if d.skippedHandles[h] {
		return
	}
	d.skippedHandles[h] = true
	d.skipped.Add(1)
	d.log.Warn(msg, args...)
}

// Lost returns how many events were dropped because the Events reader was slow.
func (d *Device) Lost() int64 { return d.lost.Load() }

// lock takes the transaction lock, or gives up when ctx ends or the device is gone.
func (d *Device) lock(ctx context.Context) error {
	if err := d.conn.gone(); err != nil {
		return err
	}
	select {
	case d.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the device: %w", ctx.Err())
	case <-d.conn.goneCh:
		return d.conn.gone()
	}
}

func (d *Device) unlock() { <-d.sem }

// locked runs fn under the lock. When the device answers that a handle is invalid (it
// renumbered its objects behind Cradle's back), the path cache is dropped and fn runs once more,
// unless fn returned a *final error (it did something that must not be done twice).
func (d *Device) locked(ctx context.Context, fn func() error) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.unlock()
	err := fn()
	if f, ok := err.(*final); ok {
		return f.err
	}
	if isResponse(err, RespInvalidObjectHandle, RespInvalidParentObject) {
		d.log.Info("mtp: the device renumbered its objects; forgetting cached handles", "err", err)
		d.cache.reset()
		err = fn()
		if f, ok := err.(*final); ok {
			return f.err
		}
	}
	return err
}

// final is an error after which locked must not run its function again: a data phase was sent,
// so its reader is consumed and the device may hold the object already.
type final struct{ err error }

func (e *final) Error() string { return e.err.Error() }
func (e *final) Unwrap() error { return e.err }

// Storages returns the device's storages. Storages without media (an empty card slot) are left
// out; free space is never reported above capacity. A phone that is locked or set to "charging
// only" typically reports none.
func (d *Device) Storages(ctx context.Context) ([]device.Storage, error) {
	var out []device.Storage
	err := d.locked(ctx, func() error {
		out = nil
		b, _, err := d.conn.dataset(ctx, OpGetStorageIDs)
		if err != nil {
			return err
		}
		ids, err := UnmarshalHandles(b)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if id&0xFFFF == 0 {
				continue // a logical storage without media
			}
			b, _, err := d.conn.dataset(ctx, OpGetStorageInfo, id)
			if isResponse(err, RespStoreNotAvailable, RespInvalidStorageID) {
				continue
			}
			if err != nil {
				return err
			}
			var si StorageInfo
			if err := si.UnmarshalBinary(b); err != nil {
				return err
			}
			desc := strings.TrimSpace(si.StorageDescription)
			if desc == "" {
				desc = strings.TrimSpace(si.VolumeLabel)
			}
			if desc == "" {
				desc = fmt.Sprintf("Storage %08X", id)
			}
			out = append(out, device.Storage{
				ID:          device.StorageID(id),
				Description: desc,
				Free:        min(si.FreeSpaceInBytes, si.MaxCapacity),
				Capacity:    si.MaxCapacity,
				ReadOnly:    si.AccessCapability != AccessReadWrite,
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the storages: %w", err)
	}
	return out, nil
}

// objectInfo asks the device about one object; a size of 0xFFFFFFFF (4 GiB or more) is asked
// again as the 64-bit ObjectSize property.
func (d *Device) objectInfo(ctx context.Context, h uint32) (entry, error) {
	b, _, err := d.conn.dataset(ctx, OpGetObjectInfo, h)
	if err != nil {
		return entry{}, err
	}
	var oi ObjectInfo
	if err := oi.UnmarshalBinary(b); err != nil {
		return entry{}, fmt.Errorf("%v: %w", OpGetObjectInfo, err)
	}
	e := entry{
		handle:  h,
		storage: device.StorageID(oi.StorageID),
		parent:  oi.ParentObject,
		name:    oi.Filename,
		dir:     oi.IsFolder(),
		size:    int64(oi.CompressedSize),
		mtime:   oi.ModificationDate,
	}
	if e.dir {
		e.size = 0
	} else if oi.CompressedSize == 0xFFFFFFFF {
		if size, err := d.objectSize(ctx, h); err == nil {
			e.size = size
		} else {
			d.log.Warn("mtp: the device reports a size of 4 GiB or more and no exact size", "name", device.SafeName(e.name), "err", err)
		}
	}
	return e, nil
}

// objectSize reads the 64-bit ObjectSize property.
func (d *Device) objectSize(ctx context.Context, h uint32) (int64, error) {
	if !d.devInfo.Supports(OpGetObjectPropValue) {
		return 0, fmt.Errorf("%v: %w", OpGetObjectPropValue, device.ErrUnsupported)
	}
	b, _, err := d.conn.dataset(ctx, OpGetObjectPropValue, h, uint32(PropObjectSize))
	if err != nil {
		return 0, err
	}
	v, err := UnmarshalValue(b, TypeUint64)
	if err != nil {
		return 0, err
	}
	return int64(v.Int), nil
}

// handles lists the objects in a folder (GetObjectHandles).
func (d *Device) handles(ctx context.Context, n *node) ([]uint32, error) {
	b, _, err := d.conn.dataset(ctx, OpGetObjectHandles, uint32(n.storage), 0, n.param())
	if isResponse(err, RespInvalidStorageID) {
		return nil, fmt.Errorf("no storage %08X on the device: %w", uint32(n.storage), device.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return UnmarshalHandles(b)
}

// propListRefusals are the answers that mean a device's GetObjectPropList does not work the way
// Cradle asks (QEMU answers OperationNotSupported although it is not offered; others refuse a
// depth or the "all properties" code).
var propListRefusals = []ResponseCode{
	RespOperationNotSupported, RespParameterNotSupported, RespInvalidParameter, RespGeneralError,
	RespSpecificationByDepthUnsupported, RespSpecificationByGroupUnsupported, RespSpecificationByFormatUnsupp,
	RespInvalidObjectPropCode, RespObjectPropNotSupported, RespGroupNotSupported, RespInvalidCodeFormat,
}

// propListEntries asks for every property of n's children in one GetObjectPropList and returns
// the children it fully describes. A device whose property lists fail or describe nothing is
// not asked again in this session.
func (d *Device) propListEntries(ctx context.Context, n *node, want int) (map[uint32]entry, error) {
	h := n.handle
	if n.isRoot() {
		h = 0
	}
	b, _, err := d.conn.dataset(ctx, OpGetObjectPropList, h, 0, 0xFFFFFFFF, 0, 1)
	var l PropList
	if err == nil {
		err = l.UnmarshalBinary(b)
	}
	if err != nil {
		if isResponse(err, propListRefusals...) || errors.Is(err, ErrMalformed) {
			d.log.Info("mtp: property lists do not work on this device; listing object by object", "err", err)
			d.propList = false
			return nil, nil
		}
		return nil, err
	}
	type acc struct {
		e                         entry
		name, format, size, mtime bool
	}
	byHandle := make(map[uint32]*acc)
	for _, x := range l {
		a := byHandle[x.Handle]
		if a == nil {
			a = &acc{e: entry{handle: x.Handle, storage: n.storage, parent: n.param()}}
			byHandle[x.Handle] = a
		}
		switch x.Code {
		case PropObjectFileName:
			a.e.name, a.name = x.Value.Str, x.Value.Type == TypeString
		case PropObjectFormat:
			a.e.dir, a.format = FormatCode(x.Value.Int) == FormatAssociation, true
		case PropObjectSize:
			// A 32-bit size of 0xFFFFFFFF means "4 GiB or more": GetObjectInfo then asks again.
			a.e.size = int64(x.Value.Int)
			a.size = scalarSize(x.Value.Type) == 8 || (scalarSize(x.Value.Type) == 4 && x.Value.Int != 0xFFFFFFFF)
		case PropDateModified:
			t, err := ParseDate(x.Value.Str)
			a.e.mtime, a.mtime = t, err == nil
		case PropStorageID:
			a.e.storage = device.StorageID(x.Value.Int)
		case PropParentObject:
			a.e.parent = uint32(x.Value.Int)
		}
	}
	out := make(map[uint32]entry, len(byHandle))
	for h, a := range byHandle {
		if a.name && a.format && (a.size || a.e.dir) && a.mtime && a.e.storage == n.storage &&
			(a.e.parent == n.param() || (n.isRoot() && isRootParent(a.e.parent))) {
			if a.e.dir {
				a.e.size = 0
			}
			out[h] = a.e
		}
	}
	if len(out) == 0 && want > 0 {
		d.log.Info("mtp: the device's property lists describe no object; listing object by object")
		d.propList = false
	}
	return out, nil
}

// listDir asks the device for n's children, brings the cache up to date and returns them.
// Objects with unsafe names are skipped, logged and counted. With quick, objects already cached
// are not asked about again (a refresh after a cache miss).
func (d *Device) listDir(ctx context.Context, n *node, quick bool) ([]entry, error) {
	hs, err := d.handles(ctx, n)
	if err != nil {
		return nil, err
	}
	var known map[uint32]entry
	if quick && n.children != nil {
		known = make(map[uint32]entry, len(n.children))
		for _, ch := range n.children {
			known[ch.handle] = entry{handle: ch.handle, storage: ch.storage, name: ch.name, dir: ch.dir}
		}
	}
	var fromList map[uint32]entry
	unknown := len(hs) - len(known)
	if d.propList && unknown > 1 {
		if fromList, err = d.propListEntries(ctx, n, len(hs)); err != nil {
			return nil, err
		}
	}
	entries := make([]entry, 0, len(hs))
	seen := make(map[string]bool, len(hs))
	for _, h := range hs {
		e, ok := known[h]
		if !ok {
			e, ok = fromList[h]
		}
		if !ok {
			e, err = d.objectInfo(ctx, h)
			if isResponse(err, RespInvalidObjectHandle) {
				continue // gone since the device listed it
			}
			if err != nil {
				return nil, err
			}
		}
		if err := device.CheckName(e.name); err != nil {
			d.skip(e.handle, "mtp: skipping an object with an unsafe name", "folder", n.path(), "name", device.SafeName(e.name), "err", err)
			continue
		}
		if seen[e.name] {
			d.skip(e.handle, "mtp: skipping a second object of the same name", "folder", n.path(), "name", e.name)
			continue
		}
		seen[e.name] = true
		entries = append(entries, e)
	}
	d.cache.setChildren(n, entries, time.Now())
	return entries, nil
}

// resolve finds the node of a clean path, listing folders that are not cached yet.
func (d *Device) resolve(ctx context.Context, s device.StorageID, p string) (*node, error) {
	n := d.cache.root(s)
	if p == "" {
		return n, nil
	}
	for name := range strings.SplitSeq(p, "/") {
		if !n.dir {
			return nil, fmt.Errorf("%s is not a folder: %w", n.path(), device.ErrNotFound)
		}
		child, err := d.child(ctx, n, name)
		if err != nil {
			return nil, err
		}
		if child == nil {
			return nil, fmt.Errorf("%s: %w", joinPath(n.path(), name), device.ErrNotFound)
		}
		n = child
	}
	return n, nil
}

// child returns n's child called name, or nil. A miss is trusted only when n was listed less
// than listFresh ago; otherwise n is refreshed first.
func (d *Device) child(ctx context.Context, n *node, name string) (*node, error) {
	if ch := n.children[name]; ch != nil {
		return ch, nil
	}
	if n.children != nil && time.Since(n.listed) < listFresh {
		return nil, nil
	}
	if _, err := d.listDir(ctx, n, true); err != nil {
		return nil, err
	}
	return n.children[name], nil
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func splitPath(p string) (dir, name string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

func (d *Device) object(s device.StorageID, p string, e entry) device.Object {
	_, name := splitPath(p)
	return device.Object{Storage: s, Path: p, Name: name, Dir: e.dir, Size: e.size, ModTime: e.mtime}
}

// List returns the children of the folder dir, sorted by name, fresh from the device.
func (d *Device) List(ctx context.Context, s device.StorageID, dir string) ([]device.Object, error) {
	dir, err := device.CheckPath(dir)
	if err != nil {
		return nil, err
	}
	var out []device.Object
	err = d.locked(ctx, func() error {
		n, err := d.resolve(ctx, s, dir)
		if err != nil {
			return err
		}
		if !n.dir {
			return fmt.Errorf("%s is not a folder: %w", dir, device.ErrNotFound)
		}
		entries, err := d.listDir(ctx, n, false)
		if err != nil {
			return err
		}
		out = make([]device.Object, len(entries))
		for i, e := range entries {
			out[i] = d.object(s, joinPath(dir, e.name), e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q on the device: %w", dir, err)
	}
	slices.SortFunc(out, func(a, b device.Object) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Stat returns the object at p, fresh from the device; the storage root is a folder with an
// empty path.
func (d *Device) Stat(ctx context.Context, s device.StorageID, p string) (device.Object, error) {
	p, err := device.CheckPath(p)
	if err != nil {
		return device.Object{}, err
	}
	var obj device.Object
	err = d.locked(ctx, func() error {
		var err error
		obj, err = d.stat(ctx, s, p)
		return err
	})
	if err != nil {
		return device.Object{}, fmt.Errorf("stat %q on the device: %w", p, err)
	}
	return obj, nil
}

// stat resolves p and asks the device about it, checking that the cached handle still names
// the object (a device that renumbered may have given it to another).
func (d *Device) stat(ctx context.Context, s device.StorageID, p string) (device.Object, error) {
	if p == "" {
		if _, err := d.handles(ctx, d.cache.root(s)); err != nil {
			return device.Object{}, err
		}
		return device.Object{Storage: s, Dir: true}, nil
	}
	n, err := d.resolve(ctx, s, p)
	if err != nil {
		return device.Object{}, err
	}
	e, err := d.objectInfo(ctx, n.handle)
	if err == nil && (e.name != n.name || e.dir != n.dir) {
		err = &ResponseError{Op: OpGetObjectInfo, Code: RespInvalidObjectHandle}
	}
	if err != nil {
		return device.Object{}, err
	}
	return d.object(s, p, e), nil
}

// Walk calls fn for every object below dir, parents before children, each folder's children
// sorted by name. fn returning fs.SkipDir skips a folder's contents (or, for a file, the rest of
// its folder); fs.SkipAll ends the walk. Walk does not hold the device while fn runs.
func (d *Device) Walk(ctx context.Context, s device.StorageID, dir string, fn func(device.Object) error) error {
	err := d.walk(ctx, s, dir, fn)
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

func (d *Device) walk(ctx context.Context, s device.StorageID, dir string, fn func(device.Object) error) error {
	objs, err := d.List(ctx, s, dir)
	if err != nil {
		return err
	}
	for _, o := range objs {
		err := fn(o)
		if errors.Is(err, fs.SkipDir) {
			if o.Dir {
				continue
			}
			return nil
		}
		if err != nil {
			return err
		}
		if o.Dir {
			if err := d.walk(ctx, s, o.Path, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Open returns the content of the file at p from offset on. Where the device offers
// GetPartialObject (or Android's GetPartialObject64, needed beyond 4 GiB) the reader fetches
// chunks in separate transactions and offset costs nothing; otherwise it streams one GetObject,
// skipping offset bytes, and holds the device until it is read to the end or closed.
func (d *Device) Open(ctx context.Context, s device.StorageID, p string, offset int64) (io.ReadCloser, error) {
	p, err := device.CheckPath(p)
	if err != nil {
		return nil, err
	}
	var (
		h       uint32
		size    int64
		session uint64
	)
	err = d.locked(ctx, func() error {
		n, err := d.resolve(ctx, s, p)
		if err != nil {
			return err
		}
		if n.dir {
			return fmt.Errorf("it is a folder: %w", device.ErrUnsupported)
		}
		e, err := d.objectInfo(ctx, n.handle)
		if err == nil && e.name != n.name {
			err = &ResponseError{Op: OpGetObjectInfo, Code: RespInvalidObjectHandle}
		}
		h, size, session = n.handle, e.size, d.session
		return err
	})
	if err == nil && (offset < 0 || offset > size) {
		err = fmt.Errorf("offset %d is outside the object's %d bytes", offset, size)
	}
	if err != nil {
		return nil, fmt.Errorf("open %q on the device: %w", p, err)
	}
	switch {
	case d.devInfo.Supports(OpGetPartialObject64):
		return &partialReader{ctx: ctx, d: d, storage: s, path: p, handle: h, session: session, size: size, off: offset, wide: true}, nil
	case d.devInfo.Supports(OpGetPartialObject) && size < 0xFFFFFFFF:
		return &partialReader{ctx: ctx, d: d, storage: s, path: p, handle: h, session: session, size: size, off: offset}, nil
	}
	return d.stream(ctx, p, h, size, offset), nil
}

// partialReader reads an object in GetPartialObject(64) chunks.
type partialReader struct {
	ctx     context.Context // the Open call's: a reader outlives no more than its caller wants
	d       *Device
	storage device.StorageID
	path    string
	handle  uint32
	session uint64 // the Device's session handle belongs to
	size    int64
	off     int64
	wide    bool
	buf     bytes.Buffer
	pending []byte
	closed  bool
}

// Read implements io.Reader, fetching a chunk when the last one is used up.
func (r *partialReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("read %q from the device: %w", r.path, fs.ErrClosed)
	}
	if len(r.pending) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		if err := r.fetch(); err != nil {
			return 0, fmt.Errorf("read %q from the device at offset %d: %w", r.path, r.off, err)
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

func (r *partialReader) fetch() error {
	want := min(int64(partialChunk), r.size-r.off)
	op := OpGetPartialObject
	if r.wide {
		op = OpGetPartialObject64
	}
	var resp Container
	stale := false
	err := r.d.locked(r.ctx, func() error {
		if stale || r.session != r.d.session {
			// The device renumbered its objects, or a new session did: find the object again.
			if err := r.refind(); err != nil {
				return err
			}
		}
		params := []uint32{r.handle, uint32(r.off), uint32(want)}
		if r.wide {
			params = []uint32{r.handle, uint32(r.off), uint32(r.off >> 32), uint32(want)}
		}
		r.buf.Reset()
		var err error
		resp, err = r.d.conn.do(r.ctx, call{op: op, params: params, expect: want, recv: func(rd io.Reader) error {
			_, err := io.Copy(&r.buf, io.LimitReader(rd, want))
			return err
		}})
		stale = isResponse(err, RespInvalidObjectHandle)
		return err
	})
	if err != nil {
		return err
	}
	got := int64(r.buf.Len())
	if sent := resp.Param(0); len(resp.Params) > 0 && int64(sent) != got {
		return fmt.Errorf("%w: %v announced %d bytes and sent %d", ErrProtocol, op, sent, got)
	}
	if got == 0 {
		return fmt.Errorf("the object ended at %d of %d bytes (it changed on the device): %w", r.off, r.size, io.ErrUnexpectedEOF)
	}
	r.pending = r.buf.Bytes()
	r.off += got
	return nil
}

// refind looks up the reader's object by its path after its handle went stale, and takes the
// new handle if the object is the same size (else it changed: the read fails). It runs under the
// lock.
func (r *partialReader) refind() error {
	n, err := r.d.resolve(r.ctx, r.storage, r.path)
	if err != nil {
		return err
	}
	e, err := r.d.objectInfo(r.ctx, n.handle)
	if err != nil {
		return err
	}
	if e.dir || e.name != n.name || e.size != r.size {
		return fmt.Errorf("the object changed on the device while it was read: %w", io.ErrUnexpectedEOF)
	}
	r.handle, r.session = n.handle, r.d.session
	return nil
}

// Close ends the reader; the device holds nothing for it between chunks.
func (r *partialReader) Close() error {
	r.closed = true
	r.pending = nil
	return nil
}

// stream reads an object with one GetObject, in a goroutine that holds the device until the
// data phase is over: read to the end, or abandoned by Close.
func (d *Device) stream(ctx context.Context, p string, h uint32, size, offset int64) io.ReadCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	sr := &streamReader{PipeReader: pr, pw: pw, done: done}
	d.streamMu.Lock()
	d.streams[sr] = true
	d.streamMu.Unlock()
	go func() {
		defer close(done)
		defer func() {
			d.streamMu.Lock()
			delete(d.streams, sr)
			d.streamMu.Unlock()
		}()
		var copied int64
		err := d.locked(ctx, func() error {
			copied = 0
			_, err := d.conn.do(ctx, call{op: OpGetObject, params: []uint32{h}, expect: size, recv: func(r io.Reader) error {
				if _, err := io.CopyN(io.Discard, r, offset); err != nil {
					return err
				}
				var err error
				copied, err = io.Copy(pw, r)
				return err
			}})
			return err
		})
		if err == nil && copied != size-offset {
			err = fmt.Errorf("%w: the device sent %d of %d bytes", io.ErrUnexpectedEOF, copied, size-offset)
		}
		if err != nil {
			err = fmt.Errorf("read %q from the device: %w", p, err)
		}
		pw.CloseWithError(err)
	}()
	return sr
}

type streamReader struct {
	*io.PipeReader
	pw   *io.PipeWriter
	done chan struct{}
}

// Close abandons the transfer and waits until the device is free again.
func (r *streamReader) Close() error {
	r.PipeReader.Close()
	<-r.done
	return nil
}

// mkdirAll returns the node of folder p, creating it and its missing parents.
func (d *Device) mkdirAll(ctx context.Context, s device.StorageID, p string) (*node, error) {
	n := d.cache.root(s)
	if p == "" {
		return n, nil
	}
	for name := range strings.SplitSeq(p, "/") {
		child, err := d.child(ctx, n, name)
		if err != nil {
			return nil, err
		}
		if child == nil {
			if child, err = d.mkdir(ctx, n, name); err != nil {
				return nil, err
			}
		} else if !child.dir {
			return nil, fmt.Errorf("%s is a file, not a folder: %w", child.path(), device.ErrExists)
		}
		n = child
	}
	return n, nil
}

// mkdir creates the folder name in parent with SendObjectInfo (an association needs no
// SendObject). The handle the device answers is not trusted (see created); once the folder is
// found, it is listed, so that a device that registers only objects in folders it has read
// (QEMU's usb-mtp) knows it and what is sent into it.
func (d *Device) mkdir(ctx context.Context, parent *node, name string) (*node, error) {
	oi := ObjectInfo{
		StorageID:        uint32(parent.storage),
		ObjectFormat:     FormatAssociation,
		AssociationType:  AssociationGenericFolder,
		ParentObject:     parentField(parent),
		Filename:         name,
		ModificationDate: time.Now(),
	}
	h, err := d.sendObjectInfo(ctx, parent, &oi)
	if err != nil {
		return nil, err
	}
	parent, e, err := d.created(ctx, parent, h, name, true, 0)
	if err != nil {
		return nil, err
	}
	n := d.cache.add(parent, e)
	if _, err := d.listDir(ctx, n, false); err != nil {
		return nil, err
	}
	return n, nil
}

// Finding a new object. The handle SendObjectInfo answers is not trusted: some devices register
// a new object only when they notice it (QEMU's usb-mtp, when inotify reports it, and only in a
// folder the session listed), so that handle is their guess of the next free one, unknown for a
// moment, unknown for good, or given to another object in the meantime (QEMU also answers with
// an existing object's handle when the new name is a prefix of its name). The initiator checks
// the object behind it and otherwise looks for the new object by name in fresh listings of its
// folder, waiting a little between them.
const (
	// findFirstWait is the first wait between two looks; each next one doubles, up to
	// findMaxWait.
	findFirstWait = 5 * time.Millisecond
	findMaxWait   = 250 * time.Millisecond
)

// Bounds of the searches (variables for tests).
var (
	// createdWait bounds the search for an object the device accepted: past it, the device
	// is taken not to show the object at all (QEMU never shows names starting with a dot).
	createdWait = 5 * time.Second
	// renewAfter is how long the search goes on in the session that created the object
	// before it renews the session (see created).
	renewAfter = time.Second
	// partialWait bounds the search for what a failed upload left behind on a device that
	// registers new objects late; on others one look is enough.
	partialWait = 2 * time.Second
)

// ErrNotShown is wrapped by the error of Create and Mkdir when the device accepted the new object
// but does not show it: it hides such names (QEMU's usb-mtp hides names starting with a dot), or
// it never registered the object. Nothing can then be done with the object over MTP.
var ErrNotShown = errors.New("the device does not show the new object")

// partError is the error of created for a file the device shows with another size than was sent.
type partError struct {
	e    entry // the object the device shows
	size int64 // the size sent
}

func (e *partError) Error() string {
	return fmt.Sprintf("%v: the device stored %d of %d bytes", ErrProtocol, e.e.size, e.size)
}

func (e *partError) Unwrap() error { return ErrProtocol }

// created finds the object just made in parent called name: a folder when dir, else a file that
// must hold size bytes. h is the handle SendObjectInfo answered. It runs under the lock, and
// returns the object and its folder's node.
//
// An object not found within renewAfter may never be registered while the session lasts (QEMU's
// usb-mtp compares a new name with only as many characters of the names it knows, and takes the
// report of "pre" next to "pre-existing.txt" for a repeat): the session is renewed once, which
// makes the device read its folders afresh, and the search goes on in the new session (where the
// cache, and so parent, are new). A file still found with another size after createdWait is a
// *partError (the device stored part of it); an object not found at all is ErrNotShown.
func (d *Device) created(ctx context.Context, parent *node, h uint32, name string, dir bool, size int64) (*node, entry, error) {
	var wrong *entry
	ok := func(e entry) bool {
		if dir || e.size == size {
			return true
		}
		wrong = &e
		return false
	}
	start := time.Now()
	e, found, first, err := d.find(ctx, parent, h, name, dir, min(renewAfter, createdWait), ok)
	if err == nil && (!found || !first) && !d.lateObjects {
		d.lateObjects = true
		d.log.Debug("mtp: the device registers new objects late; looking for them by name", "name", name)
	}
	if err == nil && !found && wrong == nil && renewAfter < createdWait {
		d.log.Info("mtp: the device does not show a new object; opening a new session, where it reads its folders afresh",
			"name", device.SafeName(name))
		storage, dirPath := parent.storage, parent.path()
		if err = d.renewSession(ctx); err == nil {
			if parent, err = d.resolve(ctx, storage, dirPath); err == nil {
				e, found, _, err = d.find(ctx, parent, 0, name, dir, createdWait-time.Since(start), ok)
			}
		}
	}
	switch {
	case err != nil:
		return parent, entry{}, err
	case found:
		return parent, e, nil
	case wrong != nil:
		return parent, entry{}, &partError{e: *wrong, size: size}
	}
	what := "file"
	if dir {
		what = "folder"
	}
	return parent, entry{}, fmt.Errorf("the device accepted the %s %q but does not show it after %s, "+
		"even in a new session; it may hide such names (QEMU hides names starting with a dot): %w", what, name, createdWait, ErrNotShown)
}

// renewSession closes the session and opens a new one: the device forgets every handle (and, as
// QEMU's usb-mtp does, reads its folders afresh when they are listed). The path cache is dropped;
// readers in progress find their objects again by path. It runs under the lock.
func (d *Device) renewSession(ctx context.Context) error {
	if _, err := d.conn.do(ctx, call{op: OpCloseSession}); err != nil && !isResponse(err, RespSessionNotOpen) {
		return fmt.Errorf("close the session to open a new one: %w", err)
	}
	d.conn.inSess = false
	d.session++
	d.cache.reset()
	d.skippedHandles = map[uint32]bool{}
	if err := d.openSession(ctx); err != nil {
		return fmt.Errorf("open a new session: %w", err)
	}
	return nil
}

// find looks for parent's child called name (a folder when dir, else a file) for which ok holds:
// first the object behind h (unless h is 0), then in listings of parent, until wait has passed.
// It runs under the lock and reports whether it found one, and whether at the first look at h.
func (d *Device) find(ctx context.Context, parent *node, h uint32, name string, dir bool, wait time.Duration,
	ok func(entry) bool) (e entry, found, first bool, err error) {
	is := func(e entry) bool {
		if e.name != name || e.dir != dir || e.storage != parent.storage {
			return false
		}
		if parent.isRoot() {
			// The root's children name it 0 or 0xFFFFFFFF (QEMU: the root's own handle).
			if n := d.cache.byHandle[e.parent]; !isRootParent(e.parent) && n != nil {
				return false
			}
		} else if e.parent != parent.handle {
			return false
		}
		return ok(e)
	}
	deadline := time.Now().Add(wait)
	pause := findFirstWait
	for look := 0; ; look++ {
		if h != 0 {
			e, err := d.objectInfo(ctx, h)
			if err == nil && is(e) {
				return e, true, look == 0, nil
			}
			if err != nil && !isResponse(err, RespInvalidObjectHandle) {
				return entry{}, false, false, err
			}
		}
		entries, err := d.listDir(ctx, parent, true)
		if err != nil {
			return entry{}, false, false, err
		}
		for _, l := range entries {
			if l.name != name {
				continue
			}
			// Ask afresh: a listing may hold what the cache knew of the object (no size).
			e, err := d.objectInfo(ctx, l.handle)
			if err == nil && is(e) {
				return e, true, false, nil
			}
			if err != nil && !isResponse(err, RespInvalidObjectHandle) {
				return entry{}, false, false, err
			}
		}
		if !time.Now().Add(pause).Before(deadline) {
			return entry{}, false, false, nil
		}
		select {
		case <-ctx.Done():
			return entry{}, false, false, ctx.Err()
		case <-d.conn.goneCh:
			return entry{}, false, false, d.conn.gone()
		case <-time.After(pause):
		}
		pause = min(2*pause, findMaxWait)
	}
}

// parentField is the ParentObject to put in an ObjectInfo sent for a child of n.
func parentField(n *node) uint32 {
	if n.isRoot() {
		return 0
	}
	return n.handle
}

// sendObjectInfo announces an object and returns the handle the device gives it.
func (d *Device) sendObjectInfo(ctx context.Context, parent *node, oi *ObjectInfo) (uint32, error) {
	b, err := oi.MarshalBinary()
	if err != nil {
		return 0, fmt.Errorf("%v: %w", OpSendObjectInfo, err)
	}
	resp, err := d.conn.do(ctx, call{op: OpSendObjectInfo, params: []uint32{uint32(parent.storage), parent.param()},
		send: bytes.NewReader(b), sendSize: int64(len(b))})
	if err != nil {
		return 0, err
	}
	if len(resp.Params) < 3 {
		return 0, fmt.Errorf("%w: %v answered without the new object's handle", ErrProtocol, OpSendObjectInfo)
	}
	return resp.Params[2], nil
}

// Mkdir creates the folder p and its missing parents; an existing folder is not an error.
func (d *Device) Mkdir(ctx context.Context, s device.StorageID, p string) (device.Object, error) {
	p, err := device.CheckPath(p)
	if err != nil {
		return device.Object{}, err
	}
	var obj device.Object
	err = d.locked(ctx, func() error {
		if _, err := d.mkdirAll(ctx, s, p); err != nil {
			return err
		}
		var err error
		obj, err = d.stat(ctx, s, p)
		return err
	})
	if err != nil {
		return device.Object{}, fmt.Errorf("create folder %q on the device: %w", p, err)
	}
	return obj, nil
}

// Create writes a new file of size bytes from r at p, creating missing parent folders, and
// keeps modTime (sent in the ObjectInfo, and set as DateModified afterwards where the device
// ignored it and allows it). An object already at p is device.ErrExists. When the transfer
// fails, the partial object is deleted while the device still answers.
func (d *Device) Create(ctx context.Context, s device.StorageID, p string, size int64, modTime time.Time, r io.Reader) (device.Object, error) {
	p, err := device.CheckPath(p)
	if err == nil && p == "" {
		err = fmt.Errorf("cannot create the storage root: %w", device.ErrExists)
	}
	if err == nil && size < 0 {
		err = fmt.Errorf("negative size %d", size)
	}
	if err != nil {
		return device.Object{}, fmt.Errorf("create %q on the device: %w", p, err)
	}
	dir, name := splitPath(p)
	var obj device.Object
	err = d.locked(ctx, func() error {
		parent, err := d.mkdirAll(ctx, s, dir)
		if err != nil {
			return err
		}
		if ch, err := d.child(ctx, parent, name); err != nil {
			return err
		} else if ch != nil {
			return device.ErrExists
		}
		compressed := uint32(0xFFFFFFFF)
		if size < 0xFFFFFFFF {
			compressed = uint32(size)
		}
		oi := ObjectInfo{
			StorageID:        uint32(s),
			ObjectFormat:     FormatForName(name),
			CompressedSize:   compressed,
			ParentObject:     parentField(parent),
			Filename:         name,
			ModificationDate: modTime,
		}
		h, err := d.sendObjectInfo(ctx, parent, &oi)
		if err != nil {
			return err
		}
		// From here on r is (being) consumed: whatever happens, this does not run again.
		if _, err := d.conn.do(ctx, call{op: OpSendObject, send: r, sendSize: size}); err != nil {
			d.cleanup(parent, h, name, p)
			return &final{err}
		}
		parent, e, err := d.created(ctx, parent, h, name, false, size)
		if err != nil {
			if pe := (*partError)(nil); errors.As(err, &pe) {
				d.remove(ctx, parent, pe.e, p)
			}
			return &final{err}
		}
		if !modTime.IsZero() && !e.mtime.Equal(modTime.Truncate(time.Second)) && d.setDate &&
			d.devInfo.Supports(OpSetObjectPropValue) {
			err := d.setProp(ctx, e.handle, PropDateModified, StringValue(FormatDate(modTime)))
			switch {
			case err == nil:
				e.mtime = modTime.Truncate(time.Second)
			case isResponse(err):
				d.log.Info("mtp: the device does not keep modification times", "err", err)
				d.setDate = false
			default:
				d.cache.add(parent, e)
				return &final{err}
			}
		}
		d.cache.add(parent, e)
		obj = d.object(s, p, e)
		return nil
	})
	if err != nil {
		return device.Object{}, fmt.Errorf("create %q on the device: %w", p, err)
	}
	return obj, nil
}

// cleanup deletes what a failed upload of name into parent (path p) left, if the device still
// answers: the object behind h when it is that file, else the file of that name found in
// listings of parent (h may be a guess the device never honoured). Nothing of that name was
// there before the upload.
func (d *Device) cleanup(parent *node, h uint32, name, p string) {
	if d.conn.gone() != nil {
		return
	}
	wait := time.Duration(0)
	if d.lateObjects {
		wait = partialWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait+resetWait)
	defer cancel()
	e, found, _, err := d.find(ctx, parent, h, name, false, wait, func(entry) bool { return true })
	switch {
	case err != nil:
		d.log.Warn("mtp: could not look for a partial object after a failed transfer", "path", p, "err", err)
	case !found:
		d.log.Debug("mtp: the failed transfer left no object the device shows", "path", p)
	default:
		d.remove(ctx, parent, e, p)
	}
}

// remove deletes the object e in parent (path p) after a failed upload, logging a failure.
func (d *Device) remove(ctx context.Context, parent *node, e entry, p string) {
	_, err := d.conn.do(ctx, call{op: OpDeleteObject, params: []uint32{e.handle, 0}})
	if err != nil && !isResponse(err, RespInvalidObjectHandle) {
		d.log.Warn("mtp: could not delete a partial object after a failed transfer", "path", p, "err", err)
		return
	}
	if n := parent.children[e.name]; n != nil && n.handle == e.handle {
		d.cache.remove(n)
	}
}

// setProp sets an object property with SetObjectPropValue.
func (d *Device) setProp(ctx context.Context, h uint32, prop PropCode, v Value) error {
	b, err := MarshalValue(v)
	if err != nil {
		return err
	}
	_, err = d.conn.do(ctx, call{op: OpSetObjectPropValue, params: []uint32{h, uint32(prop)},
		send: bytes.NewReader(b), sendSize: int64(len(b))})
	return err
}

// Delete removes the file p, or the empty folder p (device.ErrNotEmpty otherwise: MTP devices
// delete folders recursively).
func (d *Device) Delete(ctx context.Context, s device.StorageID, p string) error {
	p, err := device.CheckPath(p)
	if err == nil && p == "" {
		err = fmt.Errorf("cannot delete the storage root: %w", device.ErrUnsupported)
	}
	if err != nil {
		return fmt.Errorf("delete %q on the device: %w", p, err)
	}
	err = d.locked(ctx, func() error {
		n, err := d.resolve(ctx, s, p)
		if err != nil {
			return err
		}
		if n.dir {
			hs, err := d.handles(ctx, n)
			if err != nil {
				return err
			}
			if len(hs) > 0 {
				return device.ErrNotEmpty
			}
		}
		if _, err := d.conn.do(ctx, call{op: OpDeleteObject, params: []uint32{n.handle, 0}}); err != nil {
			return err
		}
		d.cache.remove(n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %q on the device: %w", p, err)
	}
	return nil
}

// Rename renames or moves an object inside one storage: MoveObject when the folder changes,
// SetObjectPropValue(ObjectFileName) when the name does. device.ErrUnsupported when the device
// offers neither as needed; device.ErrExists when to is taken.
func (d *Device) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	from, err := device.CheckPath(from)
	if err == nil {
		to, err = device.CheckPath(to)
	}
	if err == nil && (from == "" || to == "") {
		err = fmt.Errorf("cannot rename a storage root: %w", device.ErrUnsupported)
	}
	if err == nil && strings.HasPrefix(to+"/", from+"/") && to != from {
		err = fmt.Errorf("cannot move a folder into itself: %w", device.ErrUnsupported)
	}
	if err != nil {
		return fmt.Errorf("rename %q to %q on the device: %w", from, to, err)
	}
	if from == to {
		return nil
	}
	fromDir, fromName := splitPath(from)
	toDir, toName := splitPath(to)
	move, rename := fromDir != toDir, fromName != toName
	if (move && !d.devInfo.Supports(OpMoveObject)) || (rename && !d.devInfo.Supports(OpSetObjectPropValue)) {
		return fmt.Errorf("rename %q to %q on the device: %w", from, to, device.ErrUnsupported)
	}
	err = d.locked(ctx, func() error {
		n, err := d.resolve(ctx, s, from)
		if err != nil {
			return err
		}
		dst, err := d.resolve(ctx, s, toDir)
		if err != nil {
			return err
		}
		if !dst.dir {
			return fmt.Errorf("%s is not a folder: %w", toDir, device.ErrNotFound)
		}
		if ch, err := d.child(ctx, dst, toName); err != nil {
			return err
		} else if ch != nil {
			return device.ErrExists
		}
		plan, err := d.renamePlan(ctx, n, dst, toName, move, rename)
		if err != nil {
			return err
		}
		for i, st := range plan {
			if err := st.do(); err != nil {
				if i == 0 && isResponse(err, RespObjectPropNotSupported, RespInvalidObjectPropCode, RespAccessDenied, RespOperationNotSupported) {
					return fmt.Errorf("%w (%w)", device.ErrUnsupported, err)
				}
				for j := i - 1; j >= 0; j-- {
					if uerr := plan[j].undo(); uerr != nil {
						d.log.Warn("mtp: could not undo part of a failed rename", "from", from, "to", to, "err", uerr)
					}
				}
				return err
			}
		}
		d.cache.move(n, dst, toName)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rename %q to %q on the device: %w", from, to, err)
	}
	return nil
}

// renameStep is one device operation of a rename, with the operation that undoes it.
type renameStep struct{ do, undo func() error }

// renamePlan orders the operations of a rename so that no step meets a name already taken:
// the new name is given before the move unless the source folder has an object of that name,
// in which case the move goes first, and if the target folder has one of the old name as well,
// the object passes through a temporary name.
func (d *Device) renamePlan(ctx context.Context, n, dst *node, toName string, move, rename bool) ([]renameStep, error) {
	h, fromName, src := n.handle, n.name, n.parent
	setName := func(name, undo string) renameStep {
		return renameStep{
			do:   func() error { return d.setProp(ctx, h, PropObjectFileName, StringValue(name)) },
			undo: func() error { return d.setProp(ctx, h, PropObjectFileName, StringValue(undo)) },
		}
	}
	moveTo := func(to, back *node) renameStep {
		param := func(n *node) uint32 {
			if n.isRoot() {
				return 0
			}
			return n.handle
		}
		return renameStep{
			do: func() error {
				_, err := d.conn.do(ctx, call{op: OpMoveObject, params: []uint32{h, uint32(n.storage), param(to)}})
				return err
			},
			undo: func() error {
				_, err := d.conn.do(ctx, call{op: OpMoveObject, params: []uint32{h, uint32(n.storage), param(back)}})
				return err
			},
		}
	}
	switch {
	case !move:
		return []renameStep{setName(toName, fromName)}, nil
	case !rename:
		return []renameStep{moveTo(dst, src)}, nil
	}
	srcHas, err := d.child(ctx, src, toName)
	if err != nil {
		return nil, err
	}
	if srcHas == nil {
		return []renameStep{setName(toName, fromName), moveTo(dst, src)}, nil
	}
	dstHas, err := d.child(ctx, dst, fromName)
	if err != nil {
		return nil, err
	}
	if dstHas == nil {
		return []renameStep{moveTo(dst, src), setName(toName, fromName)}, nil
	}
	tmp := fmt.Sprintf(".cradle-rename-%08x", h)
	return []renameStep{setName(tmp, fromName), moveTo(dst, src), setName(toName, tmp)}, nil
}

// Gone returns a channel that is closed once the device is gone (unplugged, stopped
// answering) or closed.
func (d *Device) Gone() <-chan struct{} { return d.conn.goneCh }

// Events reports changes on the device; see device.Device.
func (d *Device) Events() <-chan device.Event { return d.events }

// Close stops the event loop, closes the session and the transport. It is safe to call more
// than once; later calls return the first one's result.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.stopLoop()
		<-d.loopDone
		d.streamMu.Lock()
		for sr := range d.streams {
			sr.pw.CloseWithError(fmt.Errorf("read from the device: %w", &goneError{cause: errClosed}))
		}
		d.streamMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), closeWait)
		defer cancel()
		if d.lock(ctx) == nil {
			if d.conn.gone() == nil {
				if _, err := d.conn.run(ctx, call{op: OpCloseSession}); err != nil {
					d.log.Debug("mtp: closing the session failed", "err", err)
				}
			}
			d.conn.markGone(errClosed)
			d.unlock()
		} else {
			d.conn.markGone(errClosed)
		}
		if err := d.conn.t.Close(); err != nil && !errors.Is(err, ErrTransportClosed) {
			d.closeErr = fmt.Errorf("close the device: %w", err)
		}
	})
	return d.closeErr
}
