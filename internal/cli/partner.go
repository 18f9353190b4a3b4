package cli

import (
	"flag"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/providers"
)

// cmdPartner is "partner add|list|remove".
func cmdPartner(c *invocation, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		c.say("Usage: cradle partner add|list|remove ...\n\n" +
			"  add     --name N --provider P --device SERIAL [--desktop PATH] [--device-path PATH]\n" +
			"          [--direction two-way|to-device|to-desktop] [--on-conflict ask|desktop|device|newest|keep-both]\n" +
			"          [--interval 30m] [--set KEY=VALUE]... and the provider's own options\n" +
			"          (see 'cradle partner add --provider P -h')\n" +
			"  list    [--json]\n" +
			"  remove  ID|NAME")
		if len(args) == 0 {
			return usageError("partner needs add, list or remove")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "add":
		return partnerAdd(c, args[1:])
	case "list", "ls":
		return partnerList(c, args[1:])
	case "remove", "rm":
		return partnerRemove(c, args[1:])
	}
	return usageError("unknown partner command %q; use add, list or remove", args[0])
}

// optionFlag is a provider option given on the command line.
type optionFlag struct {
	name   string
	values map[string]string
	bool   bool
}

func (f *optionFlag) String() string { return "" }
func (f *optionFlag) Set(v string) error {
	f.values[f.name] = v
	return nil
}
func (f *optionFlag) IsBoolFlag() bool { return f.bool }

// keyValues is --set KEY=VALUE, repeatable.
type keyValues map[string]string

func (kv keyValues) String() string { return "" }
func (kv keyValues) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	kv[strings.TrimSpace(k)] = val
	return nil
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}

