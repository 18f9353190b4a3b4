package ui

import (
	"context"
	"slices"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"
	"github.com/cradle-sync/cradle/manager"
)

// stopGrace is how long the Sync Now button must have shown Stop for a tap to mean Stop.
const stopGrace = 700 * time.Millisecond

// syncTapped runs Sync Now, or Stop while the device's partnerships sync.
func (w *Window) syncTapped() {
	d, ok := w.device()
	if !ok {
		return
	}
	// A tap on a button that showed Sync Now, or turned into Stop a moment before (an automatic
	// sync began as the user pressed it), asks for a sync: it runs after the one under way.
	if !w.stopSince.IsZero() && time.Since(w.stopSince) >= stopGrace {
		ids := make([]string, 0)
		for _, p := range w.deviceParts() {
			ids = append(ids, p.ID)
		}
		w.m.Stop(ids...)
		w.requestRefresh(false)
		return
	}
	if err := w.m.SyncDevice(d.Serial); err != nil {
		w.showError(tr("Cannot sync"), err)
		return
	}
	w.requestRefresh(false)
}

// syncPartnership syncs one partnership, or stops it while it syncs.
func (w *Window) syncPartnership(id string) {
	r := w.rows[id]
	switch {
	case r != nil && !r.stopSince.IsZero() && time.Since(r.stopSince) >= stopGrace:
		w.m.Stop(id) // what the button showed long enough to be what the user tapped
	default:
		if err := w.m.SyncNow(id); err != nil {
			w.showError(tr("Cannot sync"), err)
			return
		}
	}
	w.requestRefresh(false)
}

// removePartnership asks, then removes a partnership (its files stay on both sides).
func (w *Window) removePartnership(id string) {
	var name string
	for _, p := range w.parts {
		if p.ID == id {
			name = p.Name
		}
	}
	msg := tr("Cradle stops syncing \"{{.Name}}\" and forgets what it knew about it. The files stay as they are, on this computer and on the device.", map[string]any{"Name": name})
	d := dialog.NewConfirm(tr("Remove partnership?"), msg, func(ok bool) {
		if !ok {
			return
		}
		w.background(func(ctx context.Context) func() {
			err := w.m.RemovePartnership(ctx, id)
			return func() {
				if err != nil {
					w.showError(tr("The partnership could not be removed"), err)
				}
				w.requestRefresh(true)
			}
		})
	}, w.win)
	d.SetConfirmText(tr("Remove"))
	d.SetDismissText(tr("Cancel"))
	d.SetConfirmImportance(widget.DangerImportance)
	d.Show()
}

// background runs fn on its own goroutine with the window's context, and the function it
// returns (if any) on the UI goroutine.
func (w *Window) background(fn func(ctx context.Context) func()) {
	go func() {
		after := fn(w.ctx)
		if after == nil || w.ctx.Err() != nil {
			return
		}
		w.do(after)
	}()
}

// showError shows an error dialog with a message a person can act on.
func (w *Window) showError(title string, err error) {
	d := dialog.NewInformation(title, sentence(err.Error()), w.win)
	d.SetDismissText(tr("Close"))
	d.Show()
}

// offerSetup offers to set up a device seen for the first time without partnerships.
func (w *Window) offerSetup(devs []manager.DeviceInfo) {
	for _, d := range devs {
		if w.offered[d.Serial] || d.Serial == "" || w.offerDlg != nil || w.addDlg != nil {
			continue
		}
		if slices.ContainsFunc(w.parts, func(p manager.Partnership) bool { return p.Device == d.Serial }) {
			continue
		}
		w.offered[d.Serial] = true
		serial := d.Serial
		msg := tr("{{.Device}} is connected for the first time. Choose what to keep in step with it: a folder, the camera roll, the contacts.", map[string]any{"Device": d.Label})
		dlg := dialog.NewConfirm(tr("New device"), msg, func(ok bool) {
			w.offerDlg = nil
			if ok {
				w.selected, w.userPicked = serial, true
				w.render()
				w.showAdd(serial)
			}
		}, w.win)
		dlg.SetConfirmText(tr("Set it up"))
		dlg.SetDismissText(tr("Not now"))
		w.offerDlg = dlg
		dlg.Show()
		if w.hidden {
			w.send(fyne.NewNotification(tr("New device"), tr("{{.Device}} is connected for the first time: open Cradle to choose what to sync.", map[string]any{"Device": d.Label})))
		}
		return
	}
}
