// Command cradle-provider-calendar is an example Cradle provider plugin that serves both sides of
// its partnerships: a folder of .ics files on the computer (one event each, as vdirsyncer and khal
// keep a calendar), synced with one .ics file on the device holding every event (as a phone's
// calendar app exports and imports it). Each event's properties are change units, so an event
// edited on the phone and another edited on the computer, or two fields of one event, merge.
// docs/providers.md walks through it after the notes example.
//
//	go build -o ~/.config/cradle/plugins/cradle-provider-calendar .
package main

import (
	"context"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/plugin"
	"github.com/cradle-sync/cradle/repl"
)

// DefaultDevicePath is where the calendar file is on the device unless the partnership says.
const DefaultDevicePath = "Calendar/calendar.ics"

func main() {
	plugin.Serve(plugin.Declaration{
		Name:        "calendar",
		Description: "A folder of .ics events with one calendar file on the device",
		Icon:        "calendar",
		Options: []providers.Option{{
			Name:     "desktop",
			Label:    "Calendar folder",
			Help:     "the folder on this computer with one .ics file per event",
			Kind:     providers.KindFolder,
			Required: true,
		}, {
			Name:    plugin.DevicePathOption,
			Label:   "Calendar file on the device",
			Help:    "the .ics file on the device that holds every event, PATH or STORAGE:PATH",
			Kind:    providers.KindDevicePath,
			Default: DefaultDevicePath,
		}},
	}, func(_ context.Context, env plugin.Env) (repl.Store, error) {
		return OpenFolder(env.Options["desktop"])
	}, plugin.DeviceSide(func(_ context.Context, env plugin.Env) (repl.Store, error) {
		return OpenDevice(env.Device, env.Options[plugin.DevicePathOption]), nil
	}))
}
