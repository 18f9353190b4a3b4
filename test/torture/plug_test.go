package torture

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/mtp"
	"github.com/cradle-sync/cradle/manager"
	_ "github.com/cradle-sync/cradle/providers/all"
)

// plugMonitor is a device monitor with one emulated device that a test plugs in and that
// disappears on its own when a fault cuts it off, as a phone pulled out of its cable does: its
// Run reports it gone and closes it. Each plug-in is a new emulated device on the same folder
// (with the same serial), so a test can inject faults in the real MTP exchange of each session.
type plugMonitor struct {
	dir  string
	plug chan emulator.Options

	mu      sync.Mutex
	emu     *emulator.Emulator // the device plugged in now; nil when none
	closed  chan struct{}      // closed once the last device unplugged is closed
	changed chan struct{}      // closed and replaced at every plug-in and unplug
}

var _ device.Monitor = (*plugMonitor)(nil)

func newPlugMonitor(dir string) *plugMonitor {
	c := make(chan struct{})
	close(c)
	return &plugMonitor{dir: dir, plug: make(chan emulator.Options), closed: c, changed: make(chan struct{})}
}

// Run reports plug-ins and disappearances until ctx is done.
func (p *plugMonitor) Run(ctx context.Context, report func(device.Presence)) error {
	var (
		dev  *mtp.Device
		emu  *emulator.Emulator
		gone <-chan struct{}
	)
	unplug := func() {
		report(device.Presence{Key: emulator.Key(p.dir), Connected: false, Label: emulator.Label(p.dir)})
		dev.Close() // the emulator stops with it: an upload cut off is discarded
		p.mu.Lock()
		p.emu = nil
		close(p.closed)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		dev, emu, gone = nil, nil, nil
	}
	for {
		select {
		case <-ctx.Done():
			if dev != nil {
				dev.Close()
			}
			return nil
		case <-gone:
			unplug()
		case opts := <-p.plug:
			if dev != nil {
				emu.Unplug()
				<-gone
				unplug()
			}
			var err error
			if emu, err = emulator.New(p.dir, opts); err != nil {
				return err
			}
			if dev, err = mtp.Open(ctx, emu, opts.MTPOptions()); err != nil {
				emu.Close()
				return err
			}
			gone = dev.Gone()
			p.mu.Lock()
			p.emu, p.closed = emu, make(chan struct{})
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
			report(device.Presence{Key: emulator.Key(p.dir), Connected: true, Device: dev, Label: emulator.Label(p.dir)})
		}
	}
}

// plugIn attaches a new emulated device with opts and waits until m can use it.
func (p *plugMonitor) plugIn(t *testing.T, m *manager.Manager, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	opts.Logger = quietLog
	p.mu.Lock()
	changed := p.changed
	p.mu.Unlock()
	select {
	case p.plug <- opts:
	case <-time.After(30 * time.Second):
		t.Fatal("the device monitor does not run")
	}
	var emu *emulator.Emulator
	for emu == nil {
		select {
		case <-changed:
		case <-time.After(30 * time.Second):
			t.Fatal("the device was not plugged in")
		}
		p.mu.Lock()
		emu, changed = p.emu, p.changed
		p.mu.Unlock()
	}
	waitFor(t, 30*time.Second, "the device to be ready", func() bool {
		for _, d := range m.Devices() {
			if d.Serial == emulator.Serial(p.dir) && d.Connected() && len(d.Storages) > 0 {
				for _, s := range m.Status() {
					if !s.Connected {
						return false
					}
				}
				return true
			}
		}
		return false
	})
	return emu
}

// waitGone waits until the device plugged in last has disappeared and been closed (its uploads
// cut off discarded), and the manager saw it go.
func (p *plugMonitor) waitGone(t *testing.T, m *manager.Manager) {
	t.Helper()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the device did not go")
	}
	waitFor(t, 30*time.Second, "the manager to see the device gone", func() bool {
		for _, s := range m.Status() {
			if s.Connected {
				return false
			}
		}
		return true
	})
}

// current returns the emulated device plugged in now (nil when none).
func (p *plugMonitor) current() *emulator.Emulator {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.emu
}

var quietLog = slog.New(slog.DiscardHandler)

// waitFor polls cond every 10 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inproc is a manager in the test's process over a config folder, with the plugMonitor's
// device: the manager, providers, MTP initiator and handle file are the real ones; only the
// command line is left out, so that faults can be injected into the device.
type inproc struct {
	e   *env
	mon *plugMonitor
	m   *manager.Manager
	log *bytes.Buffer
	p   manager.Partnership
}

// openInproc starts a manager for e, plugs the device in and adds a files partnership of the
// desktop folder with the device's Documents (with the given options added).
func openInproc(t *testing.T, e *env, opts emulator.Options, extra map[string]string) *inproc {
	t.Helper()
	var logBuf bytes.Buffer
	ip := &inproc{e: e, mon: newPlugMonitor(e.phone), log: &logBuf}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := manager.New(context.Background(), manager.Config{Dir: e.config, Monitors: []device.Monitor{ip.mon}, NoPlugins: true, Logger: log})
	if err != nil {
		t.Fatalf("manager.New: %v", err)
	}
	ip.m = m
	t.Cleanup(func() { m.Close() })
	ip.mon.plugIn(t, m, opts)
	o := map[string]string{"desktop": e.desktop, "device-path": "Documents"}
	for k, v := range extra {
		o[k] = v
	}
	p, err := m.AddPartnership(context.Background(), manager.Partnership{Name: "docs", Provider: "files", Device: emulator.Serial(e.phone), Options: o})
	if err != nil {
		t.Fatalf("AddPartnership: %v", err)
	}
	ip.p = p
	return ip
}

// sync runs one session of the partnership.
func (ip *inproc) sync(t *testing.T, opts manager.SyncOptions) manager.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ss, err := ip.m.Sync(ctx, opts, ip.p.ID)
	if err != nil {
		return manager.Session{Outcome: manager.OutcomeFailed, Errors: []string{err.Error()}}
	}
	if len(ss) != 1 {
		t.Fatalf("Sync returned %d sessions, want 1", len(ss))
	}
	return ss[0]
}

// lockedWriter serialises writes to a buffer the test reads on failure.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// strangers lists the files below dir whose content is none the user ever made (a partial
// copy), and apart the temporary files, with whether each holds a whole version the user made;
// Cradle's metadata folder is left out.
func strangers(dir string, made map[string]bool) (partial, wholeTemps, partialTemps []string, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if d.Name() == ".cradle" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch whole := made[hash(b)]; {
		case isTemp(d.Name()) && whole:
			wholeTemps = append(wholeTemps, rel)
		case isTemp(d.Name()):
			partialTemps = append(partialTemps, fmt.Sprintf("%s (%d bytes)", rel, len(b)))
		case !whole:
			partial = append(partial, fmt.Sprintf("%s (%d bytes, content nobody made)", rel, len(b)))
		}
		return nil
	})
	return partial, wholeTemps, partialTemps, err
}

// summary lists a session's outcome and errors in one line.
func summary(s manager.Session) string {
	return fmt.Sprintf("%s, to the device %+v, to the desktop %+v, %d conflicts, %d skipped: %s",
		s.Outcome, s.ToDevice, s.ToDesktop, s.Conflicts, s.Skipped, strings.Join(s.Errors, "; "))
}
