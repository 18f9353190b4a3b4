package ui

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/manager/demo"
)

// trayApp is fyne's test application with the desktop tray calls recorded: there is no
// StatusNotifier host under the test driver (or under Xvfb) to show the icon.
type trayApp struct {
	fyne.App
	appIcon fyne.Resource
	menu    *fyne.Menu
	icon    fyne.Resource
	window  fyne.Window
}

func (a *trayApp) SetIcon(r fyne.Resource) { a.appIcon = r }
func (a *trayApp) Icon() fyne.Resource     { return a.appIcon }

func (a *trayApp) SetSystemTrayMenu(m *fyne.Menu)    { a.menu = m }
func (a *trayApp) SetSystemTrayIcon(r fyne.Resource) { a.icon = r }
func (a *trayApp) SetSystemTrayWindow(w fyne.Window) { a.window = w }
func (a *trayApp) menuLabels() (labels []string) {
	for _, it := range a.menu.Items {
		labels = append(labels, it.Label)
	}
	return labels
}

// TestTray checks the tray menu: the status line, Sync Now, and the window hidden in the tray
// when closed and opened again from it.
func TestTray(t *testing.T) {
	d, err := demo.Setup(testCtx(t), filepath.Join(t.TempDir(), "demo"))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, queue: make(chan func(), 4096)}
	base := test.NewTempApp(t)
	icon := fyne.NewStaticResource("icon.png", []byte("png"))
	ta := &trayApp{App: base}
	ta.SetIcon(icon)
	h.app = ta
	cfg := d.Config()
	cfg.Logger = quietLogger()
	m, err := manager.New(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.WaitDevices(testCtx(t), d.DeviceKey()); err != nil {
		t.Fatal(err)
	}
	h.m, h.demo = m, d
	h.w = New(ta, m, Options{Tray: true, Notifications: true, Do: func(f func()) { h.queue <- f }, Logger: quietLogger()})
	t.Cleanup(h.w.Close)
	w := h.w
	if w.tray == nil || ta.menu == nil {
		t.Fatal("no tray menu with Tray set on a desktop application")
	}
	if ta.icon != icon || ta.window != w.win {
		t.Errorf("tray icon or window not set: icon %v, window %v", ta.icon, ta.window)
	}
	want := []string{"1 conflict needs you", "", "Sync Now", "Open Cradle", "Quit"}
	if got := ta.menuLabels(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tray menu = %q, want %q", got, want)
	}
	if !ta.menu.Items[0].Disabled || !ta.menu.Items[4].IsQuit {
		t.Errorf("the status line is not disabled or Quit is not the quit item")
	}

	start := time.Now()
	ids := []string{h.part(demo.Documents), h.part(demo.Photos), h.part(demo.Contacts)}
	ta.menu.Items[2].Action()
	h.pump("the tray's Sync Now to sync everything", func() bool { return h.syncedAfter(start, ids...) })
	if _, err := os.Stat(filepath.Join(d.DeviceDir, "Documents", "Packing list.txt")); err != nil {
		t.Errorf("the tray's Sync Now did not send the new document: %v", err)
	}
	test.Tap(w.conflictsButton)
	test.Tap(w.conflictDlg.keepDesktop)
	h.pump("the tray to say all is well", func() bool { return ta.menu.Items[0].Label == "Up to date" })

	// Closing the window hides it in the tray (the setting is on by default) and says so once.
	w.closeRequested()
	if !w.hidden || !h.hasSent("Cradle keeps running") {
		t.Errorf("closing the window did not hide it in the tray with a notification (hidden %v, sent %q)", w.hidden, h.sentTitles())
	}
	ta.menu.Items[3].Action()
	if w.hidden {
		t.Errorf("Open did not bring the window back")
	}
}

// TestProviderStopped kills a provider plugin's process: the row says the provider stopped
// and that the next sync restarts it, a notification says so too, and Sync does restart it.
func TestProviderStopped(t *testing.T) {
	cfgDir := t.TempDir()
	bin := filepath.Join(cfgDir, "plugins", "cradle-provider-notes")
	build := exec.Command("go", "build", "-o", bin, "github.com/cradle-sync/cradle/examples/cradle-provider-notes")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the example plugin: %v\n%s", err, out)
	}
	phone, notes := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(notes, "todo.md"), "- buy milk\n", time.Time{})
	mon := emulator.NewMonitor(emulator.Options{}, phone)
	h := newHarness(t, manager.Config{Dir: cfgDir, Monitors: []device.Monitor{mon}, Service: true, DebounceDelay: 200 * time.Millisecond}, emulator.Key(phone))
	w := h.w
	s := h.m.Settings()
	s.SyncOnConnect = false
	if err := h.m.SetSettings(s); err != nil {
		t.Fatal(err)
	}
	p, err := h.m.AddPartnership(testCtx(t), manager.Partnership{Name: "Notes", Provider: "notes", Device: emulator.Serial(phone),
		Options: map[string]string{"desktop": notes, "device-path": "Notes"}})
	if err != nil {
		t.Fatalf("AddPartnership: %v", err)
	}
	start := time.Now()
	h.pump("the notes partnership's row", func() bool { return w.rows[p.ID] != nil })
	r := w.rows[p.ID]
	test.Tap(r.syncButton)
	h.pump("the first sync", func() bool { return h.syncedAfter(start, p.ID) })
	if got := readFile(t, filepath.Join(phone, "Notes", "todo.md")); got != "- buy milk\n" {
		t.Fatalf("phone's note = %q", got)
	}
	// Every process of the plugin: a session's may still be closing beside the watcher's.
	killed := map[int]bool{}
	for _, pid := range processesOf(t, bin) {
		killed[pid] = true
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("kill the plugin (pid %d): %v", pid, err)
		}
	}
	// The watch that sees the plugin stop says so; a watch being set up again at that moment
	// starts the plugin again at once instead (then there is nothing to tell the user).
	restarted := func() bool {
		for _, pid := range childrenRunning(bin) {
			if !killed[pid] {
				return true
			}
		}
		return false
	}
	h.pump("the row to say the provider stopped, or the plugin started again", func() bool {
		return w.statuses[p.ID].State == manager.StateStopped || restarted()
	})
	if w.statuses[p.ID].State == manager.StateStopped {
		if !strings.Contains(r.status.Text, "stopped") || !strings.Contains(r.status.Text, "next sync") {
			t.Errorf("row status = %q, want it to say the provider stopped and the next sync restarts it", r.status.Text)
		}
		h.pump("the notification", func() bool { return h.hasSent("Provider stopped: Notes") })
	}
	restart := time.Now()
	writeFile(t, filepath.Join(notes, "more.md"), "- and bread\n", time.Time{})
	test.Tap(r.syncButton)
	h.pump("the sync after the restart", func() bool {
		return h.syncedAfter(restart, p.ID) && w.statuses[p.ID].State == manager.StateIdle
	})
	if got := readFile(t, filepath.Join(phone, "Notes", "more.md")); got != "- and bread\n" {
		t.Errorf("after the restart the phone's new note = %q", got)
	}
}

// processesOf returns the PIDs of this test's child processes running the executable bin,
// waiting for one.
func processesOf(t *testing.T, bin string) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pids := childrenRunning(bin); len(pids) > 0 {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no process of this test runs %s", bin)
	return nil
}

// childrenRunning returns the PIDs of this test's child processes running the executable bin.
func childrenRunning(bin string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != bin {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The parent PID is the 4th field, after the command in parentheses.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) && f[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}
