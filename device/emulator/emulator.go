// Package emulator is an MTP device in-process: a responder that serves a real folder over the
// same mtp.Transport interface as a USB device, speaking the same bytes with USB packet semantics
// (512-byte packets, a short packet ending a transfer, zero-length packets present or not). It
// backs `cradle --emulate DIR`, the demo, and the tests of device/mtp, which inject faults
// through it: a disconnection after so many bytes, a stalled or busy device, handles renumbered,
// partial objects left behind.
//
// It is a faithful responder, not a shortcut: folders and files in DIR are MTP objects with
// handles assigned per session; GetObjectPropList, GetPartialObject and Android's
// GetPartialObject64 are offered (or not, per Options); SendObject writes to a temporary file
// renamed into place when complete and keeps the ModificationDate of SendObjectInfo; changes
// made to DIR by others raise ObjectAdded, ObjectRemoved and ObjectInfoChanged events for the
// folders the initiator listed in the session.
package emulator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cradle-sync/cradle/device/mtp"
)

// PropListMode says whether the emulated device offers GetObjectPropList.
type PropListMode int

// Property list behaviours.
const (
	// PropListWorking offers GetObjectPropList and answers it (Android).
	PropListWorking PropListMode = iota
	// PropListAbsent does not offer it and answers OperationNotSupported (QEMU's usb-mtp).
	PropListAbsent
	// PropListBroken offers it but answers OperationNotSupported.
	PropListBroken
	// PropListIgnoresDepth offers it but ignores the depth, as uMTP-Responder 1.3 does: it
	// describes the object asked about itself, and answers InvalidObjectHandle for the root
	// (it has no object 0).
	PropListIgnoresDepth
)

