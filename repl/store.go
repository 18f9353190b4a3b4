package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Kind says what an item is.
type Kind uint8

const (
	// KindFile is an item with content: a file, a picture, a contact card.
	KindFile Kind = iota
	// KindFolder is a container without content of its own.
	KindFolder
)

func (k Kind) String() string {
	if k == KindFolder {
		return "folder"
	}
	return "file"
}

// Entry describes one item as its store sees it now.
type Entry struct {
	// Handle names the item inside its store: a relative path with '/' separators, a vCard UID,
	// a device path. It is stable for as long as the item is neither renamed nor moved.
	Handle string
	Kind   Kind
	// Size is the content length in bytes (0 for folders).
	Size int64
	// ModTime is the item's own modification time, kept across replicas.
	ModTime time.Time
	// Hash is the content hash when the store knows it without reading the content
	// (see Hasher), else empty.
	Hash string
	// Change is the store's change time of the item in Unix nanoseconds (a file's inode change
	// time), or 0 when it has none. Unlike ModTime no writer can set it: it moves with every
	// write, replacement and time change, so a different content saved with the very size and
	// time the recorded one had is still noticed (detection then checks the content).
	Change int64
}

// Stamp is what the handle file remembers of an entry, to tell later whether the item changed.
type Stamp struct {
	Kind    Kind
	Size    int64
	ModTime int64 // Unix nanoseconds
	Hash    string
	Change  int64 // Entry.Change: not part of what StampChanged compares
}

// Stamp returns the entry's stamp.
func (e Entry) Stamp() Stamp {
	var mt int64
	if !e.ModTime.IsZero() {
		mt = e.ModTime.UnixNano()
	}
	return Stamp{Kind: e.Kind, Size: e.Size, ModTime: mt, Hash: e.Hash, Change: e.Change}
}

// ChangeMoved tells whether a file whose stamp did not change was touched at the inode since it
// was recorded (both stamps carry a change time and they differ): a write, a replacement or a
// time set back may have left another content under the same size and time. The content decides.
func ChangeMoved(recorded Stamp, now Entry) bool {
	return now.Kind == KindFile && recorded.Kind == KindFile && recorded.Change != 0 && now.Change != 0 && recorded.Change != now.Change
}

// StampChanged is the default IsItemChanged: an item changed when its kind, size or modification
// time differ from the recorded stamp, or when both stamps carry a hash and the hashes differ.
func StampChanged(recorded Stamp, now Entry) bool {
	s := now.Stamp()
	if s.Kind != recorded.Kind {
		return true
	}
	if s.Kind == KindFolder {
		return false // a folder's time changes with its children; its identity is its handle
	}
	if s.Hash != "" && recorded.Hash != "" {
		return s.Hash != recorded.Hash
	}
	return s.Size != recorded.Size || s.ModTime != recorded.ModTime
}

// Iterator walks a store's items (ActiveSync's FindFirstItem/FindNextItem).
type Iterator interface {
	// Next returns the next entry, or io.EOF after the last one. Any other error means the
	// enumeration did not finish: the engine then infers no deletion from it.
	Next(ctx context.Context) (Entry, error)
	// Close releases what the iterator holds. It is safe to call more than once.
	Close() error
}

// WriteRequest asks a store to create or update one item.
type WriteRequest struct {
	// Handle is the item's current handle in this store when it is updated, moved or renamed;
	// empty to create a new item.
	Handle string
	// Expected is the stamp the engine last recorded for Handle. A store must refuse the write
	// with ErrChanged when the item no longer matches it (the user edited it meanwhile), so that
	// the engine never overwrites a change it has not seen. Nil when creating.
	Expected *Stamp
	// Name is the item's portable name, as the source replica calls it (for files the relative
	// path). A store derives the new handle from it; when Handle is set and Name maps to another
	// handle, the write also renames or moves the item.
	Name    string
	Kind    Kind
	Size    int64 // content length, -1 when unknown
	ModTime time.Time
	// Data is the content (nil for folders). The store reads it to EOF, unless SameContent lets
	// it move the item instead.
	Data io.Reader
	// SameContent: the write only renames or moves the file at Handle, whose content is the one
	// to write. A store may move the item in place (a rename in the folder, MoveObject on the
	// device) without reading Data; Data is still given, for a store that must copy.
	SameContent bool
	// Cause says why the item at Handle is replaced: CauseNone when nothing of its content is
	// lost (a new item, a move or rename of the same content). A store that keeps what it
	// replaces (a versions area) keeps the old content first and records the cause with it.
	Cause Cause
}

