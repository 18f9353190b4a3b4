package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/cradle-sync/cradle/assets"
	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/ui"
)

// appID matches FyneApp.toml.
const appID = "io.github.cradle_sync.cradle"

// newWindow creates the window. Without a display to open it on, GLFW panics (after logging
// "X11: Failed to open display"): that becomes an error a user can act on.
func newWindow(a fyne.App, m *manager.Manager, opts ui.Options) (w *ui.Window, err error) {
	defer func() {
		if r := recover(); r != nil {
			where := "DISPLAY is not set"
			if d := os.Getenv("DISPLAY"); d != "" {
				where = fmt.Sprintf("DISPLAY is %q", d)
			}
			err = fmt.Errorf("the window cannot open: no display to show it on (%s; %v). Run cradle in a desktop session, or over ssh with -X; the commands need no window (cradle -h lists them)", where, r)
		}
	}()
	return ui.New(a, m, opts), nil
}

// openWindow runs the Fyne application until the window is closed, with the service manager
// running behind it.
func openWindow(ctx context.Context, g *globals, stderr io.Writer) int {
	c := &invocation{ctx: ctx, g: g, name: "window", stderr: stderr, stdout: io.Discard}
	m, cleanup, err := c.startWindowManager()
	if err != nil {
		fmt.Fprintf(stderr, "cradle: %s\n", oneLine(err))
		return 1
	}
	defer cleanup()
	a := app.NewWithID(appID)
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	// The tray and notifications need a session bus: without one, quitting panics in fyne's
	// systray and every notification logs an error.
	bus := os.Getenv("DBUS_SESSION_BUS_ADDRESS") != ""
	w, err := newWindow(a, m, ui.Options{Tray: bus, Notifications: bus})
	if err != nil {
		fmt.Fprintf(stderr, "cradle: %s\n", oneLine(err))
		return 1
	}
	defer w.Close()
	stop := context.AfterFunc(ctx, func() { fyne.Do(a.Quit) }) // Ctrl-C, SIGTERM
	defer stop()
	w.ShowAndRun()
	return 0
}
