package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/cradle-sync/cradle/manager"
)

// cmdDevices lists the connected devices (and those present with a problem).
func cmdDevices(c *invocation, args []string) error {
	fs := c.flags("devices", "[--json]")
	asJSON := fs.Bool("json", false, "print one JSON document")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("devices takes no arguments")
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	var present []manager.DeviceInfo
	for _, d := range m.Devices() {
		if d.State != manager.DeviceStateDisconnected {
			present = append(present, d)
		}
	}
	if present == nil {
		present = []manager.DeviceInfo{}
	}
	if *asJSON {
		return c.writeJSON(present)
	}
	if len(present) == 0 {
		c.say("No device connected. Plug in your phone, unlock it and choose \"File transfer\".")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tDEVICE\tKIND\tSTORAGE\tSTATE")
	for _, d := range present {
		var st []string
		for _, s := range d.Storages {
			st = append(st, fmt.Sprintf("%s: %s free of %s", s.Description, humanBytes(int64(s.Free)), humanBytes(int64(s.Capacity))))
		}
		state := string(d.State)
		if d.New {
			state += " (new)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", orDash(d.Serial), d.Label, d.Kind, orDash(strings.Join(st, "; ")), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range present {
		if d.Problem != "" {
			c.say("%s: %s", d.Label, d.Problem)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
