package cli

import (
	"github.com/cradle-sync/cradle/internal/autostart"
)

// cmdAutostart is `cradle autostart on|off`: Cradle starts in the background at login (the
// tray icon when the desktop has a tray, no window), or not. Without an argument it says which.
// It touches the user's autostart folder only, so it runs where it is typed.
func cmdAutostart(c *invocation, args []string) error {
	fs := c.flags("autostart", "on|off")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	e, err := autostart.Default()
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0:
		if e.Enabled() {
			c.say("Cradle starts in the background at login (%s).", e.Path)
		} else {
			c.say("Cradle does not start at login; 'cradle autostart on' makes it.")
		}
		return nil
	case len(rest) > 1:
		return usageError("autostart takes on or off")
	}
	switch rest[0] {
	case "on":
		if err := e.SetEnabled(true); err != nil {
			return err
		}
		c.say("Cradle starts in the background at login from now on (%s): its tray icon when the desktop has a tray, no window; plugged-in devices sync.", e.Path)
	case "off":
		if err := e.SetEnabled(false); err != nil {
			return err
		}
		c.say("Cradle no longer starts at login.")
	default:
		return usageError("autostart %q: say on or off", rest[0])
	}
	return nil
}
