package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// Manager is Cradle's service manager. Create it with New and release it with Close. Its methods
// are safe for concurrent use.
type Manager struct {
	cfg      Config
	dir      string
	log      *slog.Logger
	bus      *bus
	db       *db
	debounce time.Duration
	// progressInterval is how often a session reports progress (tests shorten it).
	progressInterval time.Duration

	// ctx lives until Close; monitors and device workers run under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	conf     *config
	devices  map[string]*devState     // connected devices by serial
	byKey    map[string]string        // presence key -> serial of a connected device
	problems map[string]DeviceInfo    // presence key -> a device present with a problem
	parts    map[string]*partState    // runtime state by partnership ID
	leaving  map[string]chan struct{} // serial -> done of its last worker
	seenKeys map[string]bool          // presence keys reported at least once
	wake     chan struct{}            // closed and replaced at every presence report
	closed   bool

	// pluginErrs are the plugins that could not be loaded (set by New, then read-only).
	pluginErrs []string
}

// New opens the config folder cfg.Dir (creating it when missing), reads the settings and
// partnerships, loads provider plugins, and starts the device monitors. It fails with a
// *RunningError when another Cradle process uses the folder and a *SettingsError when the
// settings file cannot be read (the file is left as it is). ctx bounds the start (plugin
// discovery); the manager then runs until Close.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Dir == "" {
		return nil, kindf(ErrInvalid, "no config folder given")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("config folder %s: %w", cfg.Dir, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, fmt.Errorf("config folder %s cannot be created or written: %w; choose another with --config", dir, unwrapPathError(err))
	}
	if err := checkWritable(dir); err != nil {
		return nil, err
	}
	// The settings first: a file that cannot be read stops everything before anything in the
	// folder is written (the database's commit, the lock).
	conf, err := loadConfig(filepath.Join(dir, SettingsFile))
	if err != nil {
		return nil, err
	}
	d, err := openDB(dir)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:              cfg,
		dir:              dir,
		log:              cfg.Logger,
		bus:              newBus(),
		db:               d,
		debounce:         cfg.DebounceDelay,
		progressInterval: 250 * time.Millisecond,
		conf:             conf,
		devices:          map[string]*devState{},
		byKey:            map[string]string{},
		problems:         map[string]DeviceInfo{},
		parts:            map[string]*partState{},
		seenKeys:         map[string]bool{},
		leaving:          map[string]chan struct{}{},
		wake:             make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.debounce <= 0 {
		m.debounce = DefaultDebounce
	}
	if !cfg.NoPlugins {
		m.loadPlugins(ctx)
	}
	last, err := d.lastSessions()
	if err != nil {
		m.log.Warn("manager: read the history", "err", err)
	}
	for _, p := range conf.Partnerships {
		ps := newPartState(p.ID)
		if s, ok := last[p.ID]; ok {
			ps.last, ps.hasLast = s, true
			ps.setErrorFromSession(s)
		}
		m.parts[p.ID] = ps
		m.openHandleFile(ps)
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, mon := range cfg.Monitors {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := mon.Run(m.ctx, m.presence); err != nil && m.ctx.Err() == nil {
				m.log.Warn("manager: a device monitor stopped", "err", err)
				m.bus.publish(Error, "", "", fmt.Sprintf("Devices of one kind cannot be watched: %v", err))
			}
		}()
	}
	return m, nil
}

// checkWritable makes sure files can be created in dir, with a message that says what to do.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("config folder %s is not writable: %w; fix its permissions or choose another with --config", dir, unwrapPathError(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Close stops the monitors and every session (cancelling them cleanly), closes the providers,
// the handle files and the database, and closes every subscription. It is safe to call more than
// once.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for _, ps := range m.parts {
		ps.stopTimers()
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, ps := range m.parts {
		if err := ps.closeInstance(); err != nil {
			errs = append(errs, err)
		}
		if ps.hf != nil {
			if err := ps.hf.Close(); err != nil {
				errs = append(errs, err)
			}
			ps.hf = nil
		}
	}
	if err := m.db.close(m.dir); err != nil {
		errs = append(errs, err)
	}
	m.bus.close()
	return errors.Join(errs...)
}

