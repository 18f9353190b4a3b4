package manager

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
)

// Provider declarations and directions, re-exported so the window can build its forms from a
// Manager alone (Manager.Providers).
type (
	// Provider is a provider's declaration: name, description, options, directions.
	Provider = providers.Provider
	// Option declares one option of a provider.
	Option = providers.Option
	// OptionKind says what sort of value an option takes.
	OptionKind = providers.OptionKind
	// Direction is which way a partnership syncs.
	Direction = providers.Direction
	// DeviceKind is what sort of handheld a device is.
	DeviceKind = device.Kind
	// DeviceObject is a file or folder on a device (BrowseDevice).
	DeviceObject = device.Object
)

// Directions of a partnership.
const (
	TwoWay    = providers.TwoWay
	ToDevice  = providers.ToDevice
	ToDesktop = providers.ToDesktop
)

// ConflictPolicy is how a partnership settles a conflict (an item changed on both sides).
type ConflictPolicy string

// Conflict policies, as the command line and the settings file spell them.
const (
	// PolicyAsk keeps both versions untouched until the user resolves the conflict.
	PolicyAsk ConflictPolicy = "ask"
	// PolicyDesktop keeps the desktop's version.
	PolicyDesktop ConflictPolicy = "desktop"
	// PolicyDevice keeps the device's version.
	PolicyDevice ConflictPolicy = "device"
	// PolicyNewest keeps the version modified last.
	PolicyNewest ConflictPolicy = "newest"
	// PolicyKeepBoth keeps the newest under the name and saves the other beside it.
	PolicyKeepBoth ConflictPolicy = "keep-both"
)

// ConflictPolicies lists every policy, in the order forms show them.
var ConflictPolicies = []ConflictPolicy{PolicyAsk, PolicyDesktop, PolicyDevice, PolicyNewest, PolicyKeepBoth}

// Partnership is a provider bound to one device: what is synced, which way, how conflicts are
// settled and how often.
type Partnership struct {
	// ID is short and stable ("1", "2", ...); the command line and conflict IDs use it. It is
	// assigned by AddPartnership and never reused.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Device is the serial of the device the partnership belongs to.
	Device   string `json:"device"`
	Provider string `json:"provider"`
	// Options are the provider's option values (validated against its declaration, defaults
	// filled in).
	Options    map[string]string `json:"options"`
	Direction  Direction         `json:"direction"`
	OnConflict ConflictPolicy    `json:"on_conflict"`
	// Interval is how often to sync while the device is connected: 0 follows Settings.Interval,
	// a negative value means never on a schedule.
	Interval time.Duration `json:"interval"`
	Created  time.Time     `json:"created"`
}

// Settings are the global settings.
type Settings struct {
	// SyncOnConnect syncs a device's partnerships when it is plugged in (default true).
	SyncOnConnect bool `json:"sync_on_connect"`
	// Interval is the periodic sync while a device is connected (0: never). Default 1 hour.
	Interval time.Duration `json:"interval"`
	// RetryInterval is how long after a failed session the next try starts (0: no retry).
	// Default 5 minutes.
	RetryInterval time.Duration `json:"retry_interval"`
	// MassDeleteThreshold is the fraction of one side's items a session may delete without the
	// user's confirmation (default 0.5).
	MassDeleteThreshold float64 `json:"mass_delete_threshold"`
	// KeepInTray keeps Cradle running in the tray when the window is closed (default true).
	KeepInTray bool `json:"keep_in_tray"`
	// Language is the window's language ("en", "pt"); empty follows the system.
	Language string `json:"language"`
	// VersionsDays is how many days the versions of files a sync replaced or deleted are kept
	// (default 30; 0 keeps them only until the end of the sync that made them).
	VersionsDays int `json:"versions_days"`
	// VersionsMaxSize caps each partnership's versions, in bytes: beyond it the oldest go first
	// (0: no cap, the default).
	VersionsMaxSize int64 `json:"versions_max_size"`
	// ChangeDelay is the quiet period after a change before the session that carries it
	// (default DefaultDebounce); ChangeDelayMax bounds how long a stream of changes may postpone
	// it (default DefaultDebounceMax); 0 means the default. Config.DebounceDelay and DebounceMax
	// override both.
	ChangeDelay    time.Duration `json:"change_delay"`
	ChangeDelayMax time.Duration `json:"change_delay_max"`
}

