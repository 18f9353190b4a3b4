package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/cradle-sync/cradle/manager"
)

// tray is Cradle's icon in the system tray: its menu shows the status and offers Sync Now (or
// Stop), Open and Quit.
type tray struct {
	w      *Window
	desk   desktop.App
	menu   *fyne.Menu
	status *fyne.MenuItem
	sync   *fyne.MenuItem
	open   *fyne.MenuItem
	quit   *fyne.MenuItem
	last   string // the labels last set, to refresh the menu only when they change
}

// newTray puts the icon in the tray; nil when the application has no tray.
func newTray(w *Window) *tray {
	desk, ok := w.app.(desktop.App)
	if !ok {
		return nil
	}
	t := &tray{w: w, desk: desk}
	t.status = fyne.NewMenuItem("", nil)
	t.status.Disabled = true
	t.sync = fyne.NewMenuItem("", t.syncTapped)
	t.open = fyne.NewMenuItem("", w.showWindow)
	t.quit = fyne.NewMenuItem("", w.app.Quit)
	t.quit.IsQuit = true
	t.menu = fyne.NewMenu("Cradle", t.status, fyne.NewMenuItemSeparator(), t.sync, t.open, t.quit)
	t.relabel()
	desk.SetSystemTrayMenu(t.menu)
	desk.SetSystemTrayWindow(w.win)
	if icon := w.app.Icon(); icon != nil {
		desk.SetSystemTrayIcon(icon)
	}
	return t
}

// relabel sets the texts (after a language change too).
func (t *tray) relabel() {
	t.open.Label = tr("Open Cradle")
	t.quit.Label = tr("Quit")
	t.last = ""
	t.update()
}

// update brings the status and Sync Now in line with the window.
func (t *tray) update() {
	t.status.Label = trayStatus(t.w)
	busy := false
	for _, st := range t.w.statuses {
		if st.State == manager.StateSyncing || st.State == manager.StateQueued {
			busy = true
		}
	}
	if busy {
		t.sync.Label = tr("Stop")
	} else {
		t.sync.Label = tr("Sync Now")
	}
	t.sync.Disabled = !busy && !t.w.anyConnected()
	key := t.status.Label + "\x00" + t.sync.Label + "\x00" + t.open.Label
	if t.sync.Disabled {
		key += "\x00off"
	}
	if key != t.last {
		t.last = key
		t.menu.Refresh()
	}
}

// syncTapped syncs every connected device, or stops every sync.
func (t *tray) syncTapped() {
	for _, st := range t.w.statuses {
		if st.State == manager.StateSyncing || st.State == manager.StateQueued {
			t.w.m.Stop()
			t.w.requestRefresh(false)
			return
		}
	}
	if err := t.w.m.SyncNow(); err != nil {
		t.w.send(fyne.NewNotification(tr("Cannot sync"), sentence(err.Error())))
		return
	}
	t.w.requestRefresh(false)
}

// anyConnected tells whether a device with partnerships is connected.
func (w *Window) anyConnected() bool {
	for _, st := range w.statuses {
		if st.Connected {
			return true
		}
	}
	return false
}

// trayStatus sums the window up in one line: what runs, what needs the user, or that all is
// well.
func trayStatus(w *Window) string {
	syncing, conflicts, errs := 0, len(w.pendingConflicts()), 0
	name := ""
	for _, p := range w.parts {
		st := w.statuses[p.ID]
		switch st.State {
		case manager.StateSyncing:
			syncing++
			name = p.Name
		case manager.StateError, manager.StateStopped:
			errs++
		}
	}
	for _, d := range w.devices {
		switch d.State {
		case manager.DeviceStateBusy, manager.DeviceStateNoPermission, manager.DeviceStateLocked, manager.DeviceStateError:
			errs++
		}
	}
	switch {
	case syncing == 1:
		return tr("Syncing {{.Name}}…", map[string]any{"Name": name})
	case syncing > 1:
		return trN("Syncing {{.Count}} partnerships…", syncing)
	case errs > 0:
		return trN("{{.Count}} problems need you", errs)
	case conflicts > 0:
		return trN("{{.Count}} conflicts need you", conflicts)
	case !w.anyConnected():
		return tr("No device connected")
	}
	return tr("Up to date")
}
