package ui

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/manager"
)

// Intervals the settings offer; a value set by other means (the settings file) is offered too.
var (
	syncIntervals  = []time.Duration{0, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}
	retryIntervals = []time.Duration{0, time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}
	// How long a change waits for quiet before its sync, and how long a stream of changes may
	// postpone it (manager.DefaultDebounce and DefaultDebounceMax are among them).
	changeDelays    = []time.Duration{300 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}
	changeDelayMaxs = []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, time.Minute, 5 * time.Minute}
)

// settingsDialog edits the global settings.
type settingsDialog struct {
	w   *Window
	dlg *dialog.CustomDialog

	syncOnConnect *widget.Check
	interval      *widget.Select
	intervals     map[string]time.Duration
	retry         *widget.Select
	retries       map[string]time.Duration
	changeDelay   *widget.Select
	changeDelays  map[string]time.Duration
	changeMax     *widget.Select
	changeMaxs    map[string]time.Duration
	threshold     *widget.Slider
	thresholdText *widget.Label
	keepInTray    *widget.Check
	versionsDays  *widget.Select
	days          map[string]int
	versionsCap   *widget.Select
	caps          map[string]int64
	autostart     *widget.Check
	language      *widget.Select
	languages     map[string]string
	errText       *widget.Label
	content       *fyne.Container
	save          *widget.Button
	busy          bool
}