// Cause says why the engine replaces or removes an item's content in a store.
type Cause uint8

// Causes.
const (
	// CauseNone: nothing of the item's content is lost (a new item, a rename, a partial write
	// the engine removes, a duplicate whose content stays under another name).
	CauseNone Cause = iota
	// CauseUpdate: the other side's newer version replaces the item.
	CauseUpdate
	// CauseDelete: the item was deleted on the other side.
	CauseDelete
	// CauseConflict: the user resolved a conflict by keeping the other side's version.
	CauseConflict
	// CausePolicy: the partnership's conflict policy kept the other side's version.
	CausePolicy
)

func (c Cause) String() string {
	switch c {
	case CauseNone:
		return "none"
	case CauseUpdate:
		return "update"
	case CauseDelete:
		return "delete"
	case CauseConflict:
		return "conflict"
	case CausePolicy:
		return "policy"
	}
	return fmt.Sprintf("cause(%d)", int(c))
}

// CauseDeleter is a Store that wants to know why the engine deletes an item (to keep it in a
// versions area, for instance). The engine calls DeleteFor instead of Delete whenever the cause
// is not CauseNone; the contract is Delete's.
type CauseDeleter interface {
	DeleteFor(ctx context.Context, handle string, expected Stamp, cause Cause) error
}

// DeleteItem deletes an item of st, telling a CauseDeleter why (a store that is not one, or
// CauseNone, gets a plain Delete).
func DeleteItem(ctx context.Context, st Store, handle string, expected Stamp, cause Cause) error {
	if d, ok := st.(CauseDeleter); ok && cause != CauseNone {
		return d.DeleteFor(ctx, handle, expected, cause)
	}
	return st.Delete(ctx, handle, expected)
}

// Store is one side of a partnership as a provider sees it: the desktop folder, the device's
// camera roll, a contacts file (ActiveSync's IReplStore).
//
// Concurrency: the engine calls a Store from one goroutine at a time per session, but a Store
// must tolerate calls from different goroutines over its life (the manager, a watcher).
//
// Errors: methods return the sentinel errors below, wrapped with context, when they apply; the
// engine and the plugin boundary match them with errors.Is. A cancelled ctx returns ctx.Err()
// (wrapped) and leaves the store consistent: no partial item visible.
type Store interface {
	// Enumerate starts a full enumeration of the store's items, in any order.
	Enumerate(ctx context.Context) (Iterator, error)

	// IsItemChanged tells whether the item now described by e differs from the recorded stamp.
	// StampChanged is the usual answer; a store may refine it with a content hash.
	IsItemChanged(ctx context.Context, e Entry, recorded Stamp) (bool, error)

	// IsItemReplicated tells whether the item takes part in replication at all (a filter: temp
	// files, ignored patterns, file types a provider does not handle).
	IsItemReplicated(e Entry) bool

	// NaturalKey is what matches an item with its counterpart on a first sync, when neither side
	// has metadata yet: a relative path, a vCard UID, a content hash.
	NaturalKey(ctx context.Context, e Entry) (string, error)

	// Open returns the item's content as a stream (the data retriever). ErrNotFound when the
	// handle is gone.
	Open(ctx context.Context, handle string) (io.ReadCloser, error)

	// Write creates or updates an item atomically (for files: temp file, fsync, rename), keeping
	// the modification time, and returns the item as it now stands.
	Write(ctx context.Context, req WriteRequest) (Entry, error)

	// Delete removes the item; ErrChanged when it no longer matches expected, ErrNotFound when it
	// is already gone. Deleting a folder that still holds items is ErrNotEmpty.
	Delete(ctx context.Context, handle string, expected Stamp) error
}

