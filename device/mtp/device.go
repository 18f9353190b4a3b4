package mtp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
	// Serial is used when the device reports no usable serial number (the USB descriptor's
	// serial): none, or a placeholder such as Android's "????????".
	Serial string
	// Location is where the device is attached (a USB port path). A device with no usable serial
	// anywhere is known by its identity and Location, so two such phones never collide.
	Location string
	// Timeout is how long the device may stay silent in the middle of a transaction before
	// Cradle cancels it, checks the device, resets it if needed (see device.ErrNotAnswering);
	// 30 s when zero. The wait for the answer after data sent to the device grows with its size.
	Timeout time.Duration
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
	// propList is true while GetObjectPropList is offered and has worked; noRootPropList is
	// set once the device refused it for a storage's root (uMTP-Responder has no object 0).
	propList       bool
	noRootPropList bool
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
	// zone is the device's own time zone, in which it reports dates without a zone: the
	// computer's until a date the device reports for an object Cradle wrote shows another.
	zone *time.Location
	// rules are the name rules of each storage (see Storages).
	rules map[device.StorageID]device.NameRules
	// ptp is set for a phone in "Transfer photos (PTP)" mode: a device that offers no MTP
	// operation and is no camera. It shows only its photo folders; see ptpGuard.
	ptp bool

	events   chan device.Event
	overflow bool // guarded by the event handler: the next event to send is EventOverflow
	// queueLost says the loop dropped events (its queue was full, or the pipe failed): the
	// handler tells listeners to rescan.
	queueLost atomic.Bool
	lost      atomic.Int64
	skipped   atomic.Int64

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
// in the pipe, opens a session (closing and reopening one that is already open, retrying while
// the device answers DeviceBusy), reads DeviceInfo and starts the event loop. Open owns t
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
	if opts.Timeout > 0 {
		c.timeout = opts.Timeout
	}
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
		zone:           time.Local,
		rules:          map[device.StorageID]device.NameRules{},
	}
	c.reopen = func(ctx context.Context) error {
		// After a USB reset: the device forgot its session and its handles.
		d.session++
		d.cache.reset()
		d.skippedHandles = map[uint32]bool{}
		return d.openSession(ctx)
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
	if phoneStack(&d.devInfo) && !d.ptp && d.lock(ctx) == nil {
		d.probeZone(ctx)
		d.unlock()
	}
	return d, nil
}

// start opens the session and then reads DeviceInfo, as libmtp does: some devices
// (uMTP-Responder before 1.6) answer GetDeviceInfo outside a session with SessionNotOpen, and
// every device answers it inside one.
func (d *Device) start(ctx context.Context, opts Options) error {
	if err := d.openSession(ctx); err != nil {
		return fmt.Errorf("open a session with the device: %w", err)
	}
	b, _, err := d.conn.dataset(ctx, OpGetDeviceInfo)
	if err != nil {
		return fmt.Errorf("read the device information: %w", err)
	}
	if err := d.devInfo.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("read the device information: %w", err)
	}
	serial := strings.TrimSpace(d.devInfo.SerialNumber)
	if !usableSerial(serial) {
		serial = strings.TrimSpace(opts.Serial)
	}
	if !usableSerial(serial) {
		sum := sha256.Sum256([]byte(d.devInfo.Manufacturer + "\x00" + d.devInfo.Model + "\x00" + opts.Location))
		serial = "NOSERIAL-" + strings.ToUpper(hex.EncodeToString(sum[:6]))
		d.log.Info("mtp: the device reports no usable serial number; telling it apart by where it is plugged in",
			"reported", d.devInfo.SerialNumber, "serial", serial)
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
	d.ptp = !slices.ContainsFunc(d.devInfo.OperationsSupported, func(op OpCode) bool { return op >= 0x9800 && op < 0x9900 }) &&
		d.info.Kind != device.KindCamera
	return nil
}

// nameRules says which names a storage holds. MTP does not say whether a storage folds case;
// what is known of device families does: a removable storage is a FAT or exFAT card (FAT names,
// case folded), and the shared storage of Android phones (and Samsung's, which does not say
// android.com) folds case.
func nameRules(di *DeviceInfo, si *StorageInfo) device.NameRules {
	removable := si.StorageType == StorageRemovableRAM || si.StorageType == StorageRemovableROM
	android := di.Extension("android.com") || strings.Contains(strings.ToLower(di.Manufacturer), "samsung")
	return device.NameRules{FoldCase: removable || android, FAT: removable}
}

// storageRules returns the name rules of storage s, asking the device when Storages has not
// yet; it runs under the lock.
func (d *Device) storageRules(ctx context.Context, s device.StorageID) (device.NameRules, error) {
	if r, ok := d.rules[s]; ok {
		return r, nil
	}
	b, _, err := d.conn.dataset(ctx, OpGetStorageInfo, uint32(s))
	if err != nil {
		return device.NameRules{}, err
	}
	var si StorageInfo
	if err := si.UnmarshalBinary(b); err != nil {
		return device.NameRules{}, err
	}
	r := nameRules(&d.devInfo, &si)
	d.rules[s] = r
	return r, nil
}

// usableSerial tells whether a serial number tells a device apart: not empty, and not a
// placeholder made of '?', '0' or spaces (Android says "????????" when it has none).
func usableSerial(s string) bool {
	return strings.Trim(s, "?0 ") != ""
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
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("waiting for the device: %w", err) // never a transaction for a caller that gave up
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
			rules := nameRules(&d.devInfo, &si)
			d.rules[device.StorageID(id)] = rules
			out = append(out, device.Storage{
				ID:          device.StorageID(id),
				Description: desc,
				Free:        min(si.FreeSpaceInBytes, si.MaxCapacity),
				Capacity:    si.MaxCapacity,
				ReadOnly:    si.AccessCapability != AccessReadWrite,
				Names:       rules,
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the storages: %w", err)
	}
	return out, nil
}

// Gone returns a channel that is closed once the device is gone (unplugged, stopped
// answering) or closed.
func (d *Device) Gone() <-chan struct{} { return d.conn.goneCh }

// Events reports changes on the device; see device.Device.
func (d *Device) Events() <-chan device.Event { return d.events }

// Unplugged tells the device that it left the bus, for an owner that saw it go before a
// transfer failed: its calls fail with device.ErrDisconnected and its events end with DeviceGone
// (a Close alone ends them without it, as for a device still there).
func (d *Device) Unplugged() { d.conn.markGone(errUnplugged) }

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
