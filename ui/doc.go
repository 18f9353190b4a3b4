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
//
// # Where things are
//
// window.go: the Window, its lifecycle (New, ShowAndRun, Close, closing to the tray) and its
// layout. updates.go: the event loop that batches the manager's events into snapshots and applies
// them. render.go: the main view drawn from a snapshot (device picker, partnership rows,
// buttons). header.go and rows.go: the device header, the banner, one partnership's row.
// actions.go: what the buttons do (sync, remove, the set-up offer). notify.go: desktop
// notifications. tray.go: the tray icon and its menu. The dialogs: add.go (add a partnership),
// conflicts.go (both versions side by side, diff.go for texts), settings.go, history.go,
// versions.go (what syncs replaced or deleted, restored from there), preview.go (what a sync
// would do, and Sync now from it; the mass-delete guard's message). A partnership's menu (rows.go)
// opens Preview, Versions and History.
// format.go: the status lines, sizes and times the window shows, worked out from the manager's
// data without a widget (so tested without a window); i18n.go: the translations; icons.go: the
// device icons. The package map of the whole program is in docs/design.md.
package ui