// NotifyKind says what a Notification reports.
type NotifyKind uint8

const (
	// ItemCreated reports a new item at Handle.
	ItemCreated NotifyKind = iota + 1
	// ItemModified reports a changed item at Handle.
	ItemModified
	// ItemDeleted reports that Handle is gone.
	ItemDeleted
	// Overflow reports that notifications were lost: the engine runs a full pass.
	Overflow
	// Shutdown reports that the store went away (device unplugged, plugin exited): the engine
	// stops using it.
	Shutdown
)

func (k NotifyKind) String() string {
	switch k {
	case ItemCreated:
		return "created"
	case ItemModified:
		return "modified"
	case ItemDeleted:
		return "deleted"
	case Overflow:
		return "overflow"
	case Shutdown:
		return "shutdown"
	}
	return "unknown"
}

// Notification is one change a store reports (ActiveSync's OnItemNotify).
type Notification struct {
	Kind   NotifyKind
	Handle string // empty for Overflow and Shutdown
	Err    error  // why a Shutdown happened, if known
}

// Notifier is a Store that reports changes as they happen.
type Notifier interface {
	// Watch calls notify for each change until ctx is done or the store shuts down (then it
	// sends a Shutdown notification and returns). notify must not block for long. Watch returns
	// an error at once when watching cannot start; the caller then falls back to full passes.
	Watch(ctx context.Context, notify func(Notification)) error
}

// Units maps the name of each change unit of an item to its value (for a contact: "TEL", "EMAIL",
// "N", ...). A unit's value is opaque bytes to the engine.
type Units map[string][]byte

// UnitStore is a Store whose items have change units: named fields with versions of their own, so
// edits to different fields of one item on two replicas merge without a conflict.
type UnitStore interface {
	Store
	// ReadUnits returns the item's units.
	ReadUnits(ctx context.Context, handle string) (Units, error)
	// WriteUnits creates or updates an item from its complete set of units, as Write does.
	WriteUnits(ctx context.Context, req WriteRequest, units Units) (Entry, error)
}

// Hasher is a Store that reports content hashes cheaply (without the engine reading the data).
type Hasher interface {
	Hash(ctx context.Context, handle string) (string, error)
}

// Sentinel errors shared by stores, the engine and the plugin boundary.
var (
	ErrNotFound    = errors.New("item not found")
	ErrChanged     = errors.New("item changed since it was last seen")
	ErrExists      = errors.New("item already exists")
	ErrNotEmpty    = errors.New("folder not empty")
	ErrNoSpace     = errors.New("no space left")
	ErrGone        = errors.New("store went away")
	ErrReadOnly    = errors.New("store is read-only")
	ErrInvalidName = errors.New("invalid item name")
	ErrPermission  = errors.New("permission denied")
)

// Classify marks err as one of the sentinel errors above: errors.Is(result, kind) holds, and
// the text stays err's own (a store's message already says what happened and what to do; the
// sentinel is for the engine, and repeating its words would only stutter). A nil err stays nil.
func Classify(err, kind error) error {
	if err == nil || errors.Is(err, kind) {
		return err
	}
	return &classified{err: err, kind: kind}
}

type classified struct{ err, kind error }

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() []error { return []error{e.err, e.kind} }

// ErrorSide names the side (Side.Name) whose store an error of Sync came from, or "" when the
// error is not tied to one side. A caller tells by it which replica went away (ErrGone): a
// device unplugged is not a desktop folder moved.
func ErrorSide(err error) string {
	var s interface{ errSide() string }
	if errors.As(err, &s) {
		return s.errSide()
	}
	return ""
}

// sideError attributes an error of detection to its side; its text is the wrapped error's.
type sideError struct {
	name string
	err  error
}

