// Command minimal is the smallest Fyne window: one label, the size of Cradle's. test/gui measures
// its memory beside Cradle's demo window, in the same X server, as the baseline a Fyne program
// pays before doing anything (the GL driver, Mesa, fonts).
package main

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/widget"
)

func main() {
	a := app.NewWithID("io.github.cradle_sync.minimal")
	w := a.NewWindow("Minimal")
	w.SetContent(widget.NewLabel("A minimal Fyne window."))
	w.Resize(fyne.NewSize(900, 660))
	w.ShowAndRun()
}