// DefaultSettings returns the settings of a new config folder.
func DefaultSettings() Settings {
	return Settings{
		SyncOnConnect:       true,
		Interval:            time.Hour,
		RetryInterval:       5 * time.Minute,
		MassDeleteThreshold: 0.5,
		KeepInTray:          true,
		VersionsDays:        30,
		ChangeDelay:         DefaultDebounce,
		ChangeDelayMax:      DefaultDebounceMax,
	}
}

// Keep is a choice that resolves a conflict.
type Keep string

// Resolutions.
const (
	KeepDesktop Keep = "desktop"
	KeepDevice  Keep = "device"
	KeepBoth    Keep = "both"
)

// DeviceState says whether a device can be used.
type DeviceState string

// Device states.
const (
	DeviceStateConnected    DeviceState = "connected"
	DeviceStateDisconnected DeviceState = "disconnected"  // known, not plugged in
	DeviceStateBusy         DeviceState = "busy"          // another program holds it
	DeviceStateNoPermission DeviceState = "no-permission" // the USB node cannot be opened
	DeviceStateLocked       DeviceState = "locked"        // locked, or not in file-transfer mode
	DeviceStateError        DeviceState = "error"         // present but could not be opened
)

// StorageInfo is one storage area of a device.
type StorageInfo struct {
	ID          uint32 `json:"id"`
	Description string `json:"description"`
	Free        uint64 `json:"free"`
	Capacity    uint64 `json:"capacity"`
	ReadOnly    bool   `json:"read_only"`
}

// DeviceInfo is a device as the window shows it: connected ones, those present with a problem,
// and those known from earlier sessions.
type DeviceInfo struct {
	// Key identifies the attachment (USB port and address, emulated folder); empty when the
	// device is not present.
	Key          string     `json:"key,omitempty"`
	Serial       string     `json:"serial"`
	Manufacturer string     `json:"manufacturer"`
	Model        string     `json:"model"`
	Version      string     `json:"version,omitempty"`
	Kind         DeviceKind `json:"kind"`
	// Transport is "mtp-usb", "mtp-emulated" or "folder".
	Transport string `json:"transport,omitempty"`
	// Label names the device in messages ("Google Pixel 7").
	Label string      `json:"label"`
	State DeviceState `json:"state"`
	// Problem says what is wrong and what to do, when State is busy, no-permission, locked or
	// error.
	Problem  string        `json:"problem,omitempty"`
	Storages []StorageInfo `json:"storages"`
	// Partnerships counts the device's partnerships; New is true for a connected device seen for
	// the first time that has none (the window offers to set it up).
	Partnerships int       `json:"partnerships"`
	New          bool      `json:"new,omitempty"`
	Syncing      bool      `json:"syncing,omitempty"`
	LastSeen     time.Time `json:"last_seen"`
}

// Connected tells whether the device is present and usable.
func (d DeviceInfo) Connected() bool { return d.State == DeviceStateConnected }

// State is what a partnership is doing.
type State string

// Partnership states.
const (
	StateIdle         State = "idle"             // nothing running; see LastOutcome
	StateQueued       State = "queued"           // a session waits for the device's current one
	StateSyncing      State = "syncing"          // a session runs; see Progress
	StateDisconnected State = "disconnected"     // its device is not connected
	StateError        State = "error"            // cannot sync: see Error and Fix
	StateStopped      State = "provider-stopped" // its provider plugin stopped; the next sync restarts it
)

// Outcome is how a session ended.
type Outcome string

// Session outcomes.
const (
	OutcomeOK        Outcome = "ok"        // everything applied
	OutcomeConflicts Outcome = "conflicts" // finished; conflicts wait for the user
	OutcomePartial   Outcome = "partial"   // finished, but some items were skipped (see Errors)
	OutcomeFailed    Outcome = "failed"    // stopped by an error (see Errors)
	OutcomeStopped   Outcome = "stopped"   // stopped by the user or an unplug
)

