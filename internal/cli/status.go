package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/cradle-sync/cradle/manager"
)

// cmdStatus shows each partnership's state, last sync, pending changes and errors.
func cmdStatus(c *invocation, args []string) error {
	fs := c.flags("status", "[--json]")
	asJSON := fs.Bool("json", false, "print one JSON document")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("status takes no arguments")
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	// Count what waits on the partnerships whose device is connected (nothing is changed).
	if len(m.Partnerships()) > 0 {
		if err := m.Refresh(c.ctx); err != nil && !errors.Is(err, manager.ErrNotConnected) {
			c.say("warning: pending changes could not be counted: %s", oneLine(err))
		}
	}
	st := m.Status()
	if st == nil {
		st = []manager.Status{}
	}
	if *asJSON {
		return c.writeJSON(st)
	}
	if len(st) == 0 {
		c.say("No partnerships yet; add one with 'cradle partner add'.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tDEVICE\tSTATE\tLAST SYNC\tPENDING\tCONFLICTS")
	for _, s := range st {
		last := ago(s.LastSync)
		if s.LastOutcome != "" && !s.LastSync.IsZero() {
			last += " (" + string(s.LastOutcome) + ")"
		}
		state := string(s.State)
		if s.Paused {
			state += ", paused by the provider"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.ID, s.Name, s.Device, state, last, s.Pending, s.Conflicts)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Why a partnership cannot sync, or why its last sync failed: one line each, under the table.
	for _, s := range st {
		for _, k := range s.Skipped {
			c.say("%s: skipped %q on the %s: %s", s.Name, k.Path, k.Side, k.Reason)
		}
		if line := reasonLine(s); line != "" {
			fmt.Fprintln(c.stdout, line)
		}
	}
	return nil
}

// reasonLine is the one line that says why a partnership's last sync failed (or why it cannot
// sync) and what to do: "1 notes: failed: <error>; <fix>". It is "" when all is well.
func reasonLine(s manager.Status) string {
	if s.Error == "" {
		return ""
	}
	what := "error"
	switch {
	case s.State == manager.StateStopped:
		what = "provider stopped"
	case s.LastOutcome == manager.OutcomeFailed:
		what = "last sync failed"
	}
	line := fmt.Sprintf("%s %s: %s: %s", s.ID, s.Name, what, oneLine(errors.New(s.Error)))
	if s.Fix != "" {
		line += "; " + s.Fix
	}
	return line
}
