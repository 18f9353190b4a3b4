package providers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/repl"
)

// The device-path syntax: where on the device a partnership's data lives. Every provider that
// has a place on the device takes it in an option named OptDevicePath (of kind KindDevicePath),
// and the manager reads the same option to know which storage holds the partnership's metadata.

// OptDevicePath is the name of the option that says where on the device a partnership lives:
// "PATH" on the device's first storage, or "STORAGE:PATH" (see ParseDevicePath).
const OptDevicePath = "device-path"

// ParseDevicePath reads a device-path option: "PATH" (on the device's first storage) or
// "STORAGE:PATH", where STORAGE is a storage ID (decimal or 0x hex) or a storage's description
// ("SD card", compared without case). A prefix before ':' that names no storage is part of the
// path. The path is checked with device.CheckPath.
func ParseDevicePath(ctx context.Context, dev device.Device, spec string) (device.StorageID, string, error) {
	storages, err := dev.Storages(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("device path %q: %w", spec, MapDeviceError(err))
	}
	if len(storages) == 0 {
		return 0, "", fmt.Errorf("device path %q: the device shows no storage (unlock it and choose "+
			"File transfer): %w", spec, repl.ErrGone)
	}
	id, p := storages[0].ID, spec
	if prefix, rest, ok := strings.Cut(spec, ":"); ok {
		if sid, found := findStorage(storages, prefix); found {
			id, p = sid, rest
		}
	}
	clean, err := device.CheckPath(p)
	if err != nil {
		return 0, "", fmt.Errorf("device path %q: %w", spec, errors.Join(err, repl.ErrInvalidName))
	}
	return id, clean, nil
}

func findStorage(storages []device.Storage, s string) (device.StorageID, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 0, 32); err == nil {
		for _, st := range storages {
			if st.ID == device.StorageID(n) {
				return st.ID, true
			}
		}
	}
	for _, st := range storages {
		if st.Description != "" && strings.EqualFold(st.Description, s) {
			return st.ID, true
		}
	}
	return 0, false
}
