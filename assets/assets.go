// Package assets holds what Cradle ships besides code: the application icon, the udev rule that
// gives the logged-in user access to MTP devices, the .desktop file and the demo content, all
// embedded in the binary.
package assets

import (
	_ "embed"
)

// Icon is the application icon (512x512 PNG), used for the window, the tray and packages.
//
//go:embed icon.png
var Icon []byte

// UdevRule is 69-cradle-mtp.rules: it tags MTP devices with uaccess so the user at the seat may
// open them. Install with `sudo cp ... /etc/udev/rules.d/ && sudo udevadm control --reload`.
//
//go:embed 69-cradle-mtp.rules
var UdevRule string
