package ui

import (
	"context"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/manager"
)

// previewDialog shows what a sync of one partnership would do, grouped by action, and syncs
// from there; when the mass-delete guard would stop the sync, it says so and offers to allow it.
type previewDialog struct {
	w    *Window
	dlg  *dialog.CustomDialog
	part manager.Partnership
	plan *manager.Plan
	seq  int

	status  *widget.Label
	warning *widget.Label
	box     *fyne.Container
	syncNow *widget.Button
	allow   *widget.Button
}

// previewGroups are the actions in the order the preview lists them.
var previewGroups = []string{"create", "update", "rename", "delete", "conflict"}

// showPreview opens the preview of partnership id.
func (w *Window) showPreview(id string) {
	p, ok := w.partnership(id)
	if !ok {
		return
	}
	if w.previewDlg != nil {
		w.previewDlg.dlg.Hide()
	}
	d := &previewDialog{w: w, part: p}
	d.status = widget.NewLabel(tr("Looking at both sides…"))
	d.status.Wrapping = fyne.TextWrapWord
	d.warning = widget.NewLabel("")
	d.warning.Wrapping = fyne.TextWrapWord
	d.warning.Importance = widget.DangerImportance
	d.warning.Hide()
	d.box = container.NewVBox()
	d.syncNow = widget.NewButtonWithIcon(tr("Sync now"), theme.ViewRefreshIcon(), func() { d.sync(false) })
	d.syncNow.Importance = widget.HighImportance
	d.syncNow.Disable()
	d.allow = widget.NewButtonWithIcon(tr("Allow the deletions and sync"), theme.DeleteIcon(), func() { d.sync(true) })
	d.allow.Importance = widget.DangerImportance
	d.allow.Hide()
	body := container.NewBorder(container.NewVBox(d.status, d.warning), nil, nil, nil, container.NewVScroll(d.box))
	d.dlg = dialog.NewCustomWithoutButtons(tr("What a sync of {{.Name}} would do", map[string]any{"Name": p.Name}), body, w.win)
	d.dlg.SetButtons([]fyne.CanvasObject{widget.NewButton(tr("Close"), func() { d.dlg.Hide() }), d.allow, d.syncNow})
	d.dlg.SetOnClosed(func() {
		if w.previewDlg == d {
			w.previewDlg = nil
		}
	})
	w.previewDlg = d
	d.dlg.Resize(fyne.NewSize(min(w.win.Canvas().Size().Width-20, 760), min(w.win.Canvas().Size().Height-20, 560)))
	d.dlg.Show()
	d.load()
}

// load asks the manager for the plan (in the background).
func (d *previewDialog) load() {
	d.seq++
	seq := d.seq
	w := d.w
	id := d.part.ID
	w.background(func(ctx context.Context) func() {
		plans, err := w.m.DryRun(ctx, manager.SyncOptions{}, id)
		return func() {
			if seq != d.seq {
				return
			}
			if err == nil && len(plans) == 1 && plans[0].Error != "" {
				err = errorText(plans[0].Error)
			}
			if err != nil {
				d.status.SetText(sentence(err.Error()))
				d.status.Importance = widget.DangerImportance
				d.status.Refresh()
				return
			}
			d.show(plans[0])
		}
	})
}

type errorText string

func (e errorText) Error() string { return string(e) }

