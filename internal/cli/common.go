package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/internal/ipc"
	"github.com/cradle-sync/cradle/manager"
	_ "github.com/cradle-sync/cradle/providers/all"
)

// errUsage marks errors that are the user's command line, not the program.
var errUsage = errors.New("usage")

// usageError is a command-line mistake: exit status 2.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// globals are the flags every command accepts, before or after the subcommand, and the two
// that come before it only (version, background).
type globals struct {
	config      string
	emulate     []string
	emulateList string
	// emulateProfile and emulateTZ shape every emulated device: its device family and its own
	// time zone.
	emulateProfile string
	emulateTZ      string
	demo           bool
	version        bool
	background     bool
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (g *globals) register(fs *flag.FlagSet) {
	// Defaults are the values already parsed: a command's flag set registers these again, so
	// that they may also come after the subcommand.
	fs.StringVar(&g.config, "config", g.config, "directory for state and settings (default: the user's config dir)")
	fs.Var((*stringList)(&g.emulate), "emulate", "attach an emulated MTP device backed by `DIR` (repeatable)")
	fs.StringVar(&g.emulateList, "emulate-list", g.emulateList, "attach the emulated devices whose folders `FILE` lists, one a line, following its changes (for scripts and tests)")
	fs.StringVar(&g.emulateProfile, "emulate-profile", g.emulateProfile, "the behaviour of every emulated device: `PROFILE` "+
		strings.Join(emulator.Profiles, ", ")+" (default generic)")
	fs.StringVar(&g.emulateTZ, "emulate-tz", g.emulateTZ, "the emulated devices' own time `ZONE` (\"Asia/Tokyo\", \"UTC\"; default the computer's)")
	fs.BoolVar(&g.demo, "demo", g.demo, "open the window with an emulated device and sample content")
}

// emulatorOptions returns the options of the emulated devices: --emulate-profile and
// --emulate-tz.
func (g *globals) emulatorOptions() (emulator.Options, error) {
	var zone *time.Location
	if g.emulateTZ != "" {
		z, err := time.LoadLocation(g.emulateTZ)
		if err != nil {
			return emulator.Options{}, usageError("--emulate-tz %s: %v", g.emulateTZ, err)
		}
		zone = z
	}
	opts, err := emulator.Profile(g.emulateProfile, zone)
	if err != nil {
		return emulator.Options{}, usageError("--emulate-profile: %v", err)
	}
	return opts, nil
}

// invocation is one run of a command: its context, the global flags, its name, its output and
// where it runs (env).
type invocation struct {
	ctx    context.Context
	g      *globals
	name   string
	stdout io.Writer
	stderr io.Writer
	env    *environ
	// args are the whole command line and kind what it asks for, for handing it to the Cradle
	// that serves the folder.
	args []string
	kind ipc.Kind
}

// abs makes a path the user typed absolute, against the user's working directory: a command
// may run in the Cradle that serves it, whose working directory is not the user's. Commands
// resolve paths with it, never with filepath.Abs. "~/" is left for the manager to expand.
func (c *invocation) abs(p string) string {
	if p == "" || filepath.IsAbs(p) || p == "~" || strings.HasPrefix(p, "~/") {
		return p
	}
	return filepath.Join(c.env.dir, p)
}

// flags returns the command's flag set, with the global flags on it too.
func (c *invocation) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("cradle "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	c.g.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: cradle %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a command's flags; flags and arguments may be mixed ("sync 1 --json").
func (c *invocation) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if c.g.demo {
		return nil, usageError("--demo opens the window with sample content; it does not combine with a command")
	}
	return pos, nil
}

// configDir returns the config folder: --config, or the user's config dir; absolute, with
// symbolic links resolved when it exists (it names the folder's socket).
func (c *invocation) configDir() (string, error) {
	if c.env.host != nil {
		return c.env.host.dir, nil
	}
	return configDirOf(c.g.config, c.env)
}

func configDirOf(flagValue string, e *environ) (string, error) {
	dir := flagValue
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("no config folder: %w; give one with --config DIR", err)
		}
		dir = filepath.Join(base, "cradle")
	} else if !filepath.IsAbs(dir) {
		dir = filepath.Join(e.dir, dir)
	}
	return resolveLinks(filepath.Clean(dir)), nil
}

