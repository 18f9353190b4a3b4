package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/cradle-sync/cradle/manager"
)

// cmdConflicts lists the pending conflicts.
func cmdConflicts(c *invocation, args []string) error {
	fs := c.flags("conflicts", "[--json]")
	asJSON := fs.Bool("json", false, "print one JSON document")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("conflicts takes no arguments")
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	cs, err := m.Conflicts()
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []manager.Conflict{}
	}
	if *asJSON {
		return c.writeJSON(cs)
	}
	if len(cs) == 0 {
		c.say("No conflicts.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPARTNERSHIP\tPATH\tDESKTOP\tDEVICE")
	for _, x := range cs {
		path := x.Path
		if x.Resolution != "" {
			path += " (keep " + string(x.Resolution) + " at the next sync)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.ID, x.PartnershipName, path, describeSide(x.Desktop), describeSide(x.Device))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c.say("Resolve one with 'cradle resolve ID --keep desktop|device|both', or all with 'cradle resolve --all --keep ...'.")
	return nil
}

func describeSide(s manager.ConflictSide) string {
	if !s.Exists {
		return "deleted"
	}
	if s.Kind == "folder" {
		return "folder"
	}
	return fmt.Sprintf("%s, %s", humanBytes(s.Size), s.Modified.Local().Format("2006-01-02 15:04:05"))
}

// cmdResolve resolves one conflict, or all of them.
func cmdResolve(c *invocation, args []string) error {
	fs := c.flags("resolve", "ID --keep desktop|device|both, or --all --keep desktop|device|both [--partnership ID]")
	keep := fs.String("keep", "", "which version to keep: desktop, device or both")
	all := fs.Bool("all", false, "resolve every pending conflict the same way")
	only := fs.String("partnership", "", "with --all: only this partnership's conflicts (ID or name)")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	k := manager.Keep(*keep)
	switch k {
	case manager.KeepDesktop, manager.KeepDevice, manager.KeepBoth:
	case "":
		return usageError("--keep desktop|device|both is required")
	default:
		return usageError("--keep %q: choose desktop, device or both", *keep)
	}
	switch {
	case *all && len(rest) > 0:
		return usageError("give a conflict ID or --all, not both")
	case !*all && len(rest) != 1:
		return usageError("give one conflict ID (see 'cradle conflicts'), or --all")
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	// The partnerships touched, to apply the choices now when their device is connected.
	touched := map[string]bool{}
	if *all {
		cs, err := m.Conflicts()
		if err != nil {
			return err
		}
		var refs []string
		if *only != "" {
			p, err := m.Partnership(*only)
			if err != nil {
				return err
			}
			refs = append(refs, p.ID)
		}
		for _, x := range cs {
			if *only == "" || x.Partnership == refs[0] {
				touched[x.Partnership] = true
			}
		}
		n, err := m.ResolveAll(c.ctx, k, refs...)
		if err != nil {
			return err
		}
		if n == 0 {
			c.say("No conflicts to resolve.")
			return nil
		}
		c.say("Resolved %s: keep %s.", plural(n, "conflict"), k)
	} else {
		id := rest[0]
		if err := m.Resolve(c.ctx, id, k); err != nil {
			return err
		}
		for _, p := range m.Partnerships() {
			if len(id) > len(p.ID) && id[:len(p.ID)+1] == p.ID+"." {
				touched[p.ID] = true
			}
		}
		c.say("Resolved %s: keep %s.", id, k)
	}
	return applyNow(c, m, touched)
}

// applyNow runs a session for each touched partnership whose device is connected, so the choice
// reaches the files now; the others get it at their next sync.
func applyNow(c *invocation, m *manager.Manager, touched map[string]bool) error {
	status := m.Status()
	var now []string
	for _, s := range status {
		if !touched[s.ID] {
			continue
		}
		if s.Connected {
			now = append(now, s.ID)
		} else {
			c.say("%s: the device is not connected; the choice is applied at the next sync.", s.Name)
		}
	}
	if len(now) == 0 {
		return nil
	}
	sessions, err := m.Sync(c.ctx, manager.SyncOptions{Trigger: manager.TriggerResolve}, now...)
	if err != nil {
		if errors.Is(err, manager.ErrNotConnected) {
			c.say("The device went away; the choice is applied at the next sync.")
			return nil
		}
		return err
	}
	for _, s := range sessions {
		if s.Outcome == manager.OutcomeFailed || s.Outcome == manager.OutcomeStopped {
			return fmt.Errorf("%s: the choice is recorded, but applying it failed: %v; it is applied at the next sync", s.Name, s.Errors)
		}
		c.say("%s", summary(s))
	}
	return nil
}
