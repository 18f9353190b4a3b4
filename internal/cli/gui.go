package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"github.com/godbus/dbus/v5"

	"github.com/cradle-sync/cradle/assets"
	"github.com/cradle-sync/cradle/internal/autostart"
	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/ui"
)

// appID matches FyneApp.toml.
const appID = "io.github.cradle_sync.cradle"

// gui is a process's Fyne application and window. Fyne runs on the main goroutine: the window
// builds and runs it at once; a process that runs without a window (watch, the background
// without a tray) runs loop there, which builds and runs it when a client first asks for the
// window.
type gui struct {
	m   *manager.Manager
	log *slog.Logger

	mu  sync.Mutex
	app fyne.App
	win *ui.Window
	// starts hands a client's request for the window to loop, on the main goroutine; built is
	// closed once the window exists (a process that builds its own takes no request).
	starts chan startRequest
	built  chan struct{}
}

type startRequest struct {
	show bool
	env  map[string]string
	done chan error
}

func newGUI(m *manager.Manager, log *slog.Logger) *gui {
	return &gui{m: m, log: log, starts: make(chan startRequest), built: make(chan struct{})}
}

// guiEnv are the variables a window needs that a process started without one (by systemd)
// may lack; a client's are taken when the window is opened for it.
var guiEnv = []string{"DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS", "XDG_CURRENT_DESKTOP"}

// build makes the application and the window, shown or not; on the main goroutine, once.
// hideOnClose keeps the process running when the window is closed (it ran without one).
func (g *gui) build(show, hideOnClose bool, env map[string]string) (err error) {
	for _, n := range guiEnv {
		if v := env[n]; v != "" && os.Getenv(n) == "" {
			os.Setenv(n, v)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.app == nil {
		g.app = app.NewWithID(appID)
		g.app.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
		// A binary built by go build (not fyne package) has no metadata: the tray would be
		// titled with the app ID.
		if md := g.app.Metadata(); md.Name == "" {
			md.ID, md.Name = appID, "Cradle"
			if md.Version == "" {
				md.Version = Version
			}
			app.SetMetadata(md)
		}
	}
	// The tray needs a StatusNotifier host on the session bus: without a bus, quitting panics
	// in fyne's systray; without a host, nobody shows the icon. Notifications need the bus.
	bus := os.Getenv("DBUS_SESSION_BUS_ADDRESS") != ""
	opts := ui.Options{Tray: trayAvailable(), Notifications: bus, HideOnClose: hideOnClose, Logger: g.log}
	if a, err := autostart.Default(); err == nil {
		opts.Autostart = a
	}
	w, err := newWindow(g.app, g.m, opts)
	if err != nil {
		return err
	}
	g.win = w
	close(g.built)
	if show {
		w.Window().Show()
	}
	return nil
}

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

// run runs the application on the main goroutine until it quits (the window closed, the
// tray's Quit) or ctx ends (Ctrl+C, SIGTERM).
func (g *gui) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { fyne.Do(g.app.Quit) })
	defer stop()
	g.app.Run()
}

// loop is the main goroutine of a process that runs without a window: it waits for ctx to end,
// or for a client to ask for the window, which it then builds and runs until the application
// quits.
func (g *gui) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-g.starts:
			err := g.build(r.show, true, r.env)
			r.done <- err
			if err == nil {
				g.run(ctx)
				return
			}
		}
	}
}

// show raises the window (show) or makes sure the tray icon is there, for a client.
func (g *gui) show(c *invocation, show bool) error {
	g.mu.Lock()
	w := g.win
	g.mu.Unlock()
	if w != nil {
		if show {
			w.Raise()
		}
		return nil
	}
	if !show && !trayAvailableFor(c.env) {
		return nil // in the background already, and there is no tray to show
	}
	r := startRequest{show: show, env: c.env.vars, done: make(chan error, 1)}
	select {
	case g.starts <- r:
		return <-r.done
	case <-g.built:
		// The process built its window meanwhile (the window, the tray starting up).
		return g.show(c, show)
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// close closes the window (after the application quit).
func (g *gui) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.win != nil {
		g.win.Close()
	}
}

// showWindow serves `cradle` (show) or `cradle --background` for a client.
func (h *host) showWindow(c *invocation, show bool) int {
	if err := h.gui.show(c, show); err != nil {
		fmt.Fprintf(c.stderr, "cradle: %s\n", oneLine(err))
		return 1
	}
	return 0
}

// trayWatcher is the D-Bus name of the StatusNotifier host's registry that tray icons
// register with.
const trayWatcher = "org.kde.StatusNotifierWatcher"

// trayAvailable tells whether this session shows tray icons: a session bus with a
// StatusNotifierWatcher on it.
func trayAvailable() bool {
	return watcherOn(os.Getenv("DBUS_SESSION_BUS_ADDRESS"))
}

// trayAvailableFor is trayAvailable for a client's session (the process may have no bus yet).
func trayAvailableFor(e *environ) bool {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		addr = e.getenv("DBUS_SESSION_BUS_ADDRESS")
	}
	return watcherOn(addr)
}

func watcherOn(addr string) bool {
	if addr == "" {
		return false
	}
	conn, err := dbus.Dial(addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	if err := conn.Auth(nil); err != nil {
		return false
	}
	if err := conn.Hello(); err != nil {
		return false
	}
	var has bool
	err = conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, trayWatcher).Store(&has)
	return err == nil && has
}

// exitStatus is an error that is an exit status already reported (a command served elsewhere).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// statusOf returns the exit status an exitStatus error carries.
func statusOf(err error) (int, bool) {
	var es exitStatus
	if errors.As(err, &es) {
		return int(es), true
	}
	return 0, false
}