func (e *sideError) Error() string   { return e.err.Error() }
func (e *sideError) Unwrap() error   { return e.err }
func (e *sideError) errSide() string { return e.name }

// Stater is a Store that describes one item without a full enumeration. The engine uses it for
// incremental detection (only the notified handles are looked at) and to re-detect an item that a
// Write or Delete refused with ErrChanged. A Store without it gets a full pass instead.
type Stater interface {
	// Stat returns the item at handle as Enumerate would report it; ErrNotFound when it is gone.
	Stat(ctx context.Context, handle string) (Entry, error)
}

// NameKeyer is a Store that takes some different names for one (a device whose storage folds
// case: "Notes.txt" names "notes.txt"). NameKey returns the form of a handle under which the
// store tells handles apart; a write to a handle whose key another item's has fails with
// ErrExists. The engine's forecast uses it to refuse what the store would.
type NameKeyer interface {
	NameKey(handle string) string
}

// Atomicity is a Store that says whether its Write is atomic. A Store that does not implement it is
// taken to write atomically (no partial item is ever visible). When WritesAtomic returns false (MTP
// without rename, for instance), the engine records an intent before each write and, after an
// interruption, quietly removes what may be a partial item and writes it again.
type Atomicity interface {
	WritesAtomic() bool
}

// Monitoring is a Store that can ask for no more automatic sessions: when ContinueMonitoring
// returns false after a session, the service manager starts none on its own (change
// notifications, schedule) until the device is plugged in again or the user syncs by hand, as an
// ActiveSync service provider did by setting continueMonitoring to false. The engine itself never
// calls it. A provider plugin's store offers it too: the answer crosses the plugin boundary.
type Monitoring interface {
	ContinueMonitoring() bool
}

// Flusher is a Store whose changes may reach its replica after they return: a store that keeps
// many items in one file (the device's contacts file) then rewrites the file once for many
// changes instead of once for each. Its Write, WriteUnits, Delete and DeleteFor change the store
// as its own reads see it at once (Enumerate, Stat, Open, ReadUnits report the change); the
// replica itself follows at Flush.
//
// The engine records a change in the handle file only once the change is durable, so that a
// process killed or a device unplugged at any moment never leaves the handle file saying that a
// replica has what it does not (the next session would take the missing item for one deleted
// there, and delete it on the other side). A Flusher with nothing waiting returns nil from both
// methods at once. Dry runs (Forecast) never call them: the recording stores do not offer
// Flusher. A provider plugin's store does not offer it across the plugin boundary: the plugin's
// server persists and flushes a Flusher after each change, so a plugin's stores write through.
type Flusher interface {
	// Persist makes every change that returned before it durable: from then on the change
	// survives the process ending at any moment (kill -9, a power cut) and the replica going
	// away, and every later use of the store's state, by this process or the next one, reports
	// the replica with the change and makes it take effect there at the next Flush at the
	// latest. A change not persisted yet may be lost, but only whole.
	//
	// The engine calls it on both stores of a batch after applying the batch and before
	// committing its records (and likewise after a conflict copy or an intent recovery), with a
	// context that is not cancelled with the session's: a batch cut short still commits what it
	// applied. It should be quick: local, no device round trips. When it fails the engine
	// commits nothing of the batch: none of its changes is recorded as applied, and the session
	// ends with the error. The next session detects those items as it finds them; one the store
	// wrote after all matches its counterpart by content and natural key, so nothing is lost
	// either way.
	Persist(ctx context.Context) error

	// Flush makes every change that returned take effect on the replica (for the contacts
	// file: one upload). The engine calls it on each side's store that is a Flusher at the end
	// of Sync, also when the session stopped with an error (what was committed reaches the
	// replica as soon as it can), and at the end of a Resolve that carried the resolution out.
	// A failed Flush loses nothing: what Persist made durable stays so, and a later Flush (the
	// next session's) makes it take effect. Sync then returns the error marked ErrUnflushed,
	// with its report.
	Flush(ctx context.Context) error
}
