package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cradle-sync/cradle/assets"
	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/usb"
	"github.com/cradle-sync/cradle/internal/fsutil"
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
	return newUSBMonitor(configDir, log), keys
}

// newUSBMonitor returns the monitor of USB MTP devices for the config folder configDir.
func newUSBMonitor(configDir string, log *slog.Logger) *usb.Monitor {
	rule, err := writeUdevRule(configDir)
	if err != nil {
		// The permission diagnosis then names the rule's place in Cradle's sources.
		log.Debug("usb: could not write the udev rule into the config folder", "err", err)
	}
	return &usb.Monitor{
		// Uploads cut off by an unplug are removed at the device's next session, even in a later
		// run of Cradle.
		Journal: filepath.Join(configDir, "usb-uploads.journal"),
		// A device this user may not open is diagnosed with a `sudo install` of this file.
		RulePath: rule,
		Logger:   log,
	}
}

// writeUdevRule puts Cradle's udev rule (assets.UdevRule) into the config folder, unless it is
// there already as this version ships it, and returns its path: the message about a device this
// user may not open prints a `sudo install` of that file, which must work as printed.
func writeUdevRule(configDir string) (string, error) {
	p := filepath.Join(configDir, usb.RuleName)
	if b, err := os.ReadFile(p); err == nil && string(b) == assets.UdevRule {
		return p, nil
	}
	if err := os.MkdirAll(configDir, 0o700); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	if err := fsutil.WriteFileAtomic(p, []byte(assets.UdevRule), fsutil.WriteOptions{Perm: 0o644}); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return p, nil
}
