package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/manager"
)

// cmdWatch runs the service manager without a window until interrupted: automatic sync on
// plug-in, on changes, on the schedule and after failures. It prints one line per event.
func cmdWatch(c *invocation, args []string) error {
	fs := c.flags("watch", "")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("watch takes no arguments")
	}
	mask := manager.EventAll &^ (manager.SessionProgress | manager.StatusChanged)
	if h := c.env.host; h != nil {
		// Served by the running Cradle: follow its events until the user stops.
		if err := h.covers(c); err != nil {
			return err
		}
		sub := h.m.Subscribe(mask)
		defer sub.Close()
		return watchLoop(c, h.m, sub, c.ctx)
	}
	// Subscribed before the devices attach: the connection and the session on plug-in of those
	// attached at start come as events too.
	var (
		m   *manager.Manager
		sub *manager.Subscription
	)
	h, code, served := becomeHost(c, func() (*manager.Manager, error) {
		var err error
		m, sub, err = c.openSubscribed(true, mask)
		return m, err
	})
	if served {
		return exitStatus(code)
	}
	defer h.close(func() {
		sub.Close()
		m.Close()
	})
	// The main goroutine stays free for a window a client may ask for (gui.loop); the events
	// are printed beside it.
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan error, 1)
	go func() { done <- watchLoop(c, m, sub, ctx) }()
	h.gui.loop(ctx)
	cancel()
	return <-done
}

// watchLoop prints the events until ctx ends.
func watchLoop(c *invocation, m *manager.Manager, sub *manager.Subscription, ctx context.Context) error {
	for _, e := range m.PluginErrors() {
		c.say("%s", e)
	}
	c.line("watching: %d partnerships; stop with Ctrl+C", len(m.Partnerships()))
	for {
		select {
		case <-ctx.Done():
			c.line("stopping")
			return nil
		case ev, ok := <-sub.C():
			if !ok {
				return nil
			}
			if s := describeEvent(ev); s != "" {
				c.line("%s", s)
			}
		}
	}
}

// line prints a timestamped line on stdout (watch's output).
func (c *invocation) line(format string, args ...any) {
	fmt.Fprintf(c.stdout, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func describeEvent(ev manager.Event) string {
	switch d := ev.Data.(type) {
	case manager.DeviceInfo:
		switch ev.Type {
		case manager.DeviceConnected:
			return fmt.Sprintf("device connected: %s (%s)", d.Label, d.Serial)
		case manager.DeviceDisconnected:
			return fmt.Sprintf("device disconnected: %s", d.Label)
		case manager.DeviceNew:
			return fmt.Sprintf("new device: %s (%s); add a partnership with 'cradle partner add --device %s'", d.Label, d.Serial, d.Serial)
		case manager.DeviceProblem:
			return fmt.Sprintf("device %s cannot be used: %s", d.Label, d.Problem)
		}
	case manager.Session:
		switch ev.Type {
		case manager.SessionStarted:
			return fmt.Sprintf("sync started: %s (%s)", d.Name, d.Trigger)
		case manager.SessionFinished:
			if d.Outcome == manager.OutcomeFailed || d.Outcome == manager.OutcomeStopped {
				return fmt.Sprintf("sync %s: %s: %s", d.Outcome, d.Name, strings.Join(d.Errors, "; "))
			}
			return "sync finished: " + summary(d)
		}
	case manager.Conflict:
		switch ev.Type {
		case manager.ConflictAdded:
			return fmt.Sprintf("conflict %s: %s changed on both sides (%s)", d.ID, d.Path, d.PartnershipName)
		case manager.ConflictResolved:
			return fmt.Sprintf("conflict %s resolved: keep %s", d.ID, d.Resolution)
		}
	case string:
		switch ev.Type {
		case manager.ProviderStopped:
			return "provider stopped: " + d
		case manager.Error:
			return "error: " + d
		}
	case manager.Partnership:
		if d.Name == "" {
			return fmt.Sprintf("partnership %s removed", d.ID)
		}
		return fmt.Sprintf("partnership %s (%s) saved", d.ID, d.Name)
	case manager.Settings:
		return "settings changed"
	}
	return ""
}