// PluginErrors says which provider plugins in Dir/plugins could not be loaded, and why (they are
// skipped; the others work).
func (m *Manager) PluginErrors() []string { return slices.Clone(m.pluginErrs) }

// Dir returns the config folder (absolute).
func (m *Manager) Dir() string { return m.dir }

// Subscribe returns a subscription to the events whose type is in mask (EventAll for every
// event). Close it when done.
func (m *Manager) Subscribe(mask EventType) *Subscription { return m.bus.subscribe(mask) }

// Providers returns the declarations of the registered providers (built-in and plugins), sorted
// by name: the window's "add partnership" form is built from them.
func (m *Manager) Providers() []Provider { return providers.All() }

// Settings returns the global settings.
func (m *Manager) Settings() Settings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conf.Settings
}

// SetSettings validates and saves the global settings. Schedules of connected devices follow the
// new intervals at once.
func (m *Manager) SetSettings(s Settings) error {
	if err := checkSettings(s); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	next := m.conf.clone()
	next.Settings = s
	if err := m.saveLocked(next); err != nil {
		return err
	}
	for _, p := range m.conf.Partnerships {
		if ds := m.devices[p.Device]; ds != nil && m.cfg.Service {
			m.scheduleLocked(p, m.parts[p.ID], ds)
		}
	}
	m.bus.publish(SettingsChanged, "", "", s)
	return nil
}

// saveLocked writes next to the settings file and makes it current.
func (m *Manager) saveLocked(next *config) error {
	if err := saveConfig(filepath.Join(m.dir, SettingsFile), next); err != nil {
		return fmt.Errorf("save the settings: %w", err)
	}
	m.conf = next
	return nil
}

// ---- devices ----

// devState is a connected device and its session worker.
type devState struct {
	key    string
	dev    device.Device
	info   DeviceInfo
	ready  bool // storages read, DeviceConnected published
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker has torn down

	qmu   sync.Mutex
	queue []*job
	qwake chan struct{}
}

func (m *Manager) presence(p device.Presence) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.seenKeys[p.Key] = true
	close(m.wake)
	m.wake = make(chan struct{})
	if !p.Connected {
		if info, ok := m.problems[p.Key]; ok {
			delete(m.problems, p.Key)
			info.State = DeviceStateDisconnected
			m.bus.publish(DeviceDisconnected, info.Serial, "", info)
		}
		if serial, ok := m.byKey[p.Key]; ok {
			m.detachLocked(serial)
		}
		return
	}
	if p.Err != nil || p.Device == nil {
		if serial, ok := m.byKey[p.Key]; ok {
			m.detachLocked(serial)
		}
		err := p.Err
		if err == nil {
			err = errors.New("the device could not be opened")
		}
		info := DeviceInfo{Key: p.Key, Label: p.Label, Model: p.Label, State: diagnosisState(err), Problem: err.Error(),
			Kind: device.KindUnknown, LastSeen: time.Now(), Storages: []StorageInfo{}}
		m.problems[p.Key] = info
		m.bus.publish(DeviceProblem, "", "", info)
		return
	}
	delete(m.problems, p.Key)
	di := p.Device.Info()
	serial := di.Serial
	if serial == "" {
		serial = p.Key
	}
	if _, ok := m.devices[serial]; ok {
		m.detachLocked(serial)
	}
	prev := m.leaving[serial]
	label := p.Label
	if di.Model != "" {
		label = strings.TrimSpace(di.Manufacturer + " " + di.Model)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	ds := &devState{
		key: p.Key, dev: p.Device, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		qwake: make(chan struct{}, 1),
		info: DeviceInfo{
			Key: p.Key, Serial: serial, Manufacturer: di.Manufacturer, Model: di.Model, Version: di.Version,
			Kind: di.Kind, Transport: di.Transport, Label: label, State: DeviceStateConnected,
			LastSeen: time.Now(), Storages: []StorageInfo{},
		},
	}
	m.devices[serial] = ds
	m.byKey[p.Key] = serial
	m.wg.Add(1)
	go m.runDevice(ds, prev)
}

