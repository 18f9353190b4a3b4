package ui

import (
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/cradle-sync/cradle/manager"
)

// partnershipRow is one partnership in the list.
type partnershipRow struct {
	w          *Window
	id         string
	box        *fyne.Container
	icon       *widget.Icon
	name       *widget.Label
	direction  *widget.Label
	where      *widget.Label
	statusIcon *widget.Icon
	status     *widget.Label
	progress   *widget.ProgressBar
	syncButton *widget.Button
	stopSince  time.Time // when syncButton turned into Stop (see Window.stopSince)
	moreButton *widget.Button
}

func newPartnershipRow(w *Window, id string) *partnershipRow {
	r := &partnershipRow{w: w, id: id}
	r.icon = widget.NewIcon(theme.DocumentIcon())
	r.name = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	r.direction = widget.NewLabel("")
	r.where = widget.NewLabel("")
	r.where.SizeName = theme.SizeNameCaptionText
	r.where.Truncation = fyne.TextTruncateEllipsis
	r.statusIcon = widget.NewIcon(theme.ConfirmIcon())
	r.status = widget.NewLabel("")
	r.status.Wrapping = fyne.TextWrapWord
	r.progress = widget.NewProgressBar()
	r.progress.Hide()
	r.syncButton = widget.NewButtonWithIcon("", theme.ViewRefreshIcon(), func() { w.syncPartnership(id) })
	r.moreButton = widget.NewButtonWithIcon("", theme.MoreVerticalIcon(), nil)
	r.moreButton.Importance = widget.LowImportance
	r.moreButton.OnTapped = func() {
		menu := fyne.NewMenu("", r.menuItems()...)
		c := w.win.Canvas()
		pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(r.moreButton)
		widget.ShowPopUpMenuAtPosition(menu, c, pos.Add(fyne.NewPos(0, r.moreButton.Size().Height)))
	}
	top := container.NewHBox(r.name, r.direction)
	r.box = container.NewBorder(nil, nil,
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(36), r.icon)),
		container.NewCenter(container.NewHBox(r.syncButton, r.moreButton)),
		container.NewVBox(top, r.where,
			container.NewBorder(nil, nil, container.NewCenter(r.statusIcon), nil, r.status),
			r.progress),
	)
	return r
}

// menuItems are the partnership's menu: what a sync would do, what syncs replaced, the history,
// removing it.
func (r *partnershipRow) menuItems() []*fyne.MenuItem {
	w, id := r.w, r.id
	preview := fyne.NewMenuItem(tr("Preview…"), func() { w.showPreview(id) })
	preview.Disabled = !w.statuses[id].Connected
	return []*fyne.MenuItem{
		preview,
		fyne.NewMenuItem(tr("Versions…"), func() { w.showVersions(id) }),
		fyne.NewMenuItem(tr("History"), func() { w.showHistory(id) }),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem(tr("Remove…"), func() { w.removePartnership(id) }),
	}
}

// show fills the row.
func (r *partnershipRow) show(p manager.Partnership, st manager.Status, prov manager.Provider) {
	r.icon.SetResource(providerIcon(prov.Icon))
	r.name.SetText(p.Name)
	r.direction.SetText(directionText(p.Direction))
	r.where.SetText(joinNonEmpty([]string{r.w.desktopWhere(p), r.w.deviceWhere(p, r.w.deviceLabel(p.Device))}, "  ·  "))
	text, t := statusText(st, r.w.now())
	if r.status.Text != text || r.status.Importance != toneImportance(t) {
		r.status.Importance = toneImportance(t)
		r.status.Text = text
		r.status.Refresh()
	}
	r.statusIcon.SetResource(toneIcon(t))
	if f, ok := progressFraction(st.Progress); ok && st.State == manager.StateSyncing {
		r.progress.SetValue(f)
		r.progress.Show()
	} else {
		r.progress.Hide()
	}
	switch st.State {
	case manager.StateSyncing, manager.StateQueued:
		if r.stopSince.IsZero() {
			r.stopSince = time.Now()
		}
		r.syncButton.SetText(tr("Stop"))
		r.syncButton.SetIcon(theme.MediaStopIcon())
		r.syncButton.Enable()
	default:
		r.stopSince = time.Time{}
		r.syncButton.SetText(tr("Sync"))
		r.syncButton.SetIcon(theme.ViewRefreshIcon())
		if st.Connected {
			r.syncButton.Enable()
		} else {
			r.syncButton.Disable()
		}
	}
}