// show lists the plan.
func (d *previewDialog) show(pl manager.Plan) {
	d.plan = &pl
	if len(pl.Changes) == 0 {
		d.status.SetText(tr("Nothing to do: both sides are in step."))
	} else {
		d.status.SetText(trN("A sync would make {{.Count}} changes. Nothing has changed yet.", len(pl.Changes)))
	}
	d.status.Importance = widget.MediumImportance
	d.status.Refresh()
	if md := pl.MassDelete; md != nil {
		d.warning.SetText(massDeleteText(*md) + "\n" + tr("Allow it only if you meant to delete them; what it deletes is kept in Versions."))
		d.warning.Show()
		d.allow.Show()
		d.syncNow.Disable()
	} else {
		d.warning.Hide()
		d.allow.Hide()
		d.syncNow.Enable()
	}
	groups := map[string][]manager.Change{}
	for _, c := range pl.Changes {
		groups[c.Action] = append(groups[c.Action], c)
	}
	var objs []fyne.CanvasObject
	for _, g := range previewGroups {
		cs := groups[g]
		if len(cs) == 0 {
			continue
		}
		head := widget.NewLabelWithStyle(groupTitle(g, len(cs)), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		rows := container.New(layout.NewCustomPaddedVBoxLayout(0))
		for _, c := range cs {
			l := widget.NewLabel(changeLine(c))
			l.Wrapping = fyne.TextWrapWord
			rows.Add(l)
		}
		objs = append(objs, head, rows)
	}
	if n := d.w.statuses[d.part.ID].Conflicts; n > 0 && len(groups["conflict"]) == 0 {
		objs = append(objs, mutedLabel(trN("{{.Count}} conflicts already wait for you; the sync leaves them as they are.", n)))
	}
	for _, s := range pl.Skipped {
		l := widget.NewLabel(sentence(s))
		l.Importance = widget.WarningImportance
		l.Wrapping = fyne.TextWrapWord
		objs = append(objs, l)
	}
	d.box.Objects = objs
	d.box.Refresh()
}

// sync starts the sync the preview showed (allowed past the mass-delete guard when allow).
func (d *previewDialog) sync(allow bool) {
	w := d.w
	d.dlg.Hide()
	if !allow {
		if err := w.m.SyncNow(d.part.ID); err != nil {
			w.showError(tr("Cannot sync"), err)
		}
		w.requestRefresh(false)
		return
	}
	id := d.part.ID
	w.background(func(ctx context.Context) func() {
		_, err := w.m.Sync(ctx, manager.SyncOptions{AllowMassDelete: true}, id)
		return func() {
			if err != nil {
				w.showError(tr("Cannot sync"), err)
			}
			w.requestRefresh(false)
		}
	})
	w.requestRefresh(false)
}

// groupTitle heads one action's changes.
func groupTitle(action string, n int) string {
	switch action {
	case "create":
		return trN("New ({{.Count}})", n)
	case "update":
		return trN("Updated ({{.Count}})", n)
	case "rename":
		return trN("Renamed ({{.Count}})", n)
	case "delete":
		return trN("Deleted ({{.Count}})", n)
	}
	return trN("Conflicts that wait for you ({{.Count}})", n)
}

// changeLine is one change: its path, the side it goes to, its size, why.
func changeLine(c manager.Change) string {
	to := tr("to the device")
	if c.Direction == "to-desktop" {
		to = tr("to this computer")
	}
	line := c.Path + " — " + to
	if c.Kind == "file" && (c.Action == "create" || c.Action == "update") {
		line += ", " + humanBytes(c.Size)
	}
	return line + ": " + changeWhy(c)
}

// changeWhy says why a sync makes a change.
func changeWhy(c manager.Change) string {
	fromDevice := c.Direction == "to-desktop"
	switch c.Action {
	case "create":
		switch {
		case c.Copy:
			return tr("changed on both sides: this version is kept beside the other")
		case fromDevice:
			return tr("new on the device")
		}
		return tr("new on this computer")
	case "update":
		switch {
		case c.Cause == "conflict":
			return tr("you resolved the conflict for this version")
		case c.Cause == "policy":
			return tr("changed on both sides: the partnership's conflict rule keeps this version")
		case fromDevice:
			return tr("changed on the device")
		}
		return tr("changed on this computer")
	case "rename":
		if fromDevice {
			return tr("renamed on the device (was {{.Old}})", map[string]any{"Old": c.OldPath})
		}
		return tr("renamed on this computer (was {{.Old}})", map[string]any{"Old": c.OldPath})
	case "delete":
		switch {
		case c.Cause == "":
			return tr("an unfinished copy is removed, to be copied again")
		case fromDevice:
			return tr("deleted on the device")
		}
		return tr("deleted on this computer")
	}
	return tr("changed on both sides")
}

// formatPercent writes a share as the settings show it: "25 %".
func formatPercent(f float64) string { return fmt.Sprintf("%.0f %%", f*100) }

// massDeleteText states the mass-delete guard's rule for a sync it stops.
func massDeleteText(md manager.MassDelete) string {
	where := tr("on the device")
	if md.Side == "desktop" {
		where = tr("on this computer")
	}
	share := tr("half")
	if md.Threshold != 0.5 {
		share = formatPercent(md.Threshold)
	}
	return tr("This sync would delete {{.Deletes}} of the {{.Items}} items {{.Where}}: more than {{.Share}} of them, so it stops before changing anything.",
		map[string]any{"Deletes": md.Deletes, "Items": md.Items, "Where": where, "Share": share})
}
