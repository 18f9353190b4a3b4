package manager

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
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