// Trigger says why a session started.
type Trigger string

// Session triggers.
const (
	TriggerManual   Trigger = "manual"
	TriggerConnect  Trigger = "connect"
	TriggerChange   Trigger = "change"
	TriggerSchedule Trigger = "schedule"
	TriggerRetry    Trigger = "retry"
	TriggerResolve  Trigger = "resolve"
)

// Progress is how far a running session is.
type Progress struct {
	// Phase is "detecting" or "syncing".
	Phase string `json:"phase"`
	// From and To name the pass running ("device" -> "desktop").
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	ItemsDone  int    `json:"items_done"`
	ItemsTotal int    `json:"items_total"`
	BytesDone  int64  `json:"bytes_done"`
	BytesTotal int64  `json:"bytes_total"`
	// Current is the item being applied.
	Current string    `json:"current,omitempty"`
	Started time.Time `json:"started"`
	// Rate is the recent transfer rate in bytes per second (0 before it is known); ETA is the
	// estimated time left (negative when unknown).
	Rate float64       `json:"rate"`
	ETA  time.Duration `json:"eta"`
}

// Status is a partnership's state as the window shows it.
type Status struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Device    string `json:"device"`
	Provider  string `json:"provider"`
	Connected bool   `json:"connected"`
	State     State  `json:"state"`
	// LastSync is when the last finished session ended, with its outcome; zero before the first.
	LastSync    time.Time `json:"last_sync"`
	LastOutcome Outcome   `json:"last_outcome,omitempty"`
	// NextSync is when the next automatic session is due (schedule or retry); zero when none.
	NextSync time.Time `json:"next_sync"`
	// Pending counts changes known to wait for a session: items skipped by the last one,
	// changes notified since, or what Refresh forecast.
	Pending int `json:"pending"`
	// Conflicts counts pending conflicts.
	Conflicts int `json:"conflicts"`
	// Skipped lists the items the last session left out by name, with why (a name the device
	// cannot hold, a name from the device that cannot be a file name here).
	Skipped []SkippedName `json:"skipped,omitempty"`
	// Error says what went wrong and Fix what to do about it; empty when all is well.
	Error string `json:"error,omitempty"`
	Fix   string `json:"fix,omitempty"`
	// Paused is true when the provider asked for no more automatic sessions (repl.Monitoring).
	Paused bool `json:"paused,omitempty"`
	// MassDelete is set when the last session stopped at the mass-delete guard: it waits for
	// the user to allow the deletions (SyncOptions.AllowMassDelete).
	MassDelete *MassDelete `json:"mass_delete,omitempty"`
	// Progress is set while a session runs.
	Progress *Progress `json:"progress,omitempty"`
}

// ConflictSide is one side's version of a conflicting item.
type ConflictSide struct {
	Exists   bool      `json:"exists"`
	Kind     string    `json:"kind"` // "file" or "folder"
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	// Preview shows the content when it is small and readable; nil when there is none.
	Preview *Preview `json:"preview,omitempty"`
}

// Preview is what the conflict dialog shows of one version: the first PreviewBytes of a text,
// the fields of a contact, a thumbnail of a picture.
type Preview struct {
	Text      string  `json:"text,omitempty"`
	Truncated bool    `json:"truncated,omitempty"`
	Fields    []Field `json:"fields,omitempty"`
	// Image is a PNG thumbnail (at most ThumbnailSize pixels on its longer side).
	Image []byte `json:"image,omitempty"`
}

// Field is one field of a contact preview ("TEL", "+351 912 345 678").
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Preview limits.
const (
	PreviewBytes  = 4 << 10
	ThumbnailSize = 160
)

