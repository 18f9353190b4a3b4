package ui

import (
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/cradle-sync/cradle/manager"
)

// pickDevice chooses the device shown: the one the user chose while it is listed, else the
// first (connected ones come first).
func (w *Window) pickDevice() {
	cur, ok := w.device()
	if ok && (w.userPicked || cur.Connected()) {
		return
	}
	if ok && !cur.Connected() {
		for _, d := range w.devices {
			if d.Connected() {
				w.selected = deviceID(d)
				return
			}
		}
		return
	}
	w.selected, w.userPicked = "", false
	if len(w.devices) > 0 {
		w.selected = deviceID(w.devices[0])
	}
}

// selectDevice shows another device (the header's device picker).
func (w *Window) selectDevice(id string) {
	if id == w.selected {
		return
	}
	w.selected, w.userPicked = id, true
	w.render()
}

// render brings every widget in line with the model.
func (w *Window) render() {
	d, ok := w.device()
	if !ok {
		w.body.Objects = []fyne.CanvasObject{w.emptyState}
		w.body.Refresh()
	} else {
		w.header.show(d, w.devices)
		w.renderParts(d)
		if len(w.body.Objects) != 1 || w.body.Objects[0] != w.mainView {
			w.body.Objects = []fyne.CanvasObject{w.mainView}
			w.body.Refresh()
		}
	}
	w.renderButtons(d, ok)
}

// renderParts shows the partnerships of device d, reusing the rows already there.
func (w *Window) renderParts(d manager.DeviceInfo) {
	parts := w.deviceParts()
	w.partsTitle.SetText(tr("Partnerships"))
	if len(parts) == 0 {
		w.partsTitle.Hide()
		if d.Connected() {
			w.rowBox.Objects = []fyne.CanvasObject{w.noParts}
		} else {
			w.rowBox.Objects = nil
		}
		w.rowBox.Refresh()
		clear(w.rows)
		return
	}
	w.partsTitle.Show()
	objs := make([]fyne.CanvasObject, 0, 2*len(parts))
	keep := map[string]bool{}
	changed := false
	for i, p := range parts {
		r := w.rows[p.ID]
		if r == nil {
			r = newPartnershipRow(w, p.ID)
			w.rows[p.ID] = r
			changed = true
		}
		keep[p.ID] = true
		r.show(p, w.statuses[p.ID], w.providers[p.Provider])
		if i > 0 {
			objs = append(objs, widget.NewSeparator())
		}
		objs = append(objs, r.box)
	}
	for id := range w.rows {
		if !keep[id] {
			delete(w.rows, id)
			changed = true
		}
	}
	if changed || len(w.rowBox.Objects) != len(objs) {
		w.rowBox.Objects = objs
		w.rowBox.Refresh()
	}
}

// renderButtons updates the bottom bar.
func (w *Window) renderButtons(d manager.DeviceInfo, ok bool) {
	if w.busy() {
		if w.stopSince.IsZero() {
			w.stopSince = time.Now()
		}
		w.syncButton.SetText(tr("Stop"))
		w.syncButton.SetIcon(theme.MediaStopIcon())
		w.syncButton.Importance = widget.DangerImportance
		w.syncButton.Enable()
	} else {
		w.stopSince = time.Time{}
		w.syncButton.SetText(tr("Sync Now"))
		w.syncButton.SetIcon(theme.ViewRefreshIcon())
		w.syncButton.Importance = widget.HighImportance
		if ok && d.Connected() && len(w.deviceParts()) > 0 {
			w.syncButton.Enable()
		} else {
			w.syncButton.Disable()
		}
	}
	w.syncButton.Refresh()
	n := len(w.pendingConflicts())
	if n > 0 {
		w.conflictsButton.SetText(trN("{{.Count}} conflicts", n))
		w.conflictsButton.SetIcon(theme.WarningIcon())
		w.conflictsButton.Importance = widget.WarningImportance
		w.conflictsButton.Enable()
	} else {
		w.conflictsButton.SetText(tr("No conflicts"))
		w.conflictsButton.SetIcon(theme.ConfirmIcon())
		w.conflictsButton.Importance = widget.MediumImportance
		w.conflictsButton.Disable()
	}
	w.conflictsButton.Refresh()
	if ok && d.Connected() {
		w.addButton.Enable()
	} else {
		w.addButton.Disable()
	}
	// The labels' widths changed: lay the bar out again.
	w.buttonBar.Refresh()
}
