package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/usb"
)

// usbMonitor returns the USB MTP monitor and the presence keys of the USB devices attached now
// (its first scan reports each of them). A computer where USB cannot be used at all (no USB
// bus, as in many containers) gets no monitor.
func usbMonitor(ctx context.Context, configDir string, log *slog.Logger) (device.Monitor, []string) {
	found, err := usb.Scan(ctx)
	if err != nil {
		log.Debug("usb: not watching USB devices", "err", err)
		return nil, nil
	}
	keys := make([]string, 0, len(found))
	for _, f := range found {
		keys = append(keys, f.Key)
	}
	return &usb.Monitor{
		// Uploads cut off by an unplug are removed at the device's next session, even in a later
		// run of Cradle.
		Journal: filepath.Join(configDir, "usb-uploads.journal"),
		Logger:  log,
	}, keys
}
