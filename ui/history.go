package ui

import (
	"context"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/manager"
)

// historyLength is how many sessions the history dialog shows.
const historyLength = 100

// maxErrorsShown bounds the errors listed under one session.
const maxErrorsShown = 5

// historyDialog lists the last sessions: when, why, how they ended, what they did, what failed.
type historyDialog struct {
	w        *Window
	dlg      *dialog.CustomDialog
	ref      string // partnership ID, "" for all
	box      *fyne.Container
	status   *widget.Label
	sessions []manager.Session
	seq      int
}

// showHistory opens the history of partnership id ("" for all).
func (w *Window) showHistory(id string) {
	if w.historyDlg != nil {
		w.historyDlg.dlg.Hide()
	}
	d := &historyDialog{w: w, ref: id}
	d.box = container.NewVBox()
	d.status = widget.NewLabel(tr("Reading the history…"))
	title := tr("History")
	if p, ok := w.partnership(id); ok {
		title = tr("History of {{.Name}}", map[string]any{"Name": p.Name})
	}
	d.dlg = dialog.NewCustom(title, tr("Close"), container.NewBorder(d.status, nil, nil, nil, container.NewVScroll(d.box)), w.win)
	d.dlg.SetOnClosed(func() {
		if w.historyDlg == d {
			w.historyDlg = nil
		}
	})
	w.historyDlg = d
	d.dlg.Resize(fyne.NewSize(min(w.win.Canvas().Size().Width-20, 760), min(w.win.Canvas().Size().Height-20, 560)))
	d.dlg.Show()
	d.load()
}

// load reads the history again (in the background).
func (d *historyDialog) load() {
	d.seq++
	seq := d.seq
	w := d.w
	ref := d.ref
	w.background(func(context.Context) func() {
		ss, err := w.m.History(ref, historyLength)
		return func() {
			if seq != d.seq {
				return
			}
			if err != nil {
				d.status.SetText(sentence(err.Error()))
				d.status.Importance = widget.DangerImportance
				d.status.Show()
				return
			}
			d.show(ss)
		}
	})
}

// show lists sessions, newest first.
func (d *historyDialog) show(ss []manager.Session) {
	d.sessions = ss
	if len(ss) == 0 {
		d.status.SetText(tr("No sync has run yet."))
		d.status.Show()
	} else {
		d.status.Hide()
	}
	now := d.w.now()
	objs := make([]fyne.CanvasObject, 0, 2*len(ss))
	for i, s := range ss {
		if i > 0 {
			objs = append(objs, widget.NewSeparator())
		}
		v := sessionView(s, now)
		if replaced(s) {
			// What this session replaced or deleted is kept: one click to it.
			id := s.Partnership
			b := widget.NewButtonWithIcon(tr("Versions…"), theme.HistoryIcon(), func() { d.w.showVersions(id) })
			b.Importance = widget.LowImportance
			v = container.NewBorder(nil, nil, nil, container.NewVBox(b), v)
		}
		objs = append(objs, v)
	}
	d.box.Objects = objs
	d.box.Refresh()
}

// replaced tells whether a session replaced or deleted something (and so kept versions), in a
// partnership that still exists.
func replaced(s manager.Session) bool {
	return s.ToDesktop.Updated+s.ToDesktop.Deleted+s.ToDevice.Updated+s.ToDevice.Deleted+s.Decided > 0
}

// tookText says how long a session took: "less than a second", "4s", "2m10s".
func tookText(d time.Duration) string {
	if d < time.Second {
		return tr("less than a second")
	}
	return d.Round(time.Second).String()
}

// sessionView is one session of the history.
func sessionView(s manager.Session, now time.Time) fyne.CanvasObject {
	outcome, t := outcomeText(s.Outcome)
	title := widget.NewLabelWithStyle(s.Name+" · "+outcome, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.Importance = toneImportance(t)
	if t == toneOK {
		title.Importance = widget.MediumImportance
	}
	when := tr("{{.Time}} ({{.Ago}}), {{.Trigger}}, took {{.Duration}}", map[string]any{
		"Time": formatTime(s.Start), "Ago": ago(s.End, now), "Trigger": triggerText(s.Trigger),
		"Duration": tookText(s.End.Sub(s.Start)),
	})
	whenLabel := widget.NewLabel(when)
	whenLabel.SizeName = theme.SizeNameCaptionText
	what := countsText(s)
	if what == "" {
		what = tr("Nothing needed to change.")
	} else {
		what = capitalize(what)
	}
	var extra []string
	if s.Bytes > 0 {
		extra = append(extra, tr("{{.Bytes}} copied", map[string]any{"Bytes": humanBytes(s.Bytes)}))
	}
	if s.Decided > 0 {
		extra = append(extra, trN("{{.Count}} conflicts settled by the partnership's rule", s.Decided))
	}
	if s.Conflicts > 0 {
		extra = append(extra, trN("{{.Count}} conflicts need you", s.Conflicts))
	}
	if s.Skipped > 0 {
		extra = append(extra, trN("{{.Count}} items skipped", s.Skipped))
	}
	if len(extra) > 0 {
		what += " · " + strings.Join(extra, " · ")
	}
	whatLabel := widget.NewLabel(what)
	whatLabel.Wrapping = fyne.TextWrapWord
	box := container.New(layout.NewCustomPaddedVBoxLayout(0),
		container.NewBorder(nil, nil, widget.NewIcon(toneIcon(t)), nil, title),
		whenLabel, whatLabel,
	)
	for i, e := range s.Errors {
		if i == maxErrorsShown {
			more := widget.NewLabel(trN("and {{.Count}} more", len(s.Errors)-maxErrorsShown))
			more.Importance = widget.DangerImportance
			box.Add(more)
			break
		}
		l := widget.NewLabel(sentence(e))
		l.Importance = widget.DangerImportance
		l.Wrapping = fyne.TextWrapWord
		box.Add(l)
	}
	return box
}