// providerArg finds --provider's value before the flags are parsed (the provider's options
// become flags).
func providerArg(args []string) string {
	for i, a := range args {
		for _, p := range []string{"--provider", "-provider"} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

func partnerAdd(c *invocation, args []string) error {
	// The manager loads provider plugins, whose options become flags too. Help works without it.
	m, release, err := c.openForParse(args)
	if err != nil && !wantsHelp(args) {
		return err
	}
	if m != nil {
		defer release()
	}
	fs := c.flags("partner add", "--name N --provider P --device SERIAL [options]")
	var (
		p      manager.Partnership
		dir    string
		onConf string
		ival   string
	)
	values := map[string]string{}
	set := keyValues{}
	fs.StringVar(&p.Name, "name", "", "the partnership's name (required)")
	fs.StringVar(&p.Provider, "provider", "", "what to sync: "+strings.Join(providers.Names(), ", ")+" (required)")
	fs.StringVar(&p.Device, "device", "", "the device's serial (see 'cradle devices'); may be left out when one device is connected")
	fs.StringVar(&dir, "direction", "", "two-way, to-device or to-desktop (default two-way, or the provider's only direction)")
	fs.StringVar(&onConf, "on-conflict", "ask", "ask, desktop, device, newest or keep-both")
	fs.StringVar(&ival, "interval", "", "sync this often while connected (\"30m\", \"2h\", \"never\"; default: the global setting)")
	fs.Var(set, "set", "a provider option as `KEY=VALUE` (repeatable)")
	declared := map[string]bool{}
	addOption := func(o providers.Option) {
		if declared[o.Name] || fs.Lookup(o.Name) != nil {
			return
		}
		declared[o.Name] = true
		help := o.Help
		if o.Default != "" {
			help += " (default " + strconv.Quote(o.Default) + ")"
		}
		fs.Var(&optionFlag{name: o.Name, values: values, bool: o.Kind == providers.KindBool}, o.Name, help)
	}
	// --desktop and --device-path are always accepted (the contract's flags); the provider's
	// declaration gives their help when it has them.
	name := providerArg(args)
	if name != "" {
		prov, err := providers.Lookup(name)
		if err != nil {
			return err
		}
		for _, o := range prov.Options {
			addOption(o)
		}
	}
	addOption(providers.Option{Name: "desktop", Help: "the folder on this computer"})
	addOption(providers.Option{Name: "device-path", Help: `the folder on the device, "PATH" or "STORAGE:PATH"`})
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q; partner add takes flags only", rest[0])
	}
	if p.Provider == "" {
		return usageError("--provider is required; the providers are: %s", strings.Join(providers.Names(), ", "))
	}
	if p.Name == "" {
		return usageError("--name is required")
	}
	if p.Device == "" {
		var connected []manager.DeviceInfo
		for _, d := range m.Devices() {
			if d.Connected() {
				connected = append(connected, d)
			}
		}
		switch len(connected) {
		case 0:
			return fmt.Errorf("no device is connected; plug it in, unlock it and choose \"File transfer\", or give --device SERIAL")
		case 1:
			p.Device = connected[0].Serial
		default:
			return usageError("%d devices are connected; choose one with --device SERIAL (see 'cradle devices')", len(connected))
		}
	}
	p.Options = map[string]string{}
	for k, v := range set {
		p.Options[k] = v
	}
	for k, v := range values {
		p.Options[k] = v
	}
	// Folders are the user's, relative to the user's working directory (the command may run in
	// the Cradle that serves it, whose directory is another).
	if prov, err := providers.Lookup(p.Provider); err == nil {
		for _, o := range prov.Options {
			if v := p.Options[o.Name]; o.Kind == providers.KindFolder && v != "" {
				p.Options[o.Name] = c.abs(v)
			}
		}
	}
	p.Direction = manager.Direction(dir)
	p.OnConflict = manager.ConflictPolicy(onConf)
	if ival != "" {
		d, err := parseInterval(ival)
		if err != nil {
			return usageError("--interval: %v", err)
		}
		p.Interval = d
	}
	q, err := m.AddPartnership(c.ctx, p)
	if err != nil {
		return err
	}
	c.say("Added partnership %s (%s): %s with %s, %s, conflicts: %s.", q.ID, q.Name, q.Provider, q.Device, q.Direction, q.OnConflict)
	return nil
}

// parseInterval reads "30m", "2h" or "never" (a negative duration: never on a schedule).
func parseInterval(s string) (time.Duration, error) {
	if s == "never" || s == "off" {
		return -1, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute {
		return 0, fmt.Errorf("%q is not a duration of a minute or more such as \"30m\" or \"2h\", or \"never\"", s)
	}
	return d, nil
}

// openForParse opens the manager before partner add parses its flags (plugins declare options
// too), with the global flags that may come after the subcommand taken into account.
func (c *invocation) openForParse(args []string) (*manager.Manager, func(), error) {
	g := globalsIn(*c.g, args)
	saved := *c.g
	*c.g = g
	m, release, err := c.open(false)
	*c.g = saved
	return m, release, err
}

// globalsIn returns g with the global flags found in args added: they may come after the
// subcommand, where the first parse does not see them. Everything else in args is left for the
// command's own parse.
func globalsIn(g globals, args []string) globals {
	pre := flag.NewFlagSet("", flag.ContinueOnError)
	pre.SetOutput(discard{})
	g.emulate = slices.Clone(g.emulate)
	g.register(pre)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, name := range []string{"config", "emulate", "emulate-list", "emulate-profile", "emulate-tz"} {
			for _, p := range []string{"-" + name, "--" + name} {
				if a == p && i+1 < len(args) {
					pre.Set(name, args[i+1])
				} else if v, ok := strings.CutPrefix(a, p+"="); ok {
					pre.Set(name, v)
				}
			}
		}
	}
	return g
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func partnerList(c *invocation, args []string) error {
	fs := c.flags("partner list", "[--json]")
	asJSON := fs.Bool("json", false, "print one JSON document")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("partner list takes no arguments")
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	ps := m.Partnerships()
	if *asJSON {
		return c.writeJSON(ps)
	}
	if len(ps) == 0 {
		c.say("No partnerships yet; add one with 'cradle partner add'.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPROVIDER\tDEVICE\tDIRECTION\tON CONFLICT\tOPTIONS")
	for _, p := range ps {
		keys := make([]string, 0, len(p.Options))
		for k := range p.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var opts []string
		for _, k := range keys {
			opts = append(opts, k+"="+p.Options[k])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Provider, p.Device, p.Direction, p.OnConflict, strings.Join(opts, " "))
	}
	return tw.Flush()
}

func partnerRemove(c *invocation, args []string) error {
	fs := c.flags("partner remove", "ID|NAME")
	rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError("partner remove takes one partnership ID or name")
	}
	m, release, err := c.open(false)
	if err != nil {
		return err
	}
	defer release()
	p, err := m.Partnership(rest[0])
	if err != nil {
		return err
	}
	if err := m.RemovePartnership(c.ctx, p.ID); err != nil {
		return err
	}
	c.say("Removed partnership %s (%s); the files on both sides are untouched.", p.ID, p.Name)
	return nil
}
