package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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
		switch {
		case x.ResolutionError != "" && x.Resolution == "":
			path += " (" + x.ResolutionError + ")"
		case x.Resolution != "":
			path += " (keep " + string(x.Resolution) + " at the next sync)"
		case len(x.Choices) < 3:
			path += " (choices: " + strings.Join(keepNames(x.Choices), ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.ID, x.PartnershipName, path, describeSide(x.Desktop), describeSide(x.Device))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c.say("Resolve one with 'cradle resolve ID --keep desktop|device|both', or all with 'cradle resolve --all --keep ...'.")
	return nil
}

func keepNames(ks []manager.Keep) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
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
	ids := map[string]bool{} // the conflicts given a choice
	var chosen []string      // what was recorded, for the messages
	var refused error
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
			if (*only == "" || x.Partnership == refs[0]) && x.Resolution == "" && slices.Contains(x.Choices, k) {
				touched[x.Partnership] = true
				ids[x.ID] = true
			}
		}
		// Recorded only: applyNow's session applies the choices and is the one reported.
		n, err := m.RecordChoiceAll(c.ctx, k, refs...)
		if err != nil && n == 0 {
			return err
		}
		refused = err
		if n == 0 {
			c.say("No conflicts to resolve.")
			return nil
		}
		chosen = append(chosen, plural(n, "conflict"))
	} else {
		id := rest[0]
		if err := m.RecordChoice(c.ctx, id, k); err != nil {
			return err
		}
		for _, p := range m.Partnerships() {
			if len(id) > len(p.ID) && id[:len(p.ID)+1] == p.ID+"." {
				touched[p.ID] = true
			}
		}
		chosen = append(chosen, id)
		ids[id] = true
	}
	applied, err := applyNow(c, m, touched, ids, k)
	if err != nil {
		return err
	}
	if applied {
		c.say("Resolved %s: keep %s.", chosen[0], k)
	} else {
		c.say("Recorded for %s: keep %s.", chosen[0], k)
	}
	return refused
}

// applyNow runs a session for each touched partnership whose device is connected, so the choice
// k made for the conflicts ids reaches the files now; the others get it at their next sync.
// applied is false when no session ran. A choice that a session could not carry out is an error
// that says why and which choices are left.
func applyNow(c *invocation, m *manager.Manager, touched, ids map[string]bool, k manager.Keep) (applied bool, err error) {
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
		return false, nil
	}
	sessions, err := m.Sync(c.ctx, manager.SyncOptions{Trigger: manager.TriggerResolve}, now...)
	if err != nil {
		if errors.Is(err, manager.ErrNotConnected) {
			c.say("The device went away; the choice is applied at the next sync.")
			return false, nil
		}
		return false, err
	}
	for _, s := range sessions {
		if s.Outcome == manager.OutcomeFailed || s.Outcome == manager.OutcomeStopped {
			return false, fmt.Errorf("%s: the choice is recorded, but applying it failed: %s; it is applied at the next sync", s.Name, strings.Join(s.Errors, "; "))
		}
	}
	// A session that finished may still have left a choice it could not carry out.
	cs, err := m.Conflicts()
	if err != nil {
		return false, err
	}
	var failed []string
	for _, x := range cs {
		if !ids[x.ID] || x.ResolutionError == "" {
			continue
		}
		msg := fmt.Sprintf("conflict %s (%s): %s", x.ID, x.Path, x.ResolutionError)
		if others := otherChoices(x, k); others != "" {
			msg += fmt.Sprintf("; it waits for another choice: cradle resolve %s --keep %s", x.ID, others)
		}
		failed = append(failed, msg)
	}
	for _, s := range sessions {
		if s.Skipped == 0 || len(failed) == 0 {
			c.say("%s", summary(s))
		}
	}
	if len(failed) > 0 {
		return false, errors.New(strings.Join(failed, "\n"))
	}
	return true, nil
}

// otherChoices lists the choices of a conflict other than failed, as resolve takes them
// ("desktop|device").
func otherChoices(x manager.Conflict, failed manager.Keep) string {
	var out []string
	for _, k := range x.Choices {
		if k != failed {
			out = append(out, string(k))
		}
	}
	return strings.Join(out, "|")
}
