package manager

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/mtp"
	_ "github.com/cradle-sync/cradle/providers/all"
)

// world is a config folder, a desktop folder and an emulated device's folder.
type world struct {
	t       *testing.T
	config  string
	desktop string
	phone   string
	mon     *emulator.Monitor
}

func newWorld(t *testing.T) *world {
	t.Helper()
	root := t.TempDir()
	w := &world{t: t, config: filepath.Join(root, "config"), desktop: filepath.Join(root, "desktop"), phone: filepath.Join(root, "phone")}
	for _, d := range []string{w.desktop, w.phone} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.mon = emulator.NewMonitor(emulator.Options{}, w.phone)
	return w
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (w *world) open(service bool, monitors ...device.Monitor) *Manager {
	w.t.Helper()
	if len(monitors) == 0 {
		monitors = []device.Monitor{w.mon}
	}
	m, err := New(ctxT(w.t), Config{Dir: w.config, Monitors: monitors, Service: service, NoPlugins: true, DebounceDelay: 300 * time.Millisecond})
	if err != nil {
		w.t.Fatalf("New: %v", err)
	}
	m.progressInterval = 5 * time.Millisecond
	w.t.Cleanup(func() { m.Close() })
	return m
}

func (w *world) serial() string { return emulator.Serial(w.phone) }

func (w *world) waitDevice(m *Manager) {
	w.t.Helper()
	if err := m.WaitDevices(ctxT(w.t), emulator.Key(w.phone)); err != nil {
		w.t.Fatalf("WaitDevices: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// faultMonitor attaches one emulated device and keeps its Emulator, so a test can inject faults
// (a busy device, an unplug after so many bytes) into the real MTP exchange.
type faultMonitor struct {
	dir   string
	emu   chan *emulator.Emulator
	saved *emulator.Emulator
}

func newFaultMonitor(dir string) *faultMonitor {
	return &faultMonitor{dir: dir, emu: make(chan *emulator.Emulator, 1)}
}

func (f *faultMonitor) Run(ctx context.Context, report func(device.Presence)) error {
	e, err := emulator.New(f.dir, emulator.Options{})
	if err != nil {
		return err
	}
	d, err := mtp.Open(ctx, e, mtp.Options{Transport: "mtp-emulated"})
	if err != nil {
		e.Close()
		return err
	}
	f.emu <- e
	report(device.Presence{Key: emulator.Key(f.dir), Connected: true, Device: d, Label: emulator.Label(f.dir)})
	<-ctx.Done()
	d.Close()
	return nil
}

// emulator returns the device's Emulator once it runs.
func (f *faultMonitor) emulator(t *testing.T) *emulator.Emulator {
	if f.saved == nil {
		select {
		case f.saved = <-f.emu:
		case <-time.After(10 * time.Second):
			t.Fatal("the emulated device did not start")
		}
	}
	return f.saved
}
