// Command cradle is a desktop sync manager for handheld devices: it recognises a phone, camera,
// e-reader or media player over USB (MTP), syncs the partnerships the user set up, and shows
// status, progress and conflicts in a window. Run without a subcommand it opens the window; the
// subcommands (devices, partner, sync, conflicts, resolve, status, watch) run headless.
//
// The commands live in internal/cli; this file stays at the top of the repository, beside
// FyneApp.toml, for `fyne package`. docs/design.md is the map of the rest.
package main

import (
	"os"

	"github.com/cradle-sync/cradle/internal/cli"
	"github.com/cradle-sync/cradle/ui/locale"
)

func main() {
	locale.Restore()
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
