package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/repl"
)

// dryRun prints what a sync of refs would do: one JSON array of changes, or a table per
// partnership, with a word where the mass-delete guard would stop the sync.
func dryRun(c *invocation, m *manager.Manager, opts manager.SyncOptions, asJSON bool, refs []string) error {
	plans, err := m.DryRun(c.ctx, opts, refs...)
	if err != nil {
		return err
	}
	var failed []string
	for _, p := range plans {
		if p.Error != "" {
			failed = append(failed, p.Name+": "+p.Error)
		}
	}
	if asJSON {
		all := []manager.Change{}
		for _, p := range plans {
			all = append(all, p.Changes...)
		}
		if err := c.writeJSON(all); err != nil {
			return err
		}
	} else {
		for _, p := range plans {
			if p.Error != "" {
				continue
			}
			if len(p.Changes) == 0 {
				c.say("%s: up to date, nothing to do", p.Name)
				continue
			}
			c.say("%s: %s", p.Name, plural(len(p.Changes), "change"))
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACTION\tTO\tPATH\tSIZE\tWHY")
			for _, ch := range p.Changes {
				size := ""
				if ch.Kind == "file" && (ch.Action == "create" || ch.Action == "update") {
					size = humanBytes(ch.Size)
				}
				to := strings.TrimPrefix(ch.Direction, "to-")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ch.Action, to, ch.Path, size, ch.Reason)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	for _, p := range plans {
		if md := p.MassDelete; md != nil {
			c.say("%s: this sync would stop before changing anything: it deletes %d of the %d items on the %s side, more than %s of them; "+
				"'cradle sync --allow-mass-delete %s' lets it (what it deletes is kept in the versions)",
				p.Name, md.Deletes, md.Items, md.Side, repl.ThresholdText(md.Threshold), p.Partnership)
		}
		for _, s := range p.Skipped {
			c.say("%s: could not be synced: %s", p.Name, s)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, " | "))
	}
	return nil
}
