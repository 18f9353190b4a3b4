package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cradle-sync/cradle/providers"
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
	// debounceMax bounds how long a stream of notifications postpones a session. Both are
	// Config's, 0 when the settings decide (see changeDelaysLocked).
	debounceMax time.Duration
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
		debounceMax:      cfg.DebounceMax,
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
