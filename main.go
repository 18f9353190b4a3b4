// Command cradle is a desktop sync manager for handheld devices: it recognises a phone, camera,
// e-reader or media player over USB (MTP), syncs the partnerships the user set up, and shows
// status, progress and conflicts in a window. Run without a subcommand it opens the window; the
// subcommands (devices, partner, sync, conflicts, resolve, status, watch, autostart) run
// headless, in the Cradle already running when there is one.
//
// The commands live in internal/cli; this file stays at the top of the repository, beside
// FyneApp.toml, for `fyne package`. docs/design.md is the map of the rest.
package main

import (
	_ "embed"
	"os"

	"github.com/BurntSushi/toml"

	"github.com/cradle-sync/cradle/internal/cli"
	"github.com/cradle-sync/cradle/ui/locale"
)

// fyneApp is FyneApp.toml: the version `cradle --version` prints is the one packages carry.
//
//go:embed FyneApp.toml
var fyneApp string

// commit is set by builds that carry no VCS stamp: -ldflags "-X main.commit=...".
var commit string

func main() {
	locale.Restore()
	var meta struct{ Details struct{ Version string } }
	if _, err := toml.Decode(fyneApp, &meta); err == nil && meta.Details.Version != "" {
		cli.Version = meta.Details.Version
	}
	cli.Commit = commit
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
