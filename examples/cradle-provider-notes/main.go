// Command cradle-provider-notes is an example Cradle provider plugin: Markdown notes (*.md) in a
// desktop folder, synced with a notes folder on the device. docs/providers.md builds it step by
// step.
//
// Build it into Cradle's plugins folder and Cradle offers a "notes" provider:
//
//	go build -o ~/.config/cradle/plugins/cradle-provider-notes .
package main

import (
	"context"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin"
	"github.com/cradle-sync/cradle/repl"
)

func main() {
	plugin.Serve(plugin.Declaration{
		Name:        "notes",
		Description: "Markdown notes in a folder, synced with a notes folder on the device",
		Icon:        "document",
		Options: []providers.Option{{
			Name:     "desktop",
			Label:    "Notes folder",
			Help:     "the folder on this computer that holds your notes",
			Kind:     providers.KindFolder,
			Required: true,
		}, {
			Name:     "patterns",
			Label:    "Note files",
			Help:     "which files are notes, as comma-separated patterns",
			Kind:     providers.KindPatterns,
			Default:  "*.md",
			Advanced: true,
		}},
	}, func(ctx context.Context, env plugin.Env) (repl.Store, error) {
		return OpenNotes(env.Options["desktop"], env.Options["patterns"])
	})
}