// Options shape the emulated device. The zero value is an Android-like phone: dot-files shown,
// zero-length packets sent, property lists, partial reads (32 and 64-bit), renames and moves.
type Options struct {
	// SDCard, when set, is a second folder served as a second storage, "SD card".
	SDCard string
	// HideDotFiles leaves out names starting with '.', as QEMU does (Android shows them): they
	// are never objects, not even those the initiator creates (SendObjectInfo answers a handle
	// the device never honours, as QEMU's does).
	HideDotFiles bool
	// LateObjects makes the device give the objects the initiator creates (folders by
	// SendObjectInfo, files by SendObject) their handle only this long afterwards, as QEMU's
	// usb-mtp does: it registers a new object when inotify reports it, and only in a folder the
	// session listed. Until then GetObjectInfo of the handle SendObjectInfo answered is
	// InvalidObjectHandle, listings leave the object out and sending into a new folder is
	// refused. That handle is only the device's guess of its next free one: when it registers
	// the object (raising ObjectAdded in a folder the initiator listed; otherwise at the
	// folder's next listing), the object may get another handle, and the guess another object.
	// 0 registers new objects at once.
	LateObjects time.Duration
	// PrefixNames makes the device compare a new object's name with only as many characters of
	// the names it knows, as QEMU's usb-mtp does: SendObjectInfo of "pre" in a folder holding
	// "pre-existing.txt" answers that object's handle, and once the folder was listed the new
	// object is not registered until the next session (the device takes it for a repeat).
	PrefixNames bool
	// ShuffleHandles gives objects random handles, as Android does after a media rescan, instead
	// of 1, 2, 3...
	ShuffleHandles bool
	// NoZLP omits the zero-length packet after a data phase that ends on a packet boundary, as
	// QEMU does.
	NoZLP bool
	// StallZLP answers a zero-length packet from the initiator with a stall, as QEMU does: the
	// bulk-out endpoint stays halted until Reset. The device then does not wait for one.
	StallZLP bool
	// PropList says whether GetObjectPropList is offered and works.
	PropList PropListMode
	// NoPartial64 does not offer Android's GetPartialObject64 (QEMU); NoPartial offers neither
	// partial read, so files are only read whole.
	NoPartial64 bool
	NoPartial   bool
	// ReadOnlyProps offers neither SetObjectPropValue nor MoveObject (QEMU): no rename, no move,
	// no setting dates.
	ReadOnlyProps bool
	// IgnoreDates does not keep the ModificationDate sent with SendObjectInfo (the file gets the
	// time of the upload), as some devices do; SetObjectPropValue(DateModified) still sets it.
	IgnoreDates bool
	// FreeSpaceZero reports no free space and refuses new files with StoreFull.
	FreeSpaceZero bool
	// SessionOpen starts with a session open, as a program that crashed leaves it: OpenSession
	// answers SessionAlreadyOpen until CloseSession.
	SessionOpen bool
	// Leftover starts with a crashed program's stale data phase and response waiting on bulk in.
	Leftover bool
	// PollEvents detects changes in listed folders by polling them every PollInterval instead
	// of with inotify (the only way off Linux).
	PollEvents bool
	// PollInterval is the polling period (default 200 ms).
	PollInterval time.Duration
	// Names makes the device report the object called K on the host under the name V, as a
	// hostile or broken device would ("..", "a/b", names with NUL): tests of the initiator's
	// name checks.
	Names map[string]string
	// Serial overrides the serial number (default: derived from the absolute DIR).
	Serial string

	// The behaviours of real device families (see Profile).

	// SessionFirst answers GetDeviceInfo outside a session with SessionNotOpen, as
	// uMTP-Responder before 1.6 does.
	SessionFirst bool
	// DatesReadOnly refuses to set DateModified with SetObjectPropValue (InvalidObjectPropCode,
	// as uMTP-Responder answers; Android does not let it be set either).
	DatesReadOnly bool
	// BlockingEvents makes the device's event write wait, holding its object table, until the
	// initiator has read the event from the interrupt pipe, as uMTP-Responder's inotify thread
	// does: an initiator that stops reading events during a transaction never gets its answer.
	BlockingEvents bool
	// Zone is the device's own time zone: it reports dates as its wall clock without a zone and
	// reads dates sent without one in it; a date ending in 'Z' is UTC (Android,
	// uMTP-Responder). nil is the computer's zone.
	Zone *time.Location
	// StrictZLP makes a data phase to the device that ends on a packet boundary end only at a
	// zero-length packet, as Android's does: without one the device takes the initiator's next
	// transfer (its next command) for the end of the data and never answers that command.
	StrictZLP bool
	// FoldCase makes every storage case-insensitive, as Android's shared storage and FAT cards
	// are: a name that folds like an existing one's names that file. The device's object table
	// still matches names exactly, as Android's does, so a new file "foo.txt" next to "Foo.txt"
	// is sent into Foo.txt, truncating it (Android opens it with O_TRUNC). A case-only rename
	// works.
	FoldCase bool
	// FATNames refuses names FAT cannot hold (the characters :*?"<>| and control characters)
	// with InvalidParameter, trims trailing dots and spaces as Android does on removable
	// storage, and keeps times to 2 seconds.
	FATNames bool
	// KeepHandles keeps object handles across sessions, as Android's MtpStorageManager does
	// while its MTP service runs.
	KeepHandles bool
	// RegisterAtInfo makes a file announced with SendObjectInfo an object at once (empty until
	// SendObject), as Android does.
	RegisterAtInfo bool
	// UnknownSerial reports the serial number "????????", as Android does when it has none.
	UnknownSerial bool
	// PTP is Android's "Transfer photos" mode: only the DCIM and Pictures folders are shown at a
	// storage's root, and no MTP operation beyond PTP's is offered.
	PTP bool
	// Locked starts the device locked: it has no storages until Unlock, as a locked phone.
	Locked bool
	// BoundaryStall makes the device never answer a GetPartialObject that reads to the end of the
	// file with a data phase ending exactly on a packet boundary (Samsung Galaxy, libmtp's
	// DEVICE_FLAG_SAMSUNG_OFFSET_BUG), until the transaction is cancelled.
	BoundaryStall bool
	// CancelWedge makes the device answer nothing after a cancelled data-in phase until a USB
	// reset (ResetDevice), as recent Samsungs do after a cancelled GetObject.
	CancelWedge bool
	// InPlace writes a file the initiator sends under its own name as the data arrives, as a
	// camera or player writing to its card does: a transfer cut short (the process killed)
	// leaves a piece of the file under its name. Without it the device writes a temporary file
	// and renames it into place when complete.
	InPlace bool
	// ObjectInfo64 puts a 64-bit size in ObjectInfo, as older Samsungs do (libmtp's
	// DEVICE_FLAG_PROPLIST_OVERRIDES_OI).
	ObjectInfo64 bool
	// NoAndroidExtensions leaves android.com out of DeviceInfo and does not offer Android's
	// operations (GetPartialObject64, SendPartialObject, ...), as Samsung's MTP stack does.
	NoAndroidExtensions bool
	// Manufacturer and Model override the device's identity.
	Manufacturer, Model string
	// Logger receives protocol warnings; nil means slog.Default().
	Logger *slog.Logger
}

