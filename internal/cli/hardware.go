package cli

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/folder"
)

// noHardwareEnv, when set, leaves real devices (USB, mounted drives) out: only --emulate devices
// are seen. Scripts and tests that must not depend on what is plugged into the machine set it.
const noHardwareEnv = "CRADLE_NO_HARDWARE"

// mediaRoots are where removable drives are mounted (device/folder's default roots).
var mediaRoots = []string{"/media", "/run/media"}

// hardwareMonitors returns the monitors of real devices, and the presence keys of the devices
// attached now (a one-shot command waits for them).
func hardwareMonitors(ctx context.Context, configDir string, log *slog.Logger) ([]device.Monitor, []string) {
	if os.Getenv(noHardwareEnv) != "" {
		return nil, nil
	}
	monitors := []device.Monitor{folder.NewMonitor(folder.MonitorOptions{Roots: mediaRoots})}
	keys := mountedDrives()
	usbMon, usbKeys := usbMonitor(ctx, configDir, log)
	if usbMon != nil {
		monitors = append(monitors, usbMon)
		keys = append(keys, usbKeys...)
	}
	return monitors, keys
}

// mountedDrives returns the presence keys of the removable drives mounted now, as the folder
// monitor's first scan reports them.
func mountedDrives() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	mounts, err := folder.ReadMounts(f)
	if err != nil {
		return nil
	}
	var keys []string
	for _, mt := range mounts {
		for _, r := range mediaRoots {
			if strings.HasPrefix(mt.Point, r+"/") && len(mt.Point) > len(r)+1 {
				keys = append(keys, folder.Key(mt.Point))
				break
			}
		}
	}
	return keys
}
