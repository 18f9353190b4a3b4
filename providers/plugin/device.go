package plugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/repl"
)

// The device side of a plugin partnership is, by default, a folder on the device as the files
// provider syncs it: an fsstore.DeviceStore at the device-path option. Its state (the
// journal of unfinished device writes) lives in <state>/device; the plugin gets <state>/plugin.

const (
	deviceStateDir    = "device"
	pluginStateDir    = "plugin"
	deviceReadyMarker = "device-ready"
)

// filesDeviceStore opens the default device side. replicated is the plugin store's filter: an
// item on the device takes part only if the plugin would take it too (a notes plugin's device
// folder may hold pictures that its desktop side would refuse).
func filesDeviceStore(ctx context.Context, env providers.Env, replicated func(repl.Entry) bool, log *slog.Logger) (repl.Store, error) {
	storage, base, err := providers.ParseDevicePath(ctx, env.Device, env.Options[DevicePathOption])
	if err != nil {
		return nil, err
	}
	stateDir := ""
	if env.StateDir != "" {
		stateDir = filepath.Join(env.StateDir, deviceStateDir)
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return nil, fmt.Errorf("create the device state folder: %w", err)
		}
	}
	// The first time, a missing device folder is created; afterwards it missing means a card
	// not inserted, not everything deleted.
	marker := filepath.Join(stateDir, deviceReadyMarker)
	first := true
	if stateDir != "" {
		if _, err := os.Stat(marker); err == nil {
			first = false
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("device state folder: %w", err)
		}
	}
	dev, err := fsstore.NewDeviceStore(ctx, env.Device, storage, base, fsstore.DeviceOptions{
		StateDir:   stateDir,
		CreateBase: first,
		Logf:       func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return nil, err
	}
	if first && base != "" {
		if _, err := env.Device.Mkdir(ctx, storage, base); err != nil {
			_ = dev.Close()
			return nil, fmt.Errorf("create the device folder %q: %w", base, err)
		}
	}
	if first && stateDir != "" {
		if err := os.WriteFile(marker, []byte("this partnership's device folder has been opened once\n"), 0o600); err != nil {
			_ = dev.Close()
			return nil, fmt.Errorf("device state folder: %w", err)
		}
	}
	return &filteredDevice{DeviceStore: dev, replicated: replicated}, nil
}

// filteredDevice is an fsstore.DeviceStore (with all its abilities) whose
// IsItemReplicated also asks the plugin.
type filteredDevice struct {
	*fsstore.DeviceStore
	replicated func(repl.Entry) bool
}

func (f *filteredDevice) IsItemReplicated(e repl.Entry) bool {
	return f.DeviceStore.IsItemReplicated(e) && f.replicated(e)
}
