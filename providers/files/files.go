// Package files is Cradle's "files" provider: a desktop folder partnered with a folder on the
// device, synced two-way, to the device or to the desktop.
//
// The provider is the declaration of its options and Open, which puts two stores of
// providers/fsstore side by side: an fsstore.DesktopStore (a folder on disk, watched with
// fsnotify) and an fsstore.DeviceStore (a folder on any device.Device: MTP, the emulator, a
// mounted drive). Both skip the same things: Cradle's temporary files and its .cradle metadata
// folder, editors' and operating systems' litter (fsstore.BuiltinIgnored) and the user's ignore
// patterns (fsstore.Ignorer).
//
// The option ignore-device-deletes makes the device a cache: deleting files on the phone to free
// space does not delete them on the computer. It is implemented in the device store, with no help
// from the engine: the store remembers every item it has seen (an fsstore.SeenSet in the
// partnership's state folder) and keeps reporting an item deleted on the device, with its last
// stamp, so the engine never sees the deletion. Such a kept item is not copied back to the device
// either; it is written again only when it changes on the computer, and forgotten when it is
// deleted there.
//
// Where this provider sits among the others, and how a sync runs, is in docs/design.md.
package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/providers/versions"
)

// Option names of the files provider.
const (
	OptDesktop             = "desktop"
	OptDevicePath          = providers.OptDevicePath
	OptIgnore              = "ignore"
	OptIgnoreDeviceDeletes = "ignore-device-deletes"
)

// Provider is the declaration of the files provider, registered from init().
var Provider = providers.Provider{
	Name:        "files",
	Description: "Keep a folder on this computer and a folder on the device in step.",
	Icon:        "folder",
	Options: []providers.Option{
		{Name: OptDesktop, Label: "Desktop folder", Kind: providers.KindFolder, Required: true,
			Help: "the folder on this computer"},
		{Name: OptDevicePath, Label: "Device folder", Kind: providers.KindDevicePath, Required: true,
			Help: `the folder on the device, "Documents" or "STORAGE:Documents" for another storage`},
		{Name: OptIgnore, Label: "Ignore", Kind: providers.KindPatterns, Advanced: true,
			Help: `comma-separated patterns of names not to sync, such as "*.log, build/, cache/*.tmp"`},
		{Name: OptIgnoreDeviceDeletes, Label: "Keep files deleted on the device", Kind: providers.KindBool,
			Default: "false", Advanced: true,
			Help: "the device is a cache: deleting files on it to free space does not delete them on this computer"},
	},
	Open: open,
}

func init() { providers.Register(Provider) }

// Marker files in the partnership's state folder: once a side has been opened, its folder going
// missing is an error (an unmounted drive or a card left out must not look like "everything was
// deleted"); before that, a missing folder is created.
const (
	desktopMarker = "desktop-ready"
	deviceMarker  = "device-ready"
)

func open(ctx context.Context, env providers.Env) (*providers.Instance, error) {
	o := env.Options
	ignore := fsstore.ParsePatterns(o[OptIgnore])
	keep, err := strconv.ParseBool(orDefault(o[OptIgnoreDeviceDeletes], "false"))
	if err != nil {
		return nil, fmt.Errorf("option %s: %q is not true or false", OptIgnoreDeviceDeletes, o[OptIgnoreDeviceDeletes])
	}
	if o[OptDesktop] == "" {
		return nil, fmt.Errorf("files: option %s (the desktop folder) is required", OptDesktop)
	}
	if env.StateDir != "" {
		if err := os.MkdirAll(env.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("files: state folder %s: %w", env.StateDir, err)
		}
	}
	// Versions: the desktop's replaced and deleted files in the folder's .cradle/versions (on
	// the same file system: a link or a rename), the device's on the device or, where it cannot
	// keep them, in .cradle/device-versions.
	abs, err := filepath.Abs(o[OptDesktop])
	if err != nil {
		return nil, fmt.Errorf("files: desktop folder %s: %w", o[OptDesktop], err)
	}
	set := versionsIn(abs, env.StateDir)
	desktop, err := fsstore.NewDesktopStore(abs, fsstore.DesktopOptions{
		Ignore:   ignore,
		Create:   !hasMarker(env.StateDir, desktopMarker),
		Versions: set.Desktop,
	})
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if err := setMarker(env.StateDir, desktopMarker); err != nil {
		return nil, err
	}
	inst := &providers.Instance{Desktop: desktop, Close: func() error { return nil }, Versions: set}
	if env.Device == nil {
		return inst, nil
	}
	storage, base, err := providers.ParseDevicePath(ctx, env.Device, o[OptDevicePath])
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	firstTime := !hasMarker(env.StateDir, deviceMarker)
	dev, err := fsstore.NewDeviceStore(ctx, env.Device, storage, base, fsstore.DeviceOptions{
		Ignore:       ignore,
		StateDir:     env.StateDir,
		KeepDeleted:  keep,
		CreateBase:   firstTime,
		KeepOnDevice: true,
		Versions:     set.DeviceHere,
	})
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if firstTime && base != "" {
		if _, err := env.Device.Mkdir(ctx, storage, base); err != nil {
			dev.Close()
			return nil, fmt.Errorf("files: create the device folder %q: %w", base, providers.MapDeviceError(err))
		}
	}
	if err := setMarker(env.StateDir, deviceMarker); err != nil {
		dev.Close()
		return nil, err
	}
	inst.Device = dev
	inst.Close = dev.Close
	set.Device = dev.VersionsArea()
	return inst, nil
}

// versionsIn returns the versions of a partnership whose desktop folder is dir: the device's
// area is known from its cached listing until the device store is opened.
func versionsIn(dir, stateDir string) *versions.Set {
	meta := filepath.Join(dir, fsstore.MetaDir)
	set := &versions.Set{Root: dir, TempName: fsstore.TempName,
		Desktop:    versions.NewDir(filepath.Join(meta, "versions"), versions.Desktop),
		DeviceHere: versions.NewDir(filepath.Join(meta, "device-versions"), versions.Device)}
	if stateDir != "" {
		set.Device = versions.NewDeviceDir(nil, 0, "", filepath.Join(stateDir, "device-versions.json"))
	}
	return set
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func hasMarker(stateDir, name string) bool {
	if stateDir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(stateDir, name))
	return err == nil
}

func setMarker(stateDir, name string) error {
	if stateDir == "" {
		return nil
	}
	p := filepath.Join(stateDir, name)
	if _, err := os.Stat(p); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("files: state folder: %w", err)
	}
	if err := fsutil.WriteFileAtomic(p, []byte("this partnership's folder has been opened once\n"),
		fsutil.WriteOptions{TempName: fsstore.TempName()}); err != nil {
		return fmt.Errorf("files: state folder: %w", err)
	}
	return nil
}