// Conflict is an item changed on both sides that waits for the user (policy "ask").
type Conflict struct {
	// ID names the conflict for Resolve: "<partnership ID>.<number>".
	ID              string `json:"id"`
	Partnership     string `json:"partnership"`
	PartnershipName string `json:"partnership_name"`
	DeviceSerial    string `json:"device_serial"`
	// Path is the item's name in the partnership (a relative path, a contact's name).
	Path     string       `json:"path"`
	Desktop  ConflictSide `json:"desktop"`
	Device   ConflictSide `json:"device"`
	Detected time.Time    `json:"detected"`
	Updated  time.Time    `json:"updated"`
	// Resolution is the choice already made and waiting for the device ("" when none).
	Resolution Keep `json:"resolution,omitempty"`
	// ResolutionError says which choice made for the conflict a session could not carry out, and
	// why ("" when none failed). The conflict then waits for a new choice.
	ResolutionError string `json:"resolution_error,omitempty"`
	// Choices are the resolutions the partnership's stores can carry out: desktop, device and
	// both; no both for a provider whose stores cannot hold a conflict copy beside an item.
	Choices []Keep `json:"choices"`
}

// Counts are what a session did to one side.
type Counts struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
	Renamed int `json:"renamed"`
	Deleted int `json:"deleted"`
}

// Total returns the number of items written or deleted.
func (c Counts) Total() int { return c.Created + c.Updated + c.Renamed + c.Deleted }