// QEMU returns options that mimic QEMU's usb-mtp device, whose quirks a real-USB test meets:
// dot-files hidden, no zero-length packets sent and those received stalled, no property lists,
// 32-bit partial reads only, no renames or moves, new objects registered late (QEMULate) and
// names compared by their start (PrefixNames); no Android extension in its DeviceInfo.
func QEMU() Options {
	return Options{HideDotFiles: true, NoZLP: true, StallZLP: true, PropList: PropListAbsent, NoPartial64: true,
		ReadOnlyProps: true, LateObjects: QEMULate, PrefixNames: true, NoAndroidExtensions: true}
}

// QEMULate is the LateObjects of QEMU(): long enough that an initiator asking about a new object
// right after creating it always meets the late registration (QEMU's inotify usually takes less,
// but not always), short enough for fast tests.
const QEMULate = 20 * time.Millisecond

// MTPOptions returns the initiator options for a device emulated with these options: the
// quirks a USB transport would set from the device's identity.
func (o Options) MTPOptions() mtp.Options {
	return mtp.Options{Logger: o.Logger, Transport: "mtp-emulated", NoZeroLengthOut: o.StallZLP}
}

// MTPOptions returns the initiator options for this device: Options.MTPOptions, and its serial
// number as the stand-in for a USB descriptor's (what a device reporting none, or "????????",
// is known by).
func (e *Emulator) MTPOptions() mtp.Options {
	o := e.opts.MTPOptions()
	o.Serial = e.serial
	return o
}

// Profiles are the device families the emulator can imitate (--emulate-profile).
var Profiles = []string{"generic", "android", "samsung", "sdcard"}

// Profile returns the options of a device family, with zone as the device's own time zone (nil:
// the computer's):
//   - generic: the emulator's default, an Android-like phone that answers everything well.
//   - android: Android's MTP server: handles kept across sessions, objects registered at
//     SendObjectInfo, zero-length packets required, DateModified not settable, dates in the
//     phone's zone, GetObjectPropList at depth 0 and 1, a case-insensitive storage whose new
//     files are opened with O_TRUNC.
//   - samsung: android without Android's extensions, plus the GetPartialObject hang at a packet
//     boundary and the wedge after a cancelled read.
//   - sdcard: a device whose storage is a FAT card (a camera, a player): FAT names, 2-second
//     times, case folding, no rename or move, files written in place.
//
// The options Android has besides (UnknownSerial, PTP, Locked) are set on top.
func Profile(name string, zone *time.Location) (Options, error) {
	var o Options
	switch name {
	case "", "generic":
		o = Options{}
	case "android":
		o = Options{KeepHandles: true, RegisterAtInfo: true, StrictZLP: true, DatesReadOnly: true,
			FoldCase: true, Manufacturer: "Google", Model: "Pixel (emulated)"}
	case "samsung":
		o = Options{KeepHandles: true, RegisterAtInfo: true, StrictZLP: true, DatesReadOnly: true,
			FoldCase: true, NoAndroidExtensions: true, BoundaryStall: true, CancelWedge: true,
			Manufacturer: "SAMSUNG", Model: "SAMSUNG_Android (emulated)"}
	case "sdcard":
		o = Options{FATNames: true, FoldCase: true, ReadOnlyProps: true, InPlace: true}
	default:
		return Options{}, fmt.Errorf("unknown emulator profile %q: choose one of %s", name, strings.Join(Profiles, ", "))
	}
	o.Zone = zone
	return o, nil
}

