// Package device is the handheld side of Cradle: the Device interface that every kind of device
// implements (MTP over USB, the in-process emulator, mass-storage folders), the events they raise,
// and the checks that keep names a device reports from ever becoming unsafe desktop paths.
//
// Sub-packages: device/mtp (the MTP protocol, initiator side, over any Transport), device/usb
// (the gousb transport, discovery, hot-plug and diagnosis), device/emulator (an MTP responder
// in-process, backed by a folder), device/folder (mass-storage devices).
package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Kind is what sort of handheld a device is, as far as Cradle can tell.
type Kind string

// Kinds of device.
const (
	KindPhone       Kind = "phone"
	KindCamera      Kind = "camera"
	KindMediaPlayer Kind = "media-player"
	KindEReader     Kind = "e-reader"
	KindStorage     Kind = "storage" // a mass-storage drive or a plain folder
	KindUnknown     Kind = "unknown"
)

// Info identifies a device.
type Info struct {
	// Serial is stable for the same physical device (or the same emulated folder); partnerships
	// are keyed by it.
	Serial       string
	Manufacturer string
	Model        string
	Version      string
	Kind         Kind
	// Transport says how Cradle reaches the device: "mtp-usb", "mtp-emulated", "folder".
	Transport string
}

// StorageID names one storage of a device (MTP's StorageID; 1 for a folder device).
type StorageID uint32

// Storage is one storage area of a device: internal memory, an SD card.
type Storage struct {
	ID          StorageID
	Description string
	Free        uint64 // bytes; never more than Capacity
	Capacity    uint64 // bytes
	ReadOnly    bool
	// Names says which names the storage can hold and which it takes for the same.
	Names NameRules
}

// Object is a file or folder on a device.
type Object struct {
	Storage StorageID
	// Path is the object's path inside its storage, '/'-separated, without a leading '/'.
	// Every component has passed CheckName.
	Path    string
	Name    string
	Dir     bool
	Size    int64
	ModTime time.Time
}

// Device is one connected handheld.
//
// Paths are '/'-separated and relative to the storage root ("" is the root). Object handles of the
// underlying protocol never leak out: they change between sessions (MTP renumbers them).
//
// Concurrency: every method is safe for use from several goroutines; each implementation says
// how (MTP devices serialise transactions behind one lock). A Device whose connection is lost
// returns errors wrapping ErrDisconnected from every method and closes Events after sending
// DeviceGone.
type Device interface {
	Info() Info
	Storages(ctx context.Context) ([]Storage, error)

	// List returns the children of the folder dir.
	List(ctx context.Context, s StorageID, dir string) ([]Object, error)
	// Stat returns the object at path; ErrNotFound when there is none.
	Stat(ctx context.Context, s StorageID, path string) (Object, error)
	// Walk calls fn for every object below dir, parents before children. fn returning
	// filepath.SkipDir skips a folder's contents.
	Walk(ctx context.Context, s StorageID, dir string, fn func(Object) error) error

	// Open returns the object's content from offset on (offset > 0 resumes a transfer).
	Open(ctx context.Context, s StorageID, path string, offset int64) (io.ReadCloser, error)
	// Create writes a new object of the given size from r, creating missing parent folders, and
	// keeps modTime where the device allows it. An object that already exists at path is
	// ErrExists. If the transfer fails, Create removes what it wrote where it still can.
	Create(ctx context.Context, s StorageID, path string, size int64, modTime time.Time, r io.Reader) (Object, error)
	// Mkdir creates the folder path and missing parents; an existing folder is not an error.
	Mkdir(ctx context.Context, s StorageID, path string) (Object, error)
	// Delete removes an object, or an empty folder (ErrNotEmpty otherwise).
	Delete(ctx context.Context, s StorageID, path string) error
	// Rename moves or renames an object inside one storage; ErrUnsupported where the device
	// cannot.
	Rename(ctx context.Context, s StorageID, from, to string) error

	// Events reports changes on the device; the channel is closed when the device is closed or
	// gone. A slow reader loses events (counted), and then receives EventOverflow. There is one
	// channel per device: readers that share a device subscribe through Subscribe instead.
	Events() <-chan Event
	// Close ends the session with the device. It is safe to call more than once.
	Close() error
}

// EventKind says what an Event reports.
type EventKind uint8

// Kinds of device event.
const (
	ObjectAdded EventKind = iota + 1
	ObjectRemoved
	ObjectChanged
	StorageAdded
	StorageRemoved
	DeviceGone
	// EventOverflow says events were lost: a listener must rescan.
	EventOverflow
)

func (k EventKind) String() string {
	switch k {
	case ObjectAdded:
		return "object added"
	case ObjectRemoved:
		return "object removed"
	case ObjectChanged:
		return "object changed"
	case StorageAdded:
		return "storage added"
	case StorageRemoved:
		return "storage removed"
	case DeviceGone:
		return "device gone"
	case EventOverflow:
		return "events lost"
	}
	return "unknown event"
}

// Event is a change a device reported. Path is empty when the device could not say where
// (a listener then rescans the storage).
type Event struct {
	Kind    EventKind
	Storage StorageID
	Path    string
}

// Errors a device can return; implementations wrap them with context.
var (
	ErrNotFound     = errors.New("no such object on the device")
	ErrExists       = errors.New("object already exists on the device")
	ErrNotEmpty     = errors.New("folder on the device is not empty")
	ErrUnsupported  = errors.New("the device does not support this operation")
	ErrDisconnected = errors.New("the device was disconnected")
	ErrNoSpace      = errors.New("the device is full")
	ErrReadOnly     = errors.New("the device storage is read-only")
	ErrBusy         = errors.New("the device is busy")
	ErrPermission   = errors.New("no permission to use the device")
	ErrLocked       = errors.New("the device is locked or not in file-transfer mode")
	ErrUnsafeName   = errors.New("unsafe name reported by the device")
	// ErrNameNotAllowed says a storage cannot hold a name (see NameRules.Check).
	ErrNameNotAllowed = errors.New("the device's storage cannot hold this name")
	// ErrNotAnswering says the device stopped answering in the middle of a transaction; its
	// message says what to do.
	ErrNotAnswering = errors.New("the phone stopped answering")
	// ErrPTPMode says a phone is in "Transfer photos (PTP)" mode, in which it shows only its
	// photo folders; it wraps ErrLocked.
	ErrPTPMode = fmt.Errorf("the phone is in \"Transfer photos (PTP)\" mode and shows only its photo folders: "+
		"on the phone, open the USB notification and choose \"File transfer\": %w", ErrLocked)
)

// Presence is what a Monitor reports when a device comes or goes.
type Presence struct {
	// Key identifies the attachment (a bus/port path, an emulated folder); stable while attached.
	Key string
	// Connected is false when the device went away.
	Connected bool
	// Device is the opened device when Connected and Err is nil.
	Device Device
	// Err is a diagnosis when the device is present but cannot be used: wraps ErrPermission,
	// ErrBusy or ErrLocked, and its message says what to do.
	Err error
	// Label names the device in messages when Device is nil ("Google Pixel 7 (18d1:4ee1)").
	Label string
}

// Monitor notices devices arriving and leaving (USB hot-plug, emulated devices, mounted folders).
type Monitor interface {
	// Run reports presence changes until ctx is done: first one Presence for each device already
	// attached, then changes as they happen. The Monitor owns the Devices it opens and closes them
	// when they leave or Run returns.
	Run(ctx context.Context, report func(Presence)) error
}