// detachLocked forgets a connected device: its worker stops (cancelling a running session) and
// tears its partnerships' providers down.
func (m *Manager) detachLocked(serial string) {
	ds, ok := m.devices[serial]
	if !ok {
		return
	}
	delete(m.devices, serial)
	delete(m.byKey, ds.key)
	m.leaving[serial] = ds.done
	ds.cancel()
	for _, p := range m.conf.Partnerships {
		if p.Device == serial {
			if ps := m.parts[p.ID]; ps != nil {
				ps.stopTimers()
				ps.nextSync = time.Time{}
			}
		}
	}
	info := ds.info
	info.State = DeviceStateDisconnected
	info.Key = ""
	info.Syncing = false
	m.bus.publish(DeviceDisconnected, serial, "", info)
	for _, p := range m.conf.Partnerships {
		if p.Device == serial {
			m.publishStatusLocked(p.ID)
		}
	}
}

func diagnosisState(err error) DeviceState {
	switch {
	case errors.Is(err, device.ErrBusy):
		return DeviceStateBusy
	case errors.Is(err, device.ErrPermission):
		return DeviceStateNoPermission
	case errors.Is(err, device.ErrLocked):
		return DeviceStateLocked
	}
	return DeviceStateError
}

// Devices returns the devices connected now, those present with a problem (busy, no
// permission, locked), and those known from earlier that have partnerships, connected ones
// first.
func (m *Manager) Devices() []DeviceInfo {
	known, err := m.db.knownDevices()
	if err != nil {
		m.log.Warn("manager: read known devices", "err", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []DeviceInfo
	have := map[string]bool{}
	for serial, ds := range m.devices {
		info := m.deviceInfoLocked(ds)
		out = append(out, info)
		have[serial] = true
	}
	for _, info := range m.problems {
		out = append(out, info)
	}
	for _, k := range known {
		if have[k.Serial] {
			continue
		}
		n := m.partnershipCountLocked(k.Serial)
		if n == 0 {
			continue
		}
		out = append(out, DeviceInfo{
			Serial: k.Serial, Manufacturer: k.Manufacturer, Model: k.Model, Kind: k.Kind, Label: k.Label,
			State: DeviceStateDisconnected, Storages: []StorageInfo{}, Partnerships: n, LastSeen: k.LastSeen,
		})
	}
	rank := func(s DeviceState) int {
		switch s {
		case DeviceStateConnected:
			return 0
		case DeviceStateDisconnected:
			return 2
		}
		return 1
	}
	sort.SliceStable(out, func(i, j int) bool {
		if ri, rj := rank(out[i].State), rank(out[j].State); ri != rj {
			return ri < rj
		}
		if out[i].Label != out[j].Label {
			return out[i].Label < out[j].Label
		}
		return out[i].Serial+out[i].Key < out[j].Serial+out[j].Key
	})
	return out
}

func (m *Manager) deviceInfoLocked(ds *devState) DeviceInfo {
	info := ds.info
	info.Storages = slices.Clone(ds.info.Storages)
	info.Partnerships = m.partnershipCountLocked(info.Serial)
	if info.Partnerships > 0 {
		info.New = false
	}
	for _, p := range m.conf.Partnerships {
		if p.Device == info.Serial {
			if ps := m.parts[p.ID]; ps != nil && ps.running {
				info.Syncing = true
			}
		}
	}
	return info
}

func (m *Manager) partnershipCountLocked(serial string) int {
	n := 0
	for _, p := range m.conf.Partnerships {
		if p.Device == serial {
			n++
		}
	}
	return n
}

// WaitDevices waits until every presence key in keys (emulator.Key(dir), a USB port key) has been
// reported by a monitor, connected or with a problem, or until ctx is done. One-shot commands
// call it so that devices attached at start are known before they act.
func (m *Manager) WaitDevices(ctx context.Context, keys ...string) error {
	for {
		m.mu.Lock()
		missing := ""
		for _, k := range keys {
			if !m.seenKeys[k] {
				missing = k
				break
			}
		}
		wake := m.wake
		ready := true
		if missing == "" {
			// A connected device counts once its worker has read its storages.
			for _, k := range keys {
				if serial, ok := m.byKey[k]; ok && !m.devices[serial].ready {
					ready = false
				}
			}
		}
		m.mu.Unlock()
		if missing == "" && ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if missing != "" {
				return fmt.Errorf("device %s did not appear: %w", missing, ctx.Err())
			}
			return ctx.Err()
		case <-wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BrowseDevice lists a folder on a connected device (for the window's device folder chooser).
// storage 0 means the device's first storage.
func (m *Manager) BrowseDevice(ctx context.Context, serial string, storage uint32, dir string) ([]DeviceObject, error) {
	m.mu.Lock()
	ds, ok := m.devices[serial]
	m.mu.Unlock()
	if !ok {
		return nil, kindf(ErrNotConnected, "device %s is not connected; plug it in and unlock it", serial)
	}
	sid := device.StorageID(storage)
	if sid == 0 {
		st, err := ds.dev.Storages(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the device's storages: %w", err)
		}
		if len(st) == 0 {
			return nil, fmt.Errorf("the device reports no storage; unlock it and choose \"File transfer\"")
		}
		sid = st[0].ID
	}
	objs, err := ds.dev.List(ctx, sid, dir)
	if err != nil {
		return nil, fmt.Errorf("list %q on the device: %w", dir, err)
	}
	return objs, nil
}

// ---- handle files ----

func (m *Manager) handlePath(id string) string { return filepath.Join(m.dir, "state", id+".repl") }
func (m *Manager) stateDir(id string) string   { return filepath.Join(m.dir, "state", id) }

// setAside moves a damaged handle file aside and tells the user; the next open starts a new one,
// which the next session rebuilds.
func (m *Manager) setAside(id, path string) error {
	aside, err := repl.MoveAside(path)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("The sync state of partnership %s was damaged; it was moved to %s and will be rebuilt at the next sync (nothing is duplicated or lost).", id, aside)
	m.log.Warn("manager: " + msg)
	m.bus.publish(Error, "", id, msg)
	return nil
}

// discardDamaged closes a partnership's handle file found damaged in the middle of a session,
// moves it aside and opens a new one in its place (caller holds m.mu); the next session
// rebuilds it.
func (m *Manager) discardDamaged(ps *partState) error {
	if ps.hf != nil {
		if err := ps.hf.Close(); err != nil {
			m.log.Debug("manager: close a damaged handle file", "err", err)
		}
		ps.hf = nil
	}
	path := m.handlePath(ps.id)
	if err := m.setAside(ps.id, path); err != nil {
		return err
	}
	hf, err := repl.Open(path, repl.Options{})
	if err != nil {
		ps.hfErr = fmt.Errorf("open the sync state %s: %w", path, err)
		return err
	}
	ps.hf, ps.hfErr = hf, nil
	return nil
}

// openState opens a partnership's handle file. An empty one is damage (a handle file is never
// empty: it is created with its first pages), which the handle file itself would take for a new
// file and silently start again.
func openState(path string) (*repl.HandleFile, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, &repl.CorruptError{Path: path, Err: errors.New("the file is empty")}
	}
	return repl.Open(path, repl.Options{})
}

// openHandleFile opens the partnership's handle file (caller holds m.mu or owns ps alone). A
// damaged one is moved aside and replaced by a fresh one, and the user is told: the next session
// rebuilds the metadata by matching items, without duplicates. So is one found missing after
// the partnership has synced (someone deleted it).
func (m *Manager) openHandleFile(ps *partState) {
	if ps.hf != nil {
		return
	}
	path := m.handlePath(ps.id)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) && ps.hasLast {
		msg := fmt.Sprintf("The sync state of partnership %s (%s) is missing; it will be rebuilt at the next sync by matching the items of both sides (nothing is duplicated or lost; items that differ become conflicts).", ps.id, path)
		m.log.Warn("manager: " + msg)
		m.bus.publish(Error, "", ps.id, msg)
	}
	hf, err := openState(path)
	if errors.Is(err, repl.ErrCorrupt) {
		if merr := m.setAside(ps.id, path); merr != nil {
			ps.hfErr = fmt.Errorf("%v; moving it aside failed: %w", err, merr)
			return
		}
		hf, err = repl.Open(path, repl.Options{})
	}
	if errors.Is(err, repl.ErrInUse) {
		ps.hfErr = &RunningError{PID: readPID(m.dir)}
		return
	}
	if err != nil {
		ps.hfErr = fmt.Errorf("open the sync state %s: %w", path, err)
		return
	}
	ps.hf, ps.hfErr = hf, nil
	if cs, err := hf.Conflicts(); err == nil {
		ps.conflicts = len(cs)
	}
}