// resolveLinks resolves the symbolic links of the longest part of path that exists: a folder
// not created yet must name the same socket before and after it is.
func resolveLinks(path string) string {
	rest := ""
	for p := path; ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest)
		}
		if p == filepath.Dir(p) {
			return path
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// emulated returns the --emulate folders, checked and made absolute.
func (c *invocation) emulated() ([]string, error) {
	var out []string
	for _, d := range c.g.emulate {
		abs := filepath.Clean(c.abs(d))
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("--emulate %s: the folder does not exist or cannot be read (%v)", d, unwrapPath(err))
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("--emulate %s: not a folder", d)
		}
		out = append(out, abs)
	}
	return out, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// logger writes the manager's warnings to stderr, one line each.
func (c *invocation) logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
}

// deviceWait bounds how long a command waits for the devices attached at start.
const deviceWait = 20 * time.Second

// open starts a manager for a one-shot command (service: false) or for watch and the window
// (service: true), and waits until the devices attached at start are known; release closes it.
// A command served by the running Cradle gets that Cradle's manager, which release leaves
// running.
func (c *invocation) open(service bool) (m *manager.Manager, release func(), err error) {
	if c.env.noManager {
		return nil, nil, errNoManager
	}
	if h := c.env.host; h != nil {
		if err := h.covers(c); err != nil {
			return nil, nil, err
		}
		return h.m, func() {}, nil
	}
	m, _, err = c.openSubscribed(service, 0)
	if err != nil {
		return nil, nil, err
	}
	return m, func() { m.Close() }, nil
}

// openSubscribed is open with a subscription to the events in mask (none when mask is 0) made
// before any device attaches, so that the events of the devices attached at start (their
// connection, the session on plug-in) are not missed however quickly they come.
func (c *invocation) openSubscribed(service bool, mask manager.EventType) (*manager.Manager, *manager.Subscription, error) {
	dir, err := c.configDir()
	if err != nil {
		return nil, nil, err
	}
	level := slog.LevelWarn
	if service {
		level = slog.LevelInfo
	}
	log := c.logger(level)
	monitors, keys, err := c.monitors(dir, log)
	if err != nil {
		return nil, nil, err
	}
	// The monitors wait behind a gate until the subscription exists.
	gate := make(chan struct{})
	for i, mon := range monitors {
		monitors[i] = gatedMonitor{Monitor: mon, gate: gate}
	}
	m, err := manager.New(c.ctx, manager.Config{Dir: dir, Monitors: monitors, Service: service, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	var sub *manager.Subscription
	if mask != 0 {
		sub = m.Subscribe(mask)
	}
	close(gate)
	ctx, cancel := context.WithTimeout(c.ctx, deviceWait)
	defer cancel()
	if err := m.WaitDevices(ctx, keys...); err != nil {
		if sub != nil {
			sub.Close()
		}
		m.Close()
		return nil, nil, fmt.Errorf("waiting for the devices: %w", err)
	}
	return m, sub, nil
}

// gatedMonitor is a device monitor that starts once its gate is closed.
type gatedMonitor struct {
	device.Monitor
	gate <-chan struct{}
}

// Run waits for the gate, then runs the monitor.
func (g gatedMonitor) Run(ctx context.Context, report func(device.Presence)) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil
	}
	return g.Monitor.Run(ctx, report)
}

// monitors returns the device monitors of this run and the presence keys to wait for.
func (c *invocation) monitors(configDir string, log *slog.Logger) ([]device.Monitor, []string, error) {
	dirs, err := c.emulated()
	if err != nil {
		return nil, nil, err
	}
	var (
		monitors []device.Monitor
		keys     []string
	)
	if len(dirs) > 0 || c.g.emulateList != "" {
		opts, err := c.g.emulatorOptions()
		if err != nil {
			return nil, nil, err
		}
		em := emulator.NewMonitor(opts, dirs...)
		if c.g.emulateList != "" {
			em.UseControlFile(filepath.Clean(c.abs(c.g.emulateList)))
		}
		monitors = append(monitors, em)
		for _, d := range dirs {
			keys = append(keys, emulator.Key(d))
		}
	}
	hw, hwKeys := hardwareMonitors(c.ctx, configDir, log)
	monitors = append(monitors, hw...)
	keys = append(keys, hwKeys...)
	return monitors, keys, nil
}

// writeJSON prints v as the one JSON document of a --json command.
func (c *invocation) writeJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// say prints a human message on stderr.
func (c *invocation) say(format string, args ...any) {
	fmt.Fprintf(c.stderr, format+"\n", args...)
}

// humanBytes formats a size: "812 B", "3.4 MB", "1.2 GB".
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// ago formats a past time for people: "just now", "5 minutes ago", "2026-11-20 14:03".
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return t.Local().Format("2006-01-02 15:04")
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
