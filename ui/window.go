package ui

import (
	"context"
	"log/slog"
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
	// HideOnClose hides the window when it is closed instead of quitting: the process ran
	// without a window before (started at login, or cradle watch) and goes on so.
	HideOnClose bool
	// Autostart is Cradle's start at login, offered in the settings; nil leaves it out.
	Autostart Autostart
}

// Autostart is Cradle's start at login (internal/autostart's XDG autostart entry).
type Autostart interface {
	Enabled() bool
	SetEnabled(on bool) error
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
	banner        *banner
	header        *header
	emptyState    *fyne.Container
	emptyTitle    *widget.Label
	emptySteps    *widget.Label
	partsTitle    *widget.Label
	noParts       *fyne.Container
	noPartsLabel  *widget.Label
	noPartsButton *widget.Button
	rowBox        *fyne.Container
	rows          map[string]*partnershipRow
	mainView      *fyne.Container
	buttonBar     *fyne.Container
	body          *fyne.Container
	syncButton    *widget.Button
	// stopSince is when the Sync Now button last turned into Stop (zero while it shows Sync
	// Now): a tap is read by what the button showed, not by a state it has not drawn yet.
	stopSince       time.Time
	conflictsButton *widget.Button
	addButton       *widget.Button
	settingsButton  *widget.Button
	historyButton   *widget.Button

	conflictDlg *conflictDialog
	addDlg      *addDialog
	settingsDlg *settingsDialog
	historyDlg  *historyDialog
	versionsDlg *versionsDialog
	previewDlg  *previewDialog
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

// pendingConflicts returns the conflicts still waiting for a choice (those whose last choice
// could not be carried out among them).
func (w *Window) pendingConflicts() []manager.Conflict {
	var out []manager.Conflict
	for _, c := range w.conflicts {
		if c.Resolution == "" {
			out = append(out, c)
		}
	}
	return out
}

// closeRequested hides the window in the tray (when there is one and the setting says so) or
// quits.
func (w *Window) closeRequested() {
	if (w.tray != nil && w.settings.KeepInTray) || w.opts.HideOnClose {
		w.win.Hide()
		w.hidden = true
		if w.tray != nil && !w.toldTray {
			w.toldTray = true
			w.send(fyne.NewNotification(tr("Cradle keeps running"),
				tr("It syncs your devices in the background. Open it again from its icon in the tray.")))
		}
		return
	}
	w.win.Close()
	w.app.Quit()
}

// Raise shows the window and brings it to the front (cradle started again); it may be called
// from any goroutine.
func (w *Window) Raise() { w.do(w.showWindow) }

// showWindow brings the window back (the tray's Open).
func (w *Window) showWindow() {
	w.hidden = false
	w.win.Show()
	w.win.RequestFocus()
}