// showSettings opens the settings.
func (w *Window) showSettings() {
	if w.settingsDlg != nil {
		w.settingsDlg.dlg.Show()
		return
	}
	s := w.m.Settings()
	d := &settingsDialog{w: w}
	d.syncOnConnect = widget.NewCheck(tr("Sync a device's partnerships when it is plugged in"), nil)
	d.syncOnConnect.SetChecked(s.SyncOnConnect)
	d.interval, d.intervals = durationSelect(syncIntervals, s.Interval, func(d time.Duration) string {
		if d == 0 {
			return tr("Only when plugged in or asked")
		}
		return intervalText(d)
	})
	d.retry, d.retries = durationSelect(retryIntervals, s.RetryInterval, func(d time.Duration) string {
		if d == 0 {
			return tr("Do not retry")
		}
		return trN("After {{.Count}} minutes", int(d/time.Minute))
	})
	d.changeDelay, d.changeDelays = durationSelect(changeDelays, cmp.Or(s.ChangeDelay, manager.DefaultDebounce), func(d time.Duration) string {
		return tr("Sync {{.Delay}} after the last change", map[string]any{"Delay": delayText(d)})
	})
	d.changeMax, d.changeMaxs = durationSelect(changeDelayMaxs, cmp.Or(s.ChangeDelayMax, manager.DefaultDebounceMax), func(d time.Duration) string {
		return tr("While changes keep coming, wait at most {{.Delay}}", map[string]any{"Delay": delayText(d)})
	})
	d.thresholdText = widget.NewLabel("")
	d.thresholdText.Wrapping = fyne.TextWrapWord
	d.threshold = widget.NewSlider(5, 100)
	d.threshold.Step = 5
	d.threshold.OnChanged = func(v float64) { d.thresholdText.SetText(thresholdText(v)) }
	d.threshold.SetValue(math.Round(s.MassDeleteThreshold*100/5) * 5)
	d.thresholdText.SetText(thresholdText(d.threshold.Value))
	d.versionsDays, d.days = daysSelect(s.VersionsDays)
	d.versionsCap, d.caps = capSelect(s.VersionsMaxSize)
	d.keepInTray = widget.NewCheck(tr("Keep Cradle running in the tray when the window is closed"), nil)
	d.keepInTray.SetChecked(s.KeepInTray)
	trayHint := hintLabel(tr("It keeps syncing devices as they are plugged in."))
	if !w.opts.Tray {
		d.keepInTray.Disable()
		trayHint.SetText(tr("This desktop session has no tray: closing the window quits Cradle."))
	}
	var loginField *fyne.Container
	if w.opts.Autostart != nil {
		d.autostart = widget.NewCheck(tr("Start Cradle in the background when I log in"), nil)
		d.autostart.SetChecked(w.opts.Autostart.Enabled())
		loginField = container.NewVBox(d.autostart, hintLabel(tr("Devices then sync as they are plugged in, with no window open.")))
	}
	d.languages = map[string]string{}
	var langOpts []string
	sel := ""
	for _, l := range Languages {
		name := l.Name
		if l.Code == "" {
			name = tr("Same as the system")
		}
		d.languages[name] = l.Code
		langOpts = append(langOpts, name)
		if l.Code == s.Language {
			sel = name
		}
	}
	d.language = widget.NewSelect(langOpts, nil)
	if sel == "" {
		sel = langOpts[0]
	}
	d.language.SetSelected(sel)
	d.errText = errLabel()
	d.save = widget.NewButtonWithIcon(tr("Save"), theme.DocumentSaveIcon(), d.submit)
	d.save.Importance = widget.HighImportance
	form := container.New(layout.NewFormLayout(),
		fieldLabel(tr("Plug-in")), d.syncOnConnect,
		fieldLabel(tr("Sync while connected")), d.interval,
		fieldLabel(tr("After a failed sync")), d.retry,
		fieldLabel(tr("Changes")), container.NewVBox(d.changeDelay, d.changeMax,
			hintLabel(tr("While a device is connected, what changes on either side is synced once the changes pause; a copy of many files syncs as one session."))),
		fieldLabel(tr("Mass deletes")), container.NewVBox(d.threshold, d.thresholdText),
		fieldLabel(tr("Versions")), container.NewVBox(d.versionsDays, d.versionsCap,
			hintLabel(tr("What a sync replaces or deletes is kept this long, oldest first beyond the size limit."))),
		fieldLabel(tr("Tray")), container.NewVBox(d.keepInTray, trayHint),
	)
	if loginField != nil {
		form.Add(fieldLabel(tr("Start at login")))
		form.Add(loginField)
	}
	form.Add(fieldLabel(tr("Language")))
	form.Add(d.language)
	content := container.NewVBox(form, d.errText)
	d.content = content
	d.dlg = dialog.NewCustomWithoutButtons(tr("Settings"), container.NewVScroll(content), w.win)
	d.dlg.SetButtons([]fyne.CanvasObject{widget.NewButton(tr("Cancel"), func() { d.dlg.Hide() }), d.save})
	d.dlg.SetOnClosed(func() {
		if w.settingsDlg == d {
			w.settingsDlg = nil
		}
	})
	w.settingsDlg = d
	d.dlg.Resize(fyne.NewSize(min(w.win.Canvas().Size().Width-20, 640), min(w.win.Canvas().Size().Height-20, 520)))
	d.dlg.Show()
}

// durationSelect is a choice among presets (and cur, when it is not one), labelled by label.
func durationSelect(presets []time.Duration, cur time.Duration, label func(time.Duration) string) (*widget.Select, map[string]time.Duration) {
	vals := map[string]time.Duration{}
	var opts []string
	found := false
	for _, p := range presets {
		if !found && cur < p && cur > 0 {
			opts = append(opts, label(cur))
			vals[label(cur)] = cur
			found = true
		}
		opts = append(opts, label(p))
		vals[label(p)] = p
		found = found || p == cur
	}
	if !found {
		opts = append(opts, label(cur))
		vals[label(cur)] = cur
	}
	s := widget.NewSelect(opts, nil)
	s.SetSelected(label(cur))
	return s, vals
}

// thresholdText explains the mass-delete threshold at v percent.
func thresholdText(v float64) string {
	if v >= 100 {
		return tr("Never ask before deleting, however many items a sync deletes.")
	}
	return tr("Ask before a sync deletes more than {{.Percent}} of the items on one side, however few they are.", map[string]any{"Percent": fmt.Sprintf("%.0f %%", v)})
}

