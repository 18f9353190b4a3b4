// Package cli is the cradle command: the global flags, the command table (commands.go), one
// file per command, and the window's start (window.go). It holds no sync logic: every command
// asks the manager (package manager), and what it prints comes from the manager's answers and
// events. The program's main (main.go at the top of the repository) only calls Run.
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
)

// command is one subcommand: what the usage text says of it, and what runs it.
type command struct {
	summary string
	run     func(c *invocation, args []string) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"devices":   {"list connected devices", cmdDevices},
		"partner":   {"add, list or remove partnerships", cmdPartner},
		"sync":      {"sync partnerships now", cmdSync},
		"conflicts": {"list pending conflicts", cmdConflicts},
		"resolve":   {"resolve a conflict", cmdResolve},
		"versions":  {"list kept versions of replaced and deleted files", cmdVersions},
		"restore":   {"put a kept version back", cmdRestore},
		"status":    {"show partnerships, last sync and errors", cmdStatus},
		"watch":     {"run the service manager without a window", cmdWatch},
	}
}

// commandOrder is the order of the usage text.
var commandOrder = []string{"devices", "partner", "sync", "conflicts", "resolve", "versions", "restore", "status", "watch"}

// Run runs the cradle command with args (without the program name), writing to stdout and
// stderr, and returns its exit status: 0 done, 1 failed, 2 a mistake in the command line.
// Without a command it opens the window and returns when the window is closed.
func Run(args []string, stdout, stderr io.Writer) int {
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
	c := &invocation{ctx: ctx, g: g, name: rest[0], stdout: stdout, stderr: stderr}
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
