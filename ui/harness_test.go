package ui

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/manager/demo"

	// As in main.go: a C locale must not make fyne log errors at start.
	_ "github.com/cradle-sync/cradle/ui/locale"
)

// waitLimit bounds every wait of a test for the window or the manager.
const waitLimit = 60 * time.Second

// harness is a window on fyne's test driver over a real manager. Its Do queues what the window
// hands to the UI goroutine, and pump runs the queue on the test's goroutine, as the real
// driver runs its event loop: widgets are only ever touched from the test's goroutine.
type harness struct {
	t     *testing.T
	app   fyne.App
	m     *manager.Manager
	w     *Window
	demo  *demo.Demo
	queue chan func()
	// applied counts the updates run through Do.
	applied int
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newHarness opens a window over a manager with cfg (Dir set by the caller).
func newHarness(t *testing.T, cfg manager.Config, keys ...string) *harness {
	t.Helper()
	h := &harness{t: t, queue: make(chan func(), 4096)}
	h.app = test.NewTempApp(t)
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	m, err := manager.New(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("manager.New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.WaitDevices(testCtx(t), keys...); err != nil {
		t.Fatalf("WaitDevices: %v", err)
	}
	h.m = m
	h.w = New(h.app, m, Options{Do: func(f func()) { h.queue <- f }, Notifications: true, Logger: quietLogger()})
	t.Cleanup(h.w.Close)
	h.w.Window().Resize(fyne.NewSize(900, 660))
	h.w.Window().Show()
	return h
}

// newDemoHarness opens a window over the demo: an emulated phone with sample content, three
// partnerships (Documents, Camera roll, Contacts) and one conflict waiting.
func newDemoHarness(t *testing.T) *harness {
	t.Helper()
	d, err := demo.Setup(testCtx(t), filepath.Join(t.TempDir(), "demo"))
	if err != nil {
		t.Fatalf("demo.Setup: %v", err)
	}
	cfg := d.Config()
	cfg.DebounceDelay = 200 * time.Millisecond
	h := newHarness(t, cfg, d.DeviceKey())
	h.demo = d
	h.quiet()
	return h
}

// quiet waits until no session runs or waits and none has started for a while: the manager may
// start one on its own (a change noticed, a schedule due), and a test that taps Sync must not
// tap Stop instead.
func (h *harness) quiet() {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		h.settle(400 * time.Millisecond)
		busy := false
		for _, st := range h.w.statuses {
			busy = busy || st.State == manager.StateSyncing || st.State == manager.StateQueued
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the manager did not settle within %v", waitLimit)
		}
	}
}

// pump runs what the window queued for the UI goroutine until cond holds.
func (h *harness) pump(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(waitLimit)
	for !cond() {
		select {
		case f := <-h.queue:
			h.applied++
			f()
		case <-deadline:
			h.t.Fatalf("waited %v for %s", waitLimit, what)
		}
	}
}

// settle runs what is queued now and what arrives within d.
func (h *harness) settle(d time.Duration) {
	end := time.After(d)
	for {
		select {
		case f := <-h.queue:
			h.applied++
			f()
		case <-end:
			return
		}
	}
}

// part returns the ID of the demo partnership named name.
func (h *harness) part(name string) string {
	h.t.Helper()
	p, err := h.m.Partnership(name)
	if err != nil {
		h.t.Fatalf("Partnership(%q): %v", name, err)
	}
	return p.ID
}

// row returns the row of partnership name, failing when it is not shown.
func (h *harness) row(name string) *partnershipRow {
	h.t.Helper()
	r := h.w.rows[h.part(name)]
	if r == nil {
		h.t.Fatalf("no row for partnership %q", name)
	}
	return r
}

// syncedAfter tells whether each partnership finished a session that ended after t and nothing
// runs now.
func (h *harness) syncedAfter(t time.Time, ids ...string) bool {
	for _, id := range ids {
		st := h.w.statuses[id]
		if st.State == manager.StateSyncing || st.State == manager.StateQueued || !st.LastSync.After(t) {
			return false
		}
	}
	return true
}

// overlayTop returns the dialog shown on top of the window, or nil.
func (h *harness) overlayTop() fyne.CanvasObject {
	return h.w.Window().Canvas().Overlays().Top()
}

// sentTitles lists the titles of the notifications sent.
func (h *harness) sentTitles() []string {
	var out []string
	for _, n := range h.w.sent {
		out = append(out, n.Title)
	}
	return out
}

// hasSent tells whether a notification whose title contains title was sent.
func (h *harness) hasSent(title string) bool {
	for _, n := range h.w.sent {
		if strings.Contains(n.Title, title) {
			return true
		}
	}
	return false
}

// writeFile writes a file as an editor saves it (a temporary file renamed into place), so a
// watcher never reads it half written.
func writeFile(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".~"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if !mod.IsZero() {
		if err := os.Chtimes(tmp, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
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

// richText returns the text of a RichText's segments, one per line.
func richText(rt *widget.RichText) string {
	var lines []string
	for _, s := range rt.Segments {
		if t, ok := s.(*widget.TextSegment); ok {
			lines = append(lines, t.Text)
		}
	}
	return strings.Join(lines, "\n")
}

// diagnosedMonitor reports the presences sent to it, as device/usb reports a device it diagnosed
// (busy, no permission, locked). It is the device side of the manager's Monitor contract for
// states the emulator cannot be in: a USB node the user may not open, an interface another
// program claimed. (device/usb needs cgo and a USB bus; test/usbvm runs it for real.)
type diagnosedMonitor struct {
	presences chan device.Presence
}

func newDiagnosedMonitor() *diagnosedMonitor {
	return &diagnosedMonitor{presences: make(chan device.Presence, 4)}
}

func (s *diagnosedMonitor) Run(ctx context.Context, report func(device.Presence)) error {
	for {
		select {
		case p := <-s.presences:
			report(p)
		case <-ctx.Done():
			return nil
		}
	}
}
