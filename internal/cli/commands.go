// Package cli is the cradle command: the global flags, the command table (commands.go), one
// file per command, the window's start (window.go, gui.go), and one Cradle per config folder
// (serve.go: the process that keeps running serves every other command over a socket, running
// the same code). It holds no sync logic: every command asks the manager (package manager), and
// what it prints comes from the manager's answers and events. The program's main (main.go at the
// top of the repository) only calls Run; cradle(1) is written from the command table
// (manpage.go).
//
// The command line is a contract that users and the tests in test/e2e, test/gui and test/torture
// script against: output, JSON shapes and exit codes change only on purpose. docs/design.md
// has the package map.
package cli

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

	"github.com/cradle-sync/cradle/internal/ipc"
)

// command is one subcommand: what the usage text says of it, what runs it, and whether it runs
// in its own process even when a Cradle serves the config folder (local: it does not use the
// manager).
type command struct {
	summary string
	run     func(c *invocation, args []string) error
	local   bool
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"devices":   {summary: "list connected devices", run: cmdDevices},
		"partner":   {summary: "add, list or remove partnerships", run: cmdPartner},
		"sync":      {summary: "sync partnerships now", run: cmdSync},
		"conflicts": {summary: "list pending conflicts", run: cmdConflicts},
		"resolve":   {summary: "resolve a conflict", run: cmdResolve},
		"versions":  {summary: "list kept versions of replaced and deleted files", run: cmdVersions},
		"restore":   {summary: "put a kept version back", run: cmdRestore},
		"status":    {summary: "show partnerships, last sync and errors", run: cmdStatus},
		"watch":     {summary: "run the service manager without a window", run: cmdWatch},
		"autostart": {summary: "start Cradle in the background at login (on), or not (off)", run: cmdAutostart, local: true},
	}
}

// commandOrder is the order of the usage text.
var commandOrder = []string{"devices", "partner", "sync", "conflicts", "resolve", "versions", "restore", "status", "watch", "autostart"}

// Run runs the cradle command with args (without the program name), writing to stdout and
// stderr, and returns its exit status: 0 done, 1 failed, 2 a mistake in the command line.
// Without a command it opens the window and returns when the window is closed.
//
// When a Cradle of this user already serves the config folder (the window, the tray or cradle
// watch), the command runs in that process instead (serve.go): the same code against its
// manager, with this process's arguments, working directory and terminal, its output and exit
// status streamed back here.
func Run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, localEnviron(stdout, stderr), args)
}

// run runs one command line in e: in this process, or, when e is this process and a Cradle
// serves the folder, in that one.
func run(ctx context.Context, e *environ, args []string) int {
	g := &globals{}
	fs := newTopFlags(g, e.stderr)
	fs.Usage = func() { usage(e.stderr, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if g.version {
		fmt.Fprintln(e.stdout, versionLine())
		return 0
	}
	rest := fs.Args()
	var cmd command
	if len(rest) > 0 {
		var ok bool
		if cmd, ok = commands[rest[0]]; !ok {
			fmt.Fprintf(e.stderr, "cradle: unknown command %q; run 'cradle -h' for the list\n", rest[0])
			return 2
		}
		if g.background {
			fmt.Fprintln(e.stderr, "cradle: --background starts Cradle without its window; it does not combine with a command")
			return 2
		}
	}
	c := &invocation{ctx: ctx, g: g, stdout: e.stdout, stderr: e.stderr, env: e, args: args, kind: ipc.KindRun}
	if len(rest) == 0 {
		c.kind = ipc.KindWindow
		if g.background {
			c.kind = ipc.KindBackground
		}
	}
	if e.host == nil && !g.demo && !cmd.local {
		if code, served := c.serveElsewhere(); served {
			return code
		}
	}
	if len(rest) == 0 {
		if e.host != nil {
			if err := e.host.covers(c); err != nil {
				fmt.Fprintf(e.stderr, "cradle: %s\n", oneLine(err))
				return 1
			}
			return e.host.showWindow(c, !g.background)
		}
		if g.background {
			return runBackground(c)
		}
		return openWindow(c)
	}
	c.name = rest[0]
	if err := cmd.run(c, rest[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if code, ok := statusOf(err); ok {
			return code // served by another Cradle, which said what it had to
		}
		fmt.Fprintf(e.stderr, "cradle %s: %s\n", rest[0], oneLine(err))
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
	fmt.Fprintln(w, "Usage: cradle [--config DIR] [--emulate DIR]... [--emulate-profile PROFILE] [--emulate-tz ZONE] [--demo] [--background] [command] [args]")
	fmt.Fprintln(w, "\nWithout a command, cradle opens its window (or shows the one already open). Commands:")
	for _, name := range commandOrder {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nWhile a Cradle runs (window, tray or watch), every command is served by it.")
	fmt.Fprintln(w, "Run 'cradle COMMAND -h' for a command's flags. Global flags:")
	fs.PrintDefaults()
}

// newTopFlags is the flag set of the command line before the command.
func newTopFlags(g *globals, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cradle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	g.register(fs)
	fs.BoolVar(&g.version, "version", false, "print the version and the commit it was built from")
	fs.BoolVar(&g.background, "background", false, "start without opening the window: the tray icon when the desktop has a tray (how Cradle starts at login)")
	return fs
}
