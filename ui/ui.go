// Package ui is Cradle's Fyne window: the device header, the partnerships list, the conflict
// dialog, the add-partnership form, settings, history, the tray icon and desktop notifications.
//
// It reads the manager's events and calls the manager's methods; it holds no sync logic. It never
// imports fyne.io/fyne/v2/app (only internal/cli does), so its tests run on fyne's test driver
// without GL.
//
// # Threading
//
// Every widget is touched on the UI goroutine only. A Window's event loop reads the manager's
// events on its own goroutine, coalesces them (at most one update every FlushInterval, however
// many progress events a sync of 100,000 items sends), reads the manager's state there, and hands
// the result to the UI goroutine through Options.Do (fyne.Do). Manager calls that may block
// (resolving a conflict, adding a partnership, reading the history) run on their own goroutines
// and come back the same way, so the window never waits on a device.
//
// # Memory
//
// A few seconds after a burst of work (opening, a finished sync) the event loop hands the memory
// that work freed back to the system (debug.FreeOSMemory), so the idle window stays close to
// what a bare Fyne window takes.
package ui

import (
	"context"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/cradle-sync/cradle/manager"
)

// FlushInterval is the shortest time between two updates of the window from manager events:
// progress and status changes that arrive faster are coalesced.
const FlushInterval = 250 * time.Millisecond

// clockInterval is how often "2 minutes ago" is brought up to date.
const clockInterval = 30 * time.Second

// trimAfter is how long the window waits after a burst of work (a finished sync) before it hands
// the memory that work freed back to the system: Go's runtime otherwise keeps up to the heap's
// size again, and a window that idles in the tray for days should be small. Opening is such a
// burst too (the demo's set-up, loading fonts, the first frames): trimStart lists when to trim
// after it.
const trimAfter = 5 * time.Second

var trimStart = []time.Duration{5 * time.Second, 15 * time.Second}