// errStall is a bulk-out transfer the device refused (USB STALL, LIBUSB_ERROR_PIPE).
var errStall = fmt.Errorf("bulk out: %w", mtp.ErrStall)

// Identity of the emulated device.
const (
	Manufacturer = "Cradle"
	Model        = "Emulated phone"
	Version      = "1.0"
)

// Stats counts what the initiator did, for tests of its transfer discipline.
type Stats struct {
	Transactions int64
	// LargestIn and LargestOut are the largest bulk read the initiator asked for and the largest
	// bulk write it made.
	LargestIn, LargestOut int64
	// ZLPOut counts zero-length packets the initiator sent; MissingZLP counts data phases that
	// ended on a packet boundary without one.
	ZLPOut, MissingZLP int64
	// FolderReads counts the folders the device read from the host to answer the initiator.
	FolderReads int64
	// Cancels counts the cancel requests (Reset) the initiator made.
	Cancels int64
}

// Emulator is an emulated MTP device. It implements mtp.Transport: hand it to mtp.Open (or use
// OpenDevice). Its fault methods may be called from any goroutine at any time.
type Emulator struct {
	opts     Options
	dir      string
	serial   string
	pid      int // this process's, in the names of uploads in progress
	log      *slog.Logger
	storages []*storage

	in   *inPipe
	out  chan []byte
	intr eventQueue

	gone     chan struct{}
	goneOnce sync.Once
	done     chan struct{} // closed when the responder and watcher have stopped

	abortMu sync.Mutex
	abortCh chan struct{} // closed by Reset; the responder replaces it when it has stopped
	idle    chan struct{} // the responder acknowledges a Reset

	faultMu     sync.Mutex
	inBudget    int64 // bytes bulk in may still deliver before the device disappears; -1 = off
	outBudget   int64
	stallOp     mtp.OpCode
	stallArmed  bool
	busyOp      mtp.OpCode
	busyLeft    int
	slowOp      mtp.OpCode
	slowFor     time.Duration
	keepPartial bool
	staleResp   bool
	halted      bool // bulk out stalled until Reset
	// wedged: the device answers nothing until ResetDevice (Options.CancelWedge).
	wedged bool
	// refuseZLP stalls the next zero-length packet (RefuseZLPOnce).
	refuseZLP bool

	stats struct {
		transactions, largestIn, largestOut, zlpOut, missingZLP, folderReads, cancels atomic.Int64
	}

	// mu guards the object table, shared by the responder and the watcher.
	mu    sync.Mutex
	tab   table
	watch *watcher
	// locked hides every storage until Unlock (Options.Locked); guarded by mu.
	locked bool
}

var _ mtp.Transport = (*Emulator)(nil)

// inCapacity is how many bytes the device queues on bulk in before it waits for the initiator.
const inCapacity = 4 << 20

