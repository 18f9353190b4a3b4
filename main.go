// Command cradle is a desktop sync manager for handheld devices: it recognises a phone, camera,
// e-reader or media player over USB (MTP), syncs the partnerships the user set up, and shows
// status, progress and conflicts in a window. Run without a subcommand it opens the window; the
// subcommands (devices, partner, sync, conflicts, resolve, status, watch) run headless.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/cradle-sync/cradle/assets"
	"github.com/cradle-sync/cradle/ui"
)

// appID matches FyneApp.toml.
const appID = "io.github.cradle_sync.cradle"

// globals are the flags that come before a subcommand.
type globals struct {
	config  string
	emulate []string
	demo    bool
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// command is one subcommand of the contract in DESIGN.md.
type command struct {
	summary string
	run     func(ctx context.Context, g globals, args []string) error
}

var commands = map[string]command{
	"devices":   {"list connected devices", notYet("devices")},
	"partner":   {"add, list or remove partnerships", notYet("partner")},
	"sync":      {"sync partnerships now", notYet("sync")},
	"conflicts": {"list pending conflicts", notYet("conflicts")},
	"resolve":   {"resolve a conflict", notYet("resolve")},
	"status":    {"show partnerships, last sync and errors", notYet("status")},
	"watch":     {"run the service manager without a window", notYet("watch")},
}

// errUsage marks errors that are the user's command line, not the program.
var errUsage = errors.New("usage")

func notYet(name string) func(context.Context, globals, []string) error {
	return func(context.Context, globals, []string) error {
		return fmt.Errorf("cradle %s is not available in this build yet", name)
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	var g globals
	fs := flag.NewFlagSet("cradle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&g.config, "config", "", "directory for state and settings (default: the user's config dir)")
	fs.Var((*stringList)(&g.emulate), "emulate", "attach an emulated MTP device backed by `DIR` (repeatable)")
	fs.BoolVar(&g.demo, "demo", false, "open the window with an emulated device and sample content")
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rest := fs.Args()
	if len(rest) == 0 {
		return openWindow(g)
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "cradle: unknown command %q; run 'cradle -h' for the list\n", rest[0])
		return 2
	}
	if err := cmd.run(ctx, g, rest[1:]); err != nil {
		fmt.Fprintf(stderr, "cradle %s: %v\n", rest[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: cradle [--config DIR] [--emulate DIR]... [--demo] [command] [args]")
	fmt.Fprintln(w, "\nWithout a command, cradle opens its window. Commands:")
	for _, name := range []string{"devices", "partner", "sync", "conflicts", "resolve", "status", "watch"} {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.PrintDefaults()
}

// openWindow runs the Fyne application until the window is closed.
func openWindow(g globals) int {
	a := app.NewWithID(appID)
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	w := ui.NewWindow(a)
	w.ShowAndRun()
	return 0
}