// Options tune a Window.
type Options struct {
	// Tray puts Cradle's icon with a menu (status, Sync Now, Open, Quit) in the system tray.
	// Set it only when a session bus is present (DBUS_SESSION_BUS_ADDRESS): without one,
	// quitting panics in fyne's systray (fyne-io/fyne#6403).
	Tray bool
	// Notifications sends desktop notifications (sync finished, conflicts, a device that needs
	// the user). On Linux they go over the session bus: set it only when one is present, or fyne
	// logs an error for each. The window keeps the last ones either way.
	Notifications bool
	// Do runs fn on the UI goroutine; nil means fyne.Do. Tests hand in one that queues fn for
	// the test's goroutine, as the real driver queues it for its event loop.
	Do func(fn func())
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Window is Cradle's main window over a Manager. Create it with New, show it with ShowAndRun
// (or Window().Show()), and Close it when the application has quit.
type Window struct {
	app  fyne.App
	win  fyne.Window
	m    *manager.Manager
	opts Options
	do   func(func())
	log  *slog.Logger
	now  func() time.Time

	// ctx is cancelled by Close: background manager calls stop with it.
	ctx    context.Context
	cancel context.CancelFunc

	// The model: what the manager said last. UI goroutine only.
	devices    []manager.DeviceInfo
	parts      []manager.Partnership
	statuses   map[string]manager.Status
	providers  map[string]manager.Provider
	conflicts  []manager.Conflict
	settings   manager.Settings
	selected   string // deviceID of the device shown
	userPicked bool   // the user chose the device shown
	offered    map[string]bool
	hidden     bool // the window is hidden in the tray
	toldTray   bool

	// Widgets, kept so tests can tap them and updates can change them in place.
	banner          *banner
	header          *header
	emptyState      *fyne.Container
	emptyTitle      *widget.Label
	emptySteps      *widget.Label
	partsTitle      *widget.Label
	noParts         *fyne.Container
	noPartsLabel    *widget.Label
	noPartsButton   *widget.Button
	rowBox          *fyne.Container
	rows            map[string]*partnershipRow
	mainView        *fyne.Container
	buttonBar       *fyne.Container
	body            *fyne.Container
	syncButton      *widget.Button
	conflictsButton *widget.Button
	addButton       *widget.Button
	settingsButton  *widget.Button
	historyButton   *widget.Button

	conflictDlg *conflictDialog
	addDlg      *addDialog
	settingsDlg *settingsDialog
	historyDlg  *historyDialog
	offerDlg    dialog.Dialog

	tray *tray
	// sent keeps the last notifications sent (newest last), for the tray's status and tests.
	sent []*fyne.Notification

	// The event loop.
	sub      *manager.Subscription
	refresh  chan refreshRequest
	quit     chan struct{}
	done     chan struct{}
	applying atomic.Bool
	once     sync.Once
}

// refreshRequest asks the event loop for an update now (after a user action), with the
// conflicts read again when conflicts is set.
type refreshRequest struct{ conflicts bool }

// New builds the main window of app a over manager m and starts following m's events. The
// window is not shown yet. Call it on the UI goroutine (before app.Run, or from a callback).
func New(a fyne.App, m *manager.Manager, opts Options) *Window {
	w := &Window{
		app: a, m: m, opts: opts, do: opts.Do, log: opts.Logger, now: time.Now,
		statuses: map[string]manager.Status{}, providers: map[string]manager.Provider{},
		rows: map[string]*partnershipRow{}, offered: map[string]bool{},
		refresh: make(chan refreshRequest, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	if w.do == nil {
		w.do = fyne.Do
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.settings = m.Settings()
	if err := SetLanguage(w.settings.Language); err != nil {
		w.log.Warn("ui: language", "err", err)
	}
	for _, p := range m.Providers() {
		w.providers[p.Name] = p
	}
	w.win = a.NewWindow("Cradle")
	w.win.SetMaster()
	w.build()
	w.win.Resize(fyne.NewSize(900, 600))
	w.win.SetCloseIntercept(w.closeRequested)

	// Subscribe before the first read so that nothing that happens in between is missed.
	w.sub = m.Subscribe(manager.EventAll)
	first := w.fetch(pending{conflicts: true})
	// A device first seen before the window opened was announced to nobody: offer it now.
	for _, d := range first.devices {
		if d.New && d.Connected() {
			first.events.newDevices = append(first.events.newDevices, d)
		}
	}
	w.apply(first)
	if opts.Tray {
		w.tray = newTray(w)
	}
	go w.loop()
	return w
}

// Window returns the fyne window.
func (w *Window) Window() fyne.Window { return w.win }

// ShowAndRun shows the window and runs the application until it quits.
func (w *Window) ShowAndRun() { w.win.ShowAndRun() }

// Close stops following the manager's events and cancels the manager calls the window started.
// Call it once the application has quit (or in tests, when done); it is safe to call more than
// once and from any goroutine.
func (w *Window) Close() {
	w.once.Do(func() {
		w.cancel()
		close(w.quit)
		<-w.done
		w.sub.Close()
	})
}

// build lays the window out.
func (w *Window) build() {
	w.banner = newBanner()
	w.header = newHeader(w)

	w.emptyTitle = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	w.emptyTitle.SizeName = theme.SizeNameSubHeadingText
	w.emptySteps = widget.NewLabel("")
	w.emptySteps.Alignment = fyne.TextAlignLeading
	w.emptySteps.Wrapping = fyne.TextWrapWord
	emptyIcon := widget.NewIcon(phoneIcon)
	w.emptyState = container.NewCenter(container.NewVBox(
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(96), emptyIcon)),
		w.emptyTitle,
		container.NewGridWrap(fyne.NewSize(460, 150), w.emptySteps),
	))

	w.partsTitle = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	w.rowBox = container.NewVBox()
	w.noPartsLabel = widget.NewLabel("")
	w.noPartsLabel.Wrapping = fyne.TextWrapWord
	w.noPartsButton = widget.NewButtonWithIcon("", theme.ContentAddIcon(), func() { w.showAdd("") })
	w.noPartsButton.Importance = widget.HighImportance
	w.noParts = container.NewVBox(w.noPartsLabel, container.NewHBox(w.noPartsButton))

	w.syncButton = widget.NewButtonWithIcon("", theme.ViewRefreshIcon(), w.syncTapped)
	w.syncButton.Importance = widget.HighImportance
	w.conflictsButton = widget.NewButtonWithIcon("", theme.WarningIcon(), func() { w.showConflicts() })
	w.addButton = widget.NewButtonWithIcon("", theme.ContentAddIcon(), func() { w.showAdd("") })
	w.historyButton = widget.NewButtonWithIcon("", theme.HistoryIcon(), func() { w.showHistory("") })
	w.settingsButton = widget.NewButtonWithIcon("", theme.SettingsIcon(), w.showSettings)

	w.mainView = container.NewBorder(
		container.NewVBox(w.header.box, widget.NewSeparator()), nil, nil, nil,
		container.NewVScroll(container.NewPadded(container.NewVBox(w.partsTitle, w.rowBox))),
	)
	w.body = container.NewStack()
	w.buttonBar = container.NewHBox(w.syncButton, w.conflictsButton, layout.NewSpacer(), w.addButton, w.historyButton, w.settingsButton)
	buttons := w.buttonBar
	w.win.SetContent(container.NewBorder(
		container.NewVBox(w.banner.box),
		container.NewVBox(widget.NewSeparator(), container.NewPadded(buttons)),
		nil, nil,
		w.body,
	))
	w.setTexts()
}

// setTexts sets the texts that do not depend on the model (again after a language change).
func (w *Window) setTexts() {
	w.emptyTitle.SetText(tr("No device connected"))
	w.emptySteps.SetText(strings.Join([]string{
		tr("1. Plug your phone, camera or player into this computer with a USB cable."),
		tr("2. Unlock it."),
		tr("3. When it asks what the USB connection is for, choose \"File transfer\"."),
		tr("Cradle finds it on its own; there is nothing else to start."),
	}, "\n"))
	w.noPartsLabel.SetText(tr("Nothing is synced with this device yet. Choose what to keep in step: a folder, the camera roll, the contacts."))
	w.noPartsButton.SetText(tr("Add partnership"))
	w.addButton.SetText(tr("Add partnership"))
	w.historyButton.SetText(tr("History"))
	w.settingsButton.SetText(tr("Settings"))
	w.header.setTexts()
	if w.buttonBar != nil {
		w.buttonBar.Refresh()
	}
}

// deviceID names a device in the window: its serial, or its attachment when it could not be
// opened (no serial yet).
func deviceID(d manager.DeviceInfo) string {
	if d.Serial != "" {
		return d.Serial
	}
	return "key:" + d.Key
}

// device returns the device shown.
func (w *Window) device() (manager.DeviceInfo, bool) {
	for _, d := range w.devices {
		if deviceID(d) == w.selected {
			return d, true
		}
	}
	return manager.DeviceInfo{}, false
}

// deviceParts returns the partnerships of the device shown, in the order they were added.
func (w *Window) deviceParts() []manager.Partnership {
	d, ok := w.device()
	if !ok || d.Serial == "" {
		return nil
	}
	var out []manager.Partnership
	for _, p := range w.parts {
		if p.Device == d.Serial {
			out = append(out, p)
		}
	}
	return out
}

// busy tells whether a session of the device shown runs or waits.
func (w *Window) busy() bool {
	for _, p := range w.deviceParts() {
		switch w.statuses[p.ID].State {
		case manager.StateSyncing, manager.StateQueued:
			return true
		}
	}
	return false
}

// pendingConflicts returns the conflicts still waiting for a choice.
func (w *Window) pendingConflicts() []manager.Conflict {
	var out []manager.Conflict
	for _, c := range w.conflicts {
		if c.Resolution == "" {
			out = append(out, c)
		}
	}
	return out
}

// ---- updates ----

// snapshot is what the event loop read from the manager for one update.
type snapshot struct {
	devices      []manager.DeviceInfo
	parts        []manager.Partnership
	statuses     []manager.Status
	settings     manager.Settings
	conflicts    []manager.Conflict
	conflictsErr error
	hasConflicts bool
	events       pending
}

// pending is what the events since the last update asked for.
type pending struct {
	any        bool
	conflicts  bool
	history    bool
	finished   []manager.Session
	added      int
	problems   []manager.DeviceInfo
	newDevices []manager.DeviceInfo
	stopped    []string
	errors     []string
}

func (p *pending) add(ev manager.Event) {
	p.any = true
	switch ev.Type {
	case manager.SessionFinished:
		if s, ok := ev.Data.(manager.Session); ok {
			p.finished = append(p.finished, s)
		}
		p.conflicts, p.history = true, true
	case manager.ConflictAdded:
		p.added++
		p.conflicts = true
	case manager.ConflictResolved, manager.PartnershipChanged:
		p.conflicts = true
	case manager.DeviceProblem:
		if d, ok := ev.Data.(manager.DeviceInfo); ok {
			p.problems = append(p.problems, d)
		}
	case manager.DeviceNew:
		if d, ok := ev.Data.(manager.DeviceInfo); ok {
			p.newDevices = append(p.newDevices, d)
		}
	case manager.ProviderStopped:
		if s, ok := ev.Data.(string); ok {
			p.stopped = append(p.stopped, ev.Partnership+"\x00"+s)
		}
	case manager.Error:
		if s, ok := ev.Data.(string); ok {
			p.errors = append(p.errors, s)
		}
	}
}

// loop follows the manager's events until Close or the manager closes. It never blocks the
// manager (the bus drops what a subscriber does not take, and this loop only takes and notes),
// and it updates the window at most once every FlushInterval, after the previous update has been
// applied.
func (w *Window) loop() {
	defer close(w.done)
	var (
		p         pending
		timer     *time.Timer
		timerC    <-chan time.Time
		lastFlush time.Time
		dropped   uint64
	)
	clock := time.NewTicker(clockInterval)
	defer clock.Stop()
	starts := trimStart
	trim := time.NewTimer(starts[0])
	defer trim.Stop()
	arm := func() {
		if timerC != nil {
			return
		}
		wait := time.Until(lastFlush.Add(FlushInterval))
		if wait < 0 {
			wait = 0
		}
		timer = time.NewTimer(wait)
		timerC = timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-w.quit:
			return
		case ev, ok := <-w.sub.C():
			if !ok {
				return
			}
			p.add(ev)
			arm()
			if ev.Type == manager.SessionFinished {
				trim.Reset(trimAfter)
				starts = nil
			}
		case r := <-w.refresh:
			p.any = true
			p.conflicts = p.conflicts || r.conflicts
			arm()
		case <-clock.C:
			p.any = true
			arm()
		case <-trim.C:
			debug.FreeOSMemory()
			if len(starts) > 1 {
				trim.Reset(starts[1] - starts[0])
				starts = starts[1:]
			}
		case <-timerC:
			timerC = nil
			if !p.any {
				continue
			}
			if w.applying.Load() {
				// The last update is still queued: coalesce into the next one.
				lastFlush = time.Now()
				arm()
				continue
			}
			if n := w.sub.Dropped(); n != dropped {
				// Events were lost: read everything again.
				dropped = n
				p.conflicts, p.history = true, true
			}
			snap := w.fetch(p)
			p = pending{}
			lastFlush = time.Now()
			w.applying.Store(true)
			w.do(func() {
				defer w.applying.Store(false)
				w.apply(snap)
			})
		}
	}
}

// requestRefresh asks the event loop for an update soon; any goroutine.
func (w *Window) requestRefresh(conflicts bool) {
	for {
		select {
		case w.refresh <- refreshRequest{conflicts: conflicts}:
			return
		case old := <-w.refresh:
			conflicts = conflicts || old.conflicts
		}
	}
}

// fetch reads the manager's state for an update (off the UI goroutine: Conflicts reads files).
func (w *Window) fetch(p pending) snapshot {
	s := snapshot{
		devices:  w.m.Devices(),
		parts:    w.m.Partnerships(),
		statuses: w.m.Status(),
		settings: w.m.Settings(),
		events:   p,
	}
	if p.conflicts {
		s.conflicts, s.conflictsErr = w.m.Conflicts()
		s.hasConflicts = true
	}
	return s
}

// apply shows a snapshot; UI goroutine.
func (w *Window) apply(s snapshot) {
	w.devices = s.devices
	w.parts = s.parts
	w.settings = s.settings
	clear(w.statuses)
	for _, st := range s.statuses {
		w.statuses[st.ID] = st
	}
	if s.hasConflicts {
		if s.conflictsErr != nil {
			w.log.Warn("ui: read the conflicts", "err", s.conflictsErr)
		}
		if s.conflicts != nil || s.conflictsErr == nil {
			w.conflicts = s.conflicts
		}
	}
	w.pickDevice()
	w.render()
	if w.conflictDlg != nil && s.hasConflicts {
		w.conflictDlg.update(w.pendingConflicts())
	}
	if w.historyDlg != nil && s.events.history {
		w.historyDlg.load()
	}
	if w.addDlg != nil {
		w.addDlg.devicesChanged()
	}
	w.notify(s.events)
	for _, msg := range s.events.errors {
		w.banner.show(sentence(msg))
	}
	w.offerSetup(s.events.newDevices)
	if w.tray != nil {
		w.tray.update()
	}
}

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
		w.syncButton.SetText(tr("Stop"))
		w.syncButton.SetIcon(theme.MediaStopIcon())
		w.syncButton.Importance = widget.DangerImportance
		w.syncButton.Enable()
	} else {
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

// syncTapped runs Sync Now, or Stop while the device's partnerships sync.
func (w *Window) syncTapped() {
	d, ok := w.device()
	if !ok {
		return
	}
	if w.busy() {
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
	switch w.statuses[id].State {
	case manager.StateSyncing, manager.StateQueued:
		w.m.Stop(id)
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

// closeRequested hides the window in the tray (when there is one and the setting says so) or
// quits.
func (w *Window) closeRequested() {
	if w.tray != nil && w.settings.KeepInTray {
		w.win.Hide()
		w.hidden = true
		if !w.toldTray {
			w.toldTray = true
			w.send(fyne.NewNotification(tr("Cradle keeps running"),
				tr("It syncs your devices in the background. Open it again from its icon in the tray.")))
		}
		return
	}
	w.win.Close()
	w.app.Quit()
}

// showWindow brings the window back (the tray's Open).
func (w *Window) showWindow() {
	w.hidden = false
	w.win.Show()
	w.win.RequestFocus()
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

// ---- notifications ----

// maxSent bounds Window.sent.
const maxSent = 20

// send sends a desktop notification and remembers it.
func (w *Window) send(n *fyne.Notification) {
	if w.opts.Notifications {
		w.app.SendNotification(n)
	}
	w.sent = append(w.sent, n)
	if len(w.sent) > maxSent {
		w.sent = slices.Delete(w.sent, 0, len(w.sent)-maxSent)
	}
}

// notify sends the notifications an update calls for: a sync finished (with its counts),
// conflicts need the user, a device the user must do something about, a provider that stopped.
func (w *Window) notify(p pending) {
	var done []manager.Session
	for _, s := range p.finished {
		switch {
		case s.Outcome == manager.OutcomeFailed:
			msg := ""
			if len(s.Errors) > 0 {
				msg = sentence(s.Errors[0])
			}
			if st, ok := w.statuses[s.Partnership]; ok && st.Fix != "" {
				msg += "\n" + capitalize(st.Fix)
			}
			w.send(fyne.NewNotification(tr("Sync of {{.Name}} failed", map[string]any{"Name": s.Name}), msg))
		case s.Outcome == manager.OutcomeStopped:
		case s.ToDesktop.Total()+s.ToDevice.Total() > 0 || s.Outcome == manager.OutcomePartial:
			done = append(done, s)
		}
	}
	switch len(done) {
	case 0:
	case 1:
		s := done[0]
		msg := countsText(s)
		if s.Skipped > 0 {
			msg += "\n" + trN("{{.Count}} items could not be synced; they are tried again next time", s.Skipped)
		}
		w.send(fyne.NewNotification(tr("{{.Name}} synchronized", map[string]any{"Name": s.Name}), msg))
	default:
		var lines []string
		for _, s := range done {
			lines = append(lines, s.Name+": "+countsText(s))
		}
		w.send(fyne.NewNotification(trN("{{.Count}} partnerships synchronized", len(done)), strings.Join(lines, "\n")))
	}
	if p.added > 0 {
		w.send(fyne.NewNotification(trN("{{.Count}} conflicts need you", p.added),
			tr("An item changed both here and on the device. Open Cradle and choose which version to keep.")))
	}
	for _, d := range p.problems {
		switch d.State {
		case manager.DeviceStateBusy, manager.DeviceStateNoPermission, manager.DeviceStateLocked:
			state, _ := deviceStateText(d)
			w.send(fyne.NewNotification(d.Label+": "+state, sentence(d.Problem)))
		}
	}
	for _, s := range p.stopped {
		id, msg, _ := strings.Cut(s, "\x00")
		name := id
		for _, q := range w.parts {
			if q.ID == id {
				name = q.Name
			}
		}
		w.send(fyne.NewNotification(tr("Provider stopped: {{.Name}}", map[string]any{"Name": name}),
			sentence(msg)+"\n"+tr("The next sync restarts it.")))
	}
}

// ---- the banner ----

// banner shows a message the manager sent that concerns no partnership in particular.
type banner struct {
	box   *fyne.Container
	text  *widget.Label
	close *widget.Button
}

func newBanner() *banner {
	b := &banner{text: widget.NewLabel("")}
	b.text.Wrapping = fyne.TextWrapWord
	b.text.Importance = widget.WarningImportance
	b.close = widget.NewButtonWithIcon("", theme.CancelIcon(), func() { b.box.Hide() })
	b.close.Importance = widget.LowImportance
	b.box = container.NewBorder(nil, nil, widget.NewIcon(theme.WarningIcon()), b.close, b.text)
	b.box.Hide()
	return b
}

func (b *banner) show(msg string) {
	b.text.SetText(msg)
	b.box.Show()
}

// ---- the device header ----

// header shows the device: icon, model, manufacturer, serial, state and storage, or what is wrong
// with it and how to fix that.
type header struct {
	w        *Window
	box      *fyne.Container
	icon     *widget.Icon
	title    *widget.Label
	subtitle *widget.Label
	state    *widget.Label
	picker   *widget.Select
	pickerID map[string]string // picker option -> deviceID
	storages *fyne.Container
	problem  *widget.Label
	help     *fyne.Container
	helpText *widget.Label
	commands *widget.RichText
	copyCmds *widget.Button
}

func newHeader(w *Window) *header {
	h := &header{w: w, pickerID: map[string]string{}}
	h.icon = widget.NewIcon(phoneIcon)
	h.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	h.title.SizeName = theme.SizeNameSubHeadingText
	h.title.Truncation = fyne.TextTruncateEllipsis
	h.subtitle = widget.NewLabel("")
	h.subtitle.Truncation = fyne.TextTruncateEllipsis
	h.state = widget.NewLabelWithStyle("", fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
	h.picker = widget.NewSelect(nil, func(s string) {
		if id, ok := h.pickerID[s]; ok {
			w.selectDevice(id)
		}
	})
	h.storages = container.NewVBox()
	h.problem = widget.NewLabel("")
	h.problem.Wrapping = fyne.TextWrapWord
	h.helpText = widget.NewLabel("")
	h.helpText.Wrapping = fyne.TextWrapWord
	// The commands (in a fixed-width font, which costs fonts loaded) are made when first shown.
	h.commands = widget.NewRichText()
	h.copyCmds = widget.NewButtonWithIcon("", theme.ContentCopyIcon(), func() {
		w.app.Clipboard().SetContent(udevCommands())
		h.copyCmds.SetText(tr("Copied"))
	})
	h.help = container.NewVBox(h.helpText, h.commands, container.NewHBox(h.copyCmds))
	h.help.Hide()
	h.problem.Hide()
	right := container.NewVBox(h.state, h.picker)
	h.box = container.NewPadded(container.NewBorder(nil, nil,
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(64), h.icon)),
		right,
		container.NewVBox(h.title, h.subtitle, h.storages, h.problem, h.help),
	))
	return h
}

func (h *header) setTexts() {
	h.helpText.SetText(tr("Linux lets only root open this device until a udev rule gives you access. Run these commands in a terminal, then unplug the device and plug it in again:"))
	h.copyCmds.SetText(tr("Copy commands"))
	h.picker.PlaceHolder = tr("Choose a device")
}

// show fills the header with device d; all are the devices the picker offers.
func (h *header) show(d manager.DeviceInfo, all []manager.DeviceInfo) {
	h.icon.SetResource(deviceIcon(d))
	title := d.Model
	if title == "" {
		title = d.Label
	}
	h.title.SetText(title)
	var sub []string
	if d.Manufacturer != "" {
		sub = append(sub, d.Manufacturer)
	}
	if d.Kind != "" && d.Kind != "unknown" {
		sub = append(sub, kindText(d.Kind))
	}
	if d.Serial != "" {
		sub = append(sub, tr("serial {{.Serial}}", map[string]any{"Serial": d.Serial}))
	}
	if d.State == manager.DeviceStateDisconnected && !d.LastSeen.IsZero() {
		sub = append(sub, tr("last seen {{.When}}", map[string]any{"When": ago(d.LastSeen, h.w.now())}))
	}
	h.subtitle.SetText(strings.Join(sub, " · "))
	h.subtitle.Hidden = len(sub) == 0
	state, t := deviceStateText(d)
	h.state.SetText(state)
	h.state.Importance = toneImportance(t)
	h.state.Refresh()

	// The picker, when there is more than one device.
	if len(all) > 1 {
		clear(h.pickerID)
		opts := make([]string, 0, len(all))
		sel := ""
		for _, o := range all {
			name := o.Label
			if name == "" {
				name = o.Model
			}
			if o.Serial != "" {
				name += " (" + o.Serial + ")"
			}
			if _, dup := h.pickerID[name]; dup {
				name += " " + o.Key
			}
			h.pickerID[name] = deviceID(o)
			opts = append(opts, name)
			if deviceID(o) == deviceID(d) {
				sel = name
			}
		}
		if !slices.Equal(opts, h.picker.Options) {
			h.picker.SetOptions(opts)
		}
		if h.picker.Selected != sel {
			h.picker.SetSelected(sel)
		}
		h.picker.Show()
	} else {
		h.picker.Hide()
	}

	// Storage bars.
	var rows []fyne.CanvasObject
	if d.Connected() {
		for _, s := range d.Storages {
			rows = append(rows, storageRow(s))
		}
	}
	h.storages.Objects = rows
	h.storages.Hidden = len(rows) == 0

	// What is wrong, and what to do.
	switch d.State {
	case manager.DeviceStateBusy, manager.DeviceStateNoPermission, manager.DeviceStateLocked, manager.DeviceStateError:
		h.problem.SetText(problemText(d))
		h.problem.Importance = widget.DangerImportance
		h.problem.Show()
	case manager.DeviceStateDisconnected:
		h.problem.SetText(tr("Plug it in and unlock it to sync; Cradle starts on its own when it sees it."))
		h.problem.Importance = widget.MediumImportance
		h.problem.Show()
	default:
		h.problem.Hide()
	}
	if d.State == manager.DeviceStateNoPermission {
		if len(h.commands.Segments) == 0 {
			h.commands.Segments = []widget.RichTextSegment{&widget.TextSegment{Style: widget.RichTextStyleCodeBlock, Text: udevCommands()}}
		}
		h.help.Hidden = false
	} else {
		h.help.Hidden = true
	}
	// What is shown changed: lay the header out again.
	h.box.Refresh()
}

// problemText is what the header says about a device that cannot be used.
func problemText(d manager.DeviceInfo) string {
	var msg string
	switch d.State {
	case manager.DeviceStateBusy:
		msg = tr("Another program is using this device, often the file manager or a photo importer. Close it, or eject the device in the file manager without unplugging it; Cradle tries again on its own.")
	case manager.DeviceStateNoPermission:
		msg = tr("This computer does not let Cradle open the device.")
	case manager.DeviceStateLocked:
		msg = tr("Unlock the device, then choose \"File transfer\" in its USB notification.")
	default:
		msg = tr("The device is connected but could not be opened. Unplug it and plug it in again.")
	}
	if d.Problem != "" {
		msg += "\n" + sentence(d.Problem)
	}
	return msg
}

// storageRow is one storage's name and a bar of how full it is.
func storageRow(s manager.StorageInfo) fyne.CanvasObject {
	name := s.Description
	if name == "" {
		name = tr("Storage")
	}
	bar := widget.NewProgressBar()
	if s.Capacity > 0 {
		used := s.Capacity - min(s.Free, s.Capacity)
		bar.SetValue(float64(used) / float64(s.Capacity))
		text := tr("{{.Used}} used of {{.Capacity}} ({{.Free}} free)", map[string]any{
			"Used": humanBytes(int64(used)), "Capacity": humanBytes(int64(s.Capacity)), "Free": humanBytes(int64(s.Free))})
		bar.TextFormatter = func() string { return text }
	} else {
		bar.TextFormatter = func() string { return tr("size unknown") }
	}
	label := widget.NewLabel(name)
	if s.ReadOnly {
		label.SetText(name + " (" + tr("read-only") + ")")
	}
	return container.NewBorder(nil, nil, label, nil, bar)
}

// toneImportance is the importance (colour) of a label of that tone.
func toneImportance(t tone) widget.Importance {
	switch t {
	case toneBusy:
		return widget.HighImportance
	case toneWarning:
		return widget.WarningImportance
	case toneError:
		return widget.DangerImportance
	case toneOK:
		return widget.SuccessImportance
	}
	return widget.MediumImportance
}

// ---- partnership rows ----

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
		menu := fyne.NewMenu("",
			fyne.NewMenuItem(tr("History"), func() { w.showHistory(id) }),
			fyne.NewMenuItem(tr("Remove…"), func() { w.removePartnership(id) }),
		)
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
		r.syncButton.SetText(tr("Stop"))
		r.syncButton.SetIcon(theme.MediaStopIcon())
		r.syncButton.Enable()
	default:
		r.syncButton.SetText(tr("Sync"))
		r.syncButton.SetIcon(theme.ViewRefreshIcon())
		if st.Connected {
			r.syncButton.Enable()
		} else {
			r.syncButton.Disable()
		}
	}
}

// ---- helpers ----

// formatTime shows a time for people: local, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
