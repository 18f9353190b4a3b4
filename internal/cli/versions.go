package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/cradle-sync/cradle/manager"
)

// cmdVersions lists the kept versions of replaced and deleted files.
func cmdVersions(c *invocation, args []string) error {
	fs := c.flags("versions", "[PARTNERSHIP] [PATH] [--json]")
	asJSON := fs.Bool("json", false, "print one JSON document")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 2 {
		return usageError("versions takes a partnership and a path at most")
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	var ref, path string
	switch len(rest) {
	case 2:
		ref, path = rest[0], rest[1]
	case 1:
		// A partnership, or else a path in every partnership.
		if _, err := m.Partnership(rest[0]); err == nil {
			ref = rest[0]
		} else if errors.Is(err, manager.ErrUnknownPartnership) {
			path = rest[0]
		} else {
			return err
		}
	}
	vs, err := m.Versions(c.ctx, ref, filepath.ToSlash(path))
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []manager.Version{}
	}
	if *asJSON {
		return c.writeJSON(vs)
	}
	if len(vs) == 0 {
		c.say("No versions are kept%s.", where(ref, path))
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPARTNERSHIP\tPATH\tKEPT\tSIZE\tWHY")
	for _, v := range vs {
		name := v.Path
		if v.Label != "" {
			name = v.Label + " (" + v.Path + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.PartnershipName, name, v.Time.Local().Format("2006-01-02 15:04"),
			humanBytes(v.Size), versionWhy(v))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c.say("Put one back with 'cradle restore ID' (or 'cradle restore ID --to FILE' for a copy elsewhere).")
	return nil
}

func where(ref, path string) string {
	switch {
	case ref != "" && path != "":
		return " of " + path + " in " + ref
	case ref != "":
		return " in " + ref
	case path != "":
		return " of " + path
	}
	return ""
}

// versionWhy says why a version was kept, and whose it was.
func versionWhy(v manager.Version) string {
	other, mine := "the device", "this computer's"
	if v.Side == "device" {
		other, mine = "this computer", "the device's"
	}
	s := ""
	switch v.Reason {
	case "update":
		s = mine + ", replaced by " + other + "'s newer version"
	case "delete":
		s = mine + ", deleted on " + other
	case "conflict":
		s = mine + ", replaced when the conflict was resolved for " + other
	case "policy":
		s = mine + ", replaced by " + other + "'s by the partnership's rule"
	case "restore":
		s = mine + ", replaced by a restore"
	default:
		s = mine + ", " + v.Reason
	}
	if v.OnDevice {
		s += " (kept on the device)"
	}
	return s
}

// cmdRestore puts a kept version back.
func cmdRestore(c *invocation, args []string) error {
	fs := c.flags("restore", "ID [--to FILE]")
	to := fs.String("to", "", "write the version to `FILE` (which must not exist) instead of its place in the partnership")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError("restore takes one version ID (see 'cradle versions')")
	}
	target := *to
	if target != "" {
		// Relative to where the command runs, whoever carries it out.
		if target, err = filepath.Abs(target); err != nil {
			return err
		}
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	v, file, err := m.Restore(c.ctx, rest[0], target)
	if err != nil {
		return err
	}
	if target == "" {
		c.say("Restored %s (kept %s) to %s; the next sync brings it to the device.", v.Path, v.Time.Local().Format("2006-01-02 15:04"), file)
	} else {
		c.say("Restored %s (kept %s) to %s.", v.Path, v.Time.Local().Format("2006-01-02 15:04"), file)
	}
	return nil
}
