package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// NewWindow builds a window without a manager: only the empty state.
//
// Deprecated: use New, which follows a Manager. NewWindow stays until package main passes its
// Manager to New.
func NewWindow(a fyne.App) fyne.Window {
	w := a.NewWindow("Cradle")
	empty := widget.NewLabel("No device connected.\nPlug in your phone, unlock it and choose \"File transfer\".")
	empty.Alignment = fyne.TextAlignCenter
	w.SetContent(container.NewCenter(empty))
	w.Resize(fyne.NewSize(720, 520))
	return w
}