// New starts an emulated device serving dir (and opts.SDCard). The device runs until Close or
// Unplug.
func New(dir string, opts Options) (*Emulator, error) {
	abs, err := absDir(dir)
	if err != nil {
		return nil, fmt.Errorf("emulated device: %w", err)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	e := &Emulator{
		opts:      opts,
		dir:       abs,
		serial:    opts.Serial,
		pid:       os.Getpid(),
		log:       opts.Logger,
		in:        newInPipe(inCapacity),
		out:       make(chan []byte),
		gone:      make(chan struct{}),
		done:      make(chan struct{}),
		abortCh:   make(chan struct{}),
		idle:      make(chan struct{}),
		inBudget:  -1,
		outBudget: -1,
	}
	e.intr.data = make(chan struct{}, 1)
	e.intr.took = make(chan struct{}, 1)
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.serial == "" {
		e.serial = Serial(abs)
	}
	e.storages = []*storage{{id: 0x00010001, dir: abs, desc: "Internal shared storage", typ: mtp.StorageFixedRAM}}
	if opts.SDCard != "" {
		sd, err := absDir(opts.SDCard)
		if err != nil {
			return nil, fmt.Errorf("emulated device: SD card: %w", err)
		}
		e.storages = append(e.storages, &storage{id: 0x00020001, dir: sd, desc: "SD card", typ: mtp.StorageRemovableRAM})
	}
	if opts.FATNames && opts.SDCard == "" {
		// A device whose storage is a FAT card.
		e.storages[0].desc, e.storages[0].typ = "SD card", mtp.StorageRemovableRAM
	}
	e.locked = opts.Locked
	e.tab.init(e)
	if opts.Leftover {
		e.queueLeftover()
	}
	if opts.SessionOpen {
		e.tab.stale = true
	}
	e.watch = newWatcher(e)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.serve() }()
	go func() { defer wg.Done(); e.watch.run() }()
	go func() { wg.Wait(); close(e.done) }()
	return e, nil
}

// absDir returns dir as an absolute, symlink-free path of an existing folder.
func absDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a folder", abs)
	}
	return abs, nil
}

