// Package ui is Cradle's Fyne window: the device header, the partnerships list, the conflict
// dialog, settings and history. It reads the manager's events and calls the manager's methods; it
// holds no sync logic. It never imports fyne.io/fyne/v2/app, so its tests run on fyne's test
// driver without GL.
package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// NewWindow builds the main window of app a.
func NewWindow(a fyne.App) fyne.Window {
	w := a.NewWindow("Cradle")
	empty := widget.NewLabel("No device connected.\nPlug in your phone, unlock it and choose \"File transfer\".")
	empty.Alignment = fyne.TextAlignCenter
	w.SetContent(container.NewCenter(empty))
	w.Resize(fyne.NewSize(720, 520))
	return w
}
