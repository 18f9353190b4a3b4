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
	"github.com/cradle-sync/cradle/manager"
	"github.com/cradle-sync/cradle/manager/locale"
	"github.com/cradle-sync/cradle/ui"
)

// appID matches FyneApp.toml.
const appID = "io.github.cradle_sync.cradle"

// command is one subcommand of the contract in DESIGN.md.
type command struct {
	summary string
	run     func(c *cli, args []string) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"devices":   {"list connected devices", cmdDevices},
		"partner":   {"add, list or remove partnerships", cmdPartner},
		"sync":      {"sync partnerships now", cmdSync},
		"conflicts": {"list pending conflicts", cmdConflicts},
		"resolve":   {"resolve a conflict", cmdResolve},
		"status":    {"show partnerships, last sync and errors", cmdStatus},
		"watch":     {"run the service manager without a window", cmdWatch},
	}
}

// commandOrder is the order of the usage text.
var commandOrder = []string{"devices", "partner", "sync", "conflicts", "resolve", "status", "watch"}

func main() {
	locale.Restore()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{}
	fs := flag.NewFlagSet("cradle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	g.register(fs)
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
		return openWindow(ctx, g, stderr)
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "cradle: unknown command %q; run 'cradle -h' for the list\n", rest[0])
		return 2
	}
	c := &cli{ctx: ctx, g: g, name: rest[0], stdout: stdout, stderr: stderr}
	if err := cmd.run(c, rest[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "cradle %s: %s\n", rest[0], oneLine(err))
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: cradle [--config DIR] [--emulate DIR]... [--emulate-profile PROFILE] [--emulate-tz ZONE] [--demo] [command] [args]")
	fmt.Fprintln(w, "\nWithout a command, cradle opens its window. Commands:")
	for _, name := range commandOrder {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'cradle COMMAND -h' for a command's flags. Global flags:")
	fs.PrintDefaults()
}

// newWindow creates the window. Without a display to open it on, GLFW panics (after logging
// "X11: Failed to open display"): that becomes an error a user can act on.
func newWindow(a fyne.App, m *manager.Manager, opts ui.Options) (w *ui.Window, err error) {
	defer func() {
		if r := recover(); r != nil {
			where := "DISPLAY is not set"
			if d := os.Getenv("DISPLAY"); d != "" {
				where = fmt.Sprintf("DISPLAY is %q", d)
			}
			err = fmt.Errorf("the window cannot open: no display to show it on (%s; %v). Run cradle in a desktop session, or over ssh with -X; the commands need no window (cradle -h lists them)", where, r)
		}
	}()
	return ui.New(a, m, opts), nil
}

// openWindow runs the Fyne application until the window is closed, with the service manager
// running behind it.
func openWindow(ctx context.Context, g *globals, stderr io.Writer) int {
	c := &cli{ctx: ctx, g: g, name: "window", stderr: stderr, stdout: io.Discard}
	m, cleanup, err := c.startWindowManager()
	if err != nil {
		fmt.Fprintf(stderr, "cradle: %s\n", oneLine(err))
		return 1
	}
	defer cleanup()
	a := app.NewWithID(appID)
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	// The tray and notifications need a session bus: without one, quitting panics in fyne's
	// systray and every notification logs an error.
	bus := os.Getenv("DBUS_SESSION_BUS_ADDRESS") != ""
	w, err := newWindow(a, m, ui.Options{Tray: bus, Notifications: bus})
	if err != nil {
		fmt.Fprintf(stderr, "cradle: %s\n", oneLine(err))
		return 1
	}
	defer w.Close()
	stop := context.AfterFunc(ctx, func() { fyne.Do(a.Quit) }) // Ctrl-C, SIGTERM
	defer stop()
	w.ShowAndRun()
	return 0
}