// Serial is the serial number of the emulated device serving dir: stable for the same absolute
// folder, different for different ones.
func Serial(dir string) string {
	if abs, err := absDir(dir); err == nil {
		dir = abs
	}
	sum := sha256.Sum256([]byte(dir))
	return "EMU" + strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// Dir returns the absolute folder the device serves as its first storage.
func (e *Emulator) Dir() string { return e.dir }

// SerialNumber returns the device's serial number.
func (e *Emulator) SerialNumber() string { return e.serial }

// Stats returns the counters so far.
func (e *Emulator) Stats() Stats {
	return Stats{
		Transactions: e.stats.transactions.Load(),
		LargestIn:    e.stats.largestIn.Load(),
		LargestOut:   e.stats.largestOut.Load(),
		ZLPOut:       e.stats.zlpOut.Load(),
		MissingZLP:   e.stats.missingZLP.Load(),
		FolderReads:  e.stats.folderReads.Load(),
		Cancels:      e.stats.cancels.Load(),
	}
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// BulkOut hands one transfer to the device; it returns when the device has taken it.
func (e *Emulator) BulkOut(ctx context.Context, p []byte) (int, error) {
	if e.isGone() {
		return 0, mtp.ErrTransportClosed
	}
	storeMax(&e.stats.largestOut, int64(len(p)))
	if len(p) == 0 {
		e.stats.zlpOut.Add(1)
	}
	e.faultMu.Lock()
	if len(p) == 0 && (e.opts.StallZLP || e.refuseZLP) {
		e.halted, e.refuseZLP = true, false
	}
	halted := e.halted
	e.faultMu.Unlock()
	if halted {
		return 0, errStall
	}
	b := append([]byte{}, p...)
	e.faultMu.Lock()
	cut := false
	if e.outBudget >= 0 {
		if int64(len(b)) > e.outBudget {
			b, cut = b[:e.outBudget], true
		}
		e.outBudget -= int64(len(b))
	}
	e.faultMu.Unlock()
	if cut {
		// The device vanishes in the middle of this transfer: what got through is delivered.
		if len(b) > 0 {
			select {
			case e.out <- b:
			case <-time.After(time.Second):
			case <-e.gone:
			}
		}
		e.Unplug()
		return len(b), mtp.ErrTransportClosed
	}
	select {
	case e.out <- b:
		return len(p), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("bulk out: %w", ctx.Err())
	case <-e.gone:
		return 0, mtp.ErrTransportClosed
	}
}

// BulkIn reads what the device sends, with USB packet semantics (see inPipe.read).
func (e *Emulator) BulkIn(ctx context.Context, p []byte) (int, error) {
	if e.isGone() {
		return 0, mtp.ErrTransportClosed
	}
	storeMax(&e.stats.largestIn, int64(len(p)))
	e.faultMu.Lock()
	limit := e.inBudget
	e.faultMu.Unlock()
	n, cut, err := e.in.read(ctx, p, e.gone, limit)
	if limit >= 0 {
		e.faultMu.Lock()
		if e.inBudget >= 0 {
			e.inBudget = max(e.inBudget-int64(n), 0)
		}
		e.faultMu.Unlock()
	}
	if cut {
		e.Unplug()
	}
	return n, err
}

// Interrupt reads one event container.
func (e *Emulator) Interrupt(ctx context.Context, p []byte) (int, error) {
	if e.isGone() {
		return 0, mtp.ErrTransportClosed
	}
	return e.intr.read(ctx, p, e.gone)
}

// MaxPacket is 512, a high-speed bulk endpoint's packet size.
func (e *Emulator) MaxPacket() int { return packetSize }

// Reset cancels the transaction in progress, as the PTP class "cancel request" does: the
// device stops sending or receiving its data phase, discards a partial upload (unless
// KeepPartial) and waits for a new command. What it had queued on bulk in is dropped.
func (e *Emulator) Reset(ctx context.Context) error {
	if e.isGone() {
		return mtp.ErrTransportClosed
	}
	e.stats.cancels.Add(1)
	e.abortMu.Lock()
	ch, idle := e.abortCh, e.idle
	select {
	case <-ch:
	default:
		close(ch)
	}
	e.abortMu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
		return fmt.Errorf("reset: the emulated device did not stop: %w", ctx.Err())
	case <-e.gone:
		return mtp.ErrTransportClosed
	}
	e.in.clear()
	e.faultMu.Lock()
	e.halted = false
	e.faultMu.Unlock()
	return nil
}

// currentAbort returns the channel Reset closes.
func (e *Emulator) currentAbort() chan struct{} {
	e.abortMu.Lock()
	defer e.abortMu.Unlock()
	return e.abortCh
}

// Close releases the device, as unplugging it does, and waits for its goroutines to stop.
func (e *Emulator) Close() error {
	e.Unplug()
	<-e.done
	return nil
}

// Unplug makes the device disappear now: every pending and later call returns
// mtp.ErrTransportClosed. A partial upload is discarded unless KeepPartial is set.
func (e *Emulator) Unplug() {
	e.goneOnce.Do(func() { close(e.gone) })
}

func (e *Emulator) isGone() bool {
	select {
	case <-e.gone:
		return true
	default:
		return false
	}
}

// queueLeftover puts a crashed initiator's unread data phase and response on bulk in.
func (e *Emulator) queueLeftover() {
	const tid = 0x2A
	b, _ := mtp.Header{Length: 12 + 3000, Type: mtp.ContainerData, Code: uint16(mtp.OpGetObject), TransactionID: tid}.AppendBinary(nil)
	b = append(b, make([]byte, 3000)...)
	resp, _ := mtp.Container{Type: mtp.ContainerResponse, Code: uint16(mtp.RespOK), TransactionID: tid}.MarshalBinary()
	e.in.push(b, nil, nil)
	e.in.push(resp, nil, nil)
}

// OpenDevice starts an emulated device serving dir and opens it with mtp.Open, reporting
// "mtp-emulated" as its transport. Closing the device stops the emulator.
func OpenDevice(ctx context.Context, dir string, opts Options) (*mtp.Device, error) {
	e, err := New(dir, opts)
	if err != nil {
		return nil, err
	}
	d, err := mtp.Open(ctx, e, e.MTPOptions())
	if err != nil {
		return nil, fmt.Errorf("open the emulated device for %s: %w", e.dir, err)
	}
	return d, nil
}

// Label names an emulated device in messages.
func Label(dir string) string { return fmt.Sprintf("%s %s (%s)", Manufacturer, Model, dir) }