// settings is what the dialog says.
func (d *settingsDialog) settings() manager.Settings {
	s := d.w.m.Settings()
	s.SyncOnConnect = d.syncOnConnect.Checked
	s.Interval = d.intervals[d.interval.Selected]
	s.RetryInterval = d.retries[d.retry.Selected]
	s.ChangeDelay = d.changeDelays[d.changeDelay.Selected]
	s.ChangeDelayMax = d.changeMaxs[d.changeMax.Selected]
	s.MassDeleteThreshold = d.threshold.Value / 100
	s.KeepInTray = d.keepInTray.Checked
	s.Language = d.languages[d.language.Selected]
	s.VersionsDays = d.days[d.versionsDays.Selected]
	s.VersionsMaxSize = d.caps[d.versionsCap.Selected]
	return s
}

// Versions: how long, and how much per partnership, the settings offer.
var (
	versionDays = []int{0, 7, 14, 30, 60, 90, 365}
	versionCaps = []int64{0, 1e9, 5e9, 10e9, 50e9, 100e9}
)

// daysSelect is the choice of how long versions are kept (cur offered too when it is no preset).
func daysSelect(cur int) (*widget.Select, map[string]int) {
	label := func(n int) string {
		if n == 0 {
			return tr("Only until the sync ends")
		}
		return trN("For {{.Count}} days", n)
	}
	vals := map[string]int{}
	var opts []string
	days := versionDays
	if !slices.Contains(days, cur) {
		days = append(slices.Clone(days), cur)
		slices.Sort(days)
	}
	for _, n := range days {
		opts = append(opts, label(n))
		vals[label(n)] = n
	}
	s := widget.NewSelect(opts, nil)
	s.SetSelected(label(cur))
	return s, vals
}

// capSelect is the choice of the versions' size limit per partnership.
func capSelect(cur int64) (*widget.Select, map[string]int64) {
	label := func(n int64) string {
		if n == 0 {
			return tr("No size limit")
		}
		return tr("At most {{.Size}} per partnership", map[string]any{"Size": humanBytes(n)})
	}
	vals := map[string]int64{}
	var opts []string
	caps := versionCaps
	if !slices.Contains(caps, cur) {
		caps = append(slices.Clone(caps), cur)
		slices.Sort(caps)
	}
	for _, n := range caps {
		opts = append(opts, label(n))
		vals[label(n)] = n
	}
	s := widget.NewSelect(opts, nil)
	s.SetSelected(label(cur))
	return s, vals
}

// submit saves the settings; a new language applies to the whole window at once.
func (d *settingsDialog) submit() {
	if d.busy {
		return
	}
	s := d.settings()
	d.busy = true
	d.save.Disable()
	d.errText.Hide()
	w := d.w
	login, setLogin := false, false
	if d.autostart != nil && d.autostart.Checked != w.opts.Autostart.Enabled() {
		login, setLogin = d.autostart.Checked, true
	}
	w.background(func(context.Context) func() {
		err := w.m.SetSettings(s)
		if err == nil && setLogin {
			err = w.opts.Autostart.SetEnabled(login)
		}
		return func() {
			d.busy = false
			d.save.Enable()
			if err != nil {
				d.errText.SetText(sentence(err.Error()))
				d.errText.Show()
				d.content.Refresh()
				return
			}
			d.dlg.Hide()
			w.settings = s
			if err := SetLanguage(s.Language); err != nil {
				w.showError(tr("Language"), err)
			}
			w.relabel()
			w.requestRefresh(false)
		}
	})
}

// relabel sets every text again (after a language change).
func (w *Window) relabel() {
	w.setTexts()
	clear(w.rows) // rows are rebuilt with the new texts
	w.rowBox.Objects = nil
	w.render()
	if w.tray != nil {
		w.tray.relabel()
	}
}