// Session is one sync session, running or finished (the history keeps the last HistoryLimit).
type Session struct {
	ID          uint64    `json:"id"`
	Partnership string    `json:"partnership"`
	Name        string    `json:"name"`
	Device      string    `json:"device"`
	Trigger     Trigger   `json:"trigger"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Outcome     Outcome   `json:"outcome,omitempty"`
	ToDesktop   Counts    `json:"to_desktop"`
	ToDevice    Counts    `json:"to_device"`
	// Conflicts counts the conflicts pending after the session; Decided those its policy
	// settled.
	Conflicts int   `json:"conflicts"`
	Decided   int   `json:"decided"`
	Bytes     int64 `json:"bytes"`
	// Skipped counts items that could not be applied (they stay pending).
	Skipped int      `json:"skipped"`
	Errors  []string `json:"errors,omitempty"`
	// Fix says what to do about the error that stopped a failed session ("" when none).
	Fix string `json:"fix,omitempty"`
	// SkippedNames are the items the session left out, by name, with why: those it could not
	// apply, and those a store left out of its enumeration for their names.
	SkippedNames []SkippedName `json:"skipped_names,omitempty"`
	// KeptBoth lists the items of which the session kept two versions, one under a conflict
	// name: two different files that took one name (a collision), a file and a folder, or a
	// conflict settled by keeping both.
	KeptBoth []KeptBoth `json:"kept_both,omitempty"`
}

// SkippedName is an item a session left out, by name, with why.
type SkippedName struct {
	// Path is the item's path in the partnership.
	Path string `json:"path"`
	// Side is where the item is: "desktop" or "device".
	Side   string `json:"side"`
	Reason string `json:"reason"`
}

// KeptBoth is an item of which a session kept two versions.
type KeptBoth struct {
	Path   string `json:"path"`   // the name, kept by one of the versions
	Copy   string `json:"copy"`   // the name the other version is under now
	Reason string `json:"reason"` // "two different items with one name", "policy", ...
}

// HistoryLimit is how many sessions the history keeps.
const HistoryLimit = 500

// Config configures a Manager.
type Config struct {
	// Dir is the config folder (settings, state, plugins). Required.
	Dir string
	// Monitors report devices coming and going (USB, emulated devices, mounted folders).
	Monitors []device.Monitor
	// Service runs the scheduler: automatic sessions on plug-in, on change notifications, on
	// the schedule and after failures. Without it (one-shot commands), sessions run only when
	// asked.
	Service bool
	// NoPlugins skips discovering provider plugins in Dir/plugins.
	NoPlugins bool
	// DebounceDelay is the quiet period after a change notification before a session starts;
	// 0 means Settings.ChangeDelay.
	DebounceDelay time.Duration
	// DebounceMax bounds how long a stream of notifications (a burst of files copied in, a
	// program writing for a while) may postpone the session, from its first notification; 0
	// means Settings.ChangeDelayMax. A burst whose notifications come closer than the quiet
	// period to each other syncs in one session, up to this long.
	DebounceMax time.Duration
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultDebounce is the quiet period after a change before an automatic session: short, so
// that one file saved reaches the device within half a second; a burst of changes keeps
// postponing the session (up to DefaultDebounceMax), so that it syncs as one session.
const DefaultDebounce = 300 * time.Millisecond

// DefaultDebounceMax is how long a stream of changes may postpone an automatic session (what 10
// times the former 2 s quiet period allowed).
const DefaultDebounceMax = 20 * time.Second

// SyncOptions tune Sync.
type SyncOptions struct {
	// AllowMassDelete lets the sessions delete more than Settings.MassDeleteThreshold of a side
	// (the user confirmed).
	AllowMassDelete bool
	// Trigger is recorded in the history; empty means TriggerManual.
	Trigger Trigger
}

// Errors of the manager. Each is wrapped with a message that says what to do.
var (
	// ErrRunning means another Cradle process uses the config folder (see *RunningError).
	ErrRunning = errors.New("cradle is already running")
	// ErrNotConnected means a partnership's device is not connected.
	ErrNotConnected = errors.New("device not connected")
	// ErrUnknownPartnership means no partnership has the ID or name given.
	ErrUnknownPartnership = errors.New("no such partnership")
	// ErrUnknownDevice means no connected or known device has the serial given.
	ErrUnknownDevice = errors.New("no such device")
	// ErrNoConflict means no pending conflict has the ID given.
	ErrNoConflict = errors.New("no such conflict")
	// ErrInvalid means a partnership or settings value is not valid.
	ErrInvalid = errors.New("invalid value")
	// ErrClosed means the Manager was closed.
	ErrClosed = errors.New("the manager is closed")
	// ErrSettings is matched by every *SettingsError.
	ErrSettings = errors.New("settings file cannot be read")
)

// RunningError reports the config folder held by another Cradle process.
type RunningError struct {
	PID int // 0 when unknown
}

func (e *RunningError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("Cradle is already running in another process (pid %d) that takes no commands (a command running on its own, or an older Cradle); try again when it has finished, or quit it", e.PID)
	}
	return "Cradle is already running in another process that takes no commands (a command running on its own, or an older Cradle); try again when it has finished, or quit it"
}

// Unwrap returns ErrRunning.
func (e *RunningError) Unwrap() error { return ErrRunning }

// SettingsError reports a settings file that cannot be used. The file is left as it is.
type SettingsError struct {
	Path string
	Line int // 0 when the problem has no line
	Err  error
}

func (e *SettingsError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("settings file %s, line %d: %v; fix or remove the file (Cradle did not change it)", e.Path, e.Line, e.Err)
	}
	return fmt.Sprintf("settings file %s: %v; fix or remove the file (Cradle did not change it)", e.Path, e.Err)
}

// Unwrap returns ErrSettings and the cause.
func (e *SettingsError) Unwrap() []error { return []error{ErrSettings, e.Err} }

// kindError is an error whose message is complete on its own and that matches one of the
// sentinel errors above (and the cause it wraps, if any).
type kindError struct {
	msg   string
	kind  error
	cause error
	field string // the partnership field it concerns, if one (see InvalidField)
}

// InvalidField names the field of a Partnership that a validation error concerns: "name",
// "provider", "device", "direction", "on-conflict", "interval", or "option:" and the option's
// name; "" when the error names none. A form puts the message beside that field.
func InvalidField(err error) string {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.field
	}
	return ""
}

// fieldf is kindf(ErrInvalid, ...) for the given field.
func fieldf(field, format string, args ...any) error {
	err := kindf(ErrInvalid, format, args...)
	err.(*kindError).field = field
	return err
}

func (e *kindError) Error() string { return e.msg }

// Unwrap returns the sentinel and the cause.
func (e *kindError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// kindf formats an error that matches kind; a %w in format is kept as its cause.
func kindf(kind error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &kindError{msg: err.Error(), kind: kind, cause: errors.Unwrap(err)}
}
