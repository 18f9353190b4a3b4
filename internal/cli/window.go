package cli

import (
	"github.com/cradle-sync/cradle/manager"
)

// openWindow runs the window until it is closed, with the service manager running behind it,
// as the host of the config folder (serve.go). When a Cradle serves the folder already, its
// window is shown instead (run sent the request before coming here). --demo runs apart: its
// own temporary config folder, no socket.
func openWindow(c *invocation) int {
	if c.g.demo {
		m, cleanup, err := startDemo(c)
		if err != nil {
			c.say("cradle: %s", oneLine(err))
			return 1
		}
		defer cleanup()
		g := newGUI(m, c.logger(0))
		defer g.close()
		if err := g.build(true, false, nil); err != nil {
			c.say("cradle: %s", oneLine(err))
			return 1
		}
		g.run(c.ctx)
		return 0
	}
	h, release, code, served := hostManager(c)
	if served {
		return code
	}
	defer h.close(release)
	if err := h.gui.build(true, false, nil); err != nil {
		c.say("cradle: %s", oneLine(err))
		return 1
	}
	h.gui.run(c.ctx)
	return 0
}

// runBackground is `cradle --background`, how Cradle starts at login: the service manager with
// the tray icon when the desktop has a tray and no window; without a tray, like cradle watch
// without its output. `cradle` opens the window in it later.
func runBackground(c *invocation) int {
	h, release, code, served := hostManager(c)
	if served {
		return code
	}
	defer h.close(release)
	if trayAvailable() {
		if err := h.gui.build(false, true, nil); err == nil {
			h.gui.run(c.ctx)
			return 0
		} else {
			c.say("cradle: no tray icon: %s", oneLine(err))
		}
	}
	h.gui.loop(c.ctx)
	return 0
}

// hostManager makes this process the host with a service manager; release closes the manager.
func hostManager(c *invocation) (h *host, release func(), code int, served bool) {
	h, code, served = becomeHost(c, func() (*manager.Manager, error) {
		m, rel, err := c.open(true)
		release = rel
		return m, err
	})
	return h, release, code, served
}
