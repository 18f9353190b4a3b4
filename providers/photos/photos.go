// Package photos is Cradle's "photos" provider: a one-way import of the device's camera roll
// (DCIM, and Pictures/Screenshots when chosen) into a desktop folder arranged as
// YYYY/YYYY-MM-DD/ by each picture's own date. Pictures, camera RAW files and videos are
// imported; each picture once (by content hash), never again after the user deleted it on the
// computer, and, when asked, deleted from the device after a verified import.
//
// The device side is a Source (read-only), the desktop side a Library. Neither needs anything of
// the engine beyond repl.Store: the Source keeps reporting pictures that left the device, so an
// import never deletes on the computer, and the Library's import log keeps a deleted picture from
// coming back.
//
// The Library is built on fsstore.DesktopStore; the package map is in docs/design.md.
package photos

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/providers/versions"
)

// Option names of the photos provider.
const (
	OptDesktop           = "desktop"
	OptDevicePath        = providers.OptDevicePath
	OptScreenshots       = "screenshots"
	OptDeleteAfterImport = "delete-after-import"
)

// Provider is the declaration of the photos provider, registered from init().
var Provider = providers.Provider{
	Name:        "photos",
	Description: "Import pictures and videos from the device's camera into a folder arranged by date.",
	Icon:        "media-photo",
	Options: []providers.Option{
		{Name: OptDesktop, Label: "Pictures folder", Kind: providers.KindFolder, Required: true,
			Help: "the folder on this computer that receives the pictures, in YYYY/YYYY-MM-DD folders"},
		{Name: OptDevicePath, Label: "Camera folder", Kind: providers.KindDevicePath, Default: "DCIM",
			Help: `the camera's folder on the device, "DCIM" or "STORAGE:DCIM" for a memory card`},
		{Name: OptScreenshots, Label: "Screenshots too", Kind: providers.KindBool, Default: "false",
			Help: "also import Pictures/Screenshots"},
		{Name: OptDeleteAfterImport, Label: "Free the device", Kind: providers.KindBool, Default: "false", Advanced: true,
			Help: "delete each picture from the device once its copy on this computer has been verified"},
	},
	Directions: []providers.Direction{providers.ToDesktop},
	Open:       open,
}

func init() { providers.Register(Provider) }

func open(ctx context.Context, env providers.Env) (*providers.Instance, error) {
	o := env.Options
	if o[OptDesktop] == "" {
		return nil, fmt.Errorf("photos: option %s (the pictures folder) is required", OptDesktop)
	}
	if env.StateDir == "" {
		return nil, fmt.Errorf("photos: a state folder is needed to remember what was imported")
	}
	screenshots, err := parseBool(o, OptScreenshots)
	if err != nil {
		return nil, err
	}
	free, err := parseBool(o, OptDeleteAfterImport)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o[OptDesktop])
	if err != nil {
		return nil, fmt.Errorf("photos: pictures folder %s: %w", o[OptDesktop], err)
	}
	set := &versions.Set{Root: dir, TempName: fsstore.TempName,
		Desktop: versions.NewDir(filepath.Join(dir, fsstore.MetaDir, "versions"), versions.Desktop)}
	lopts := LibraryOptions{StateDir: env.StateDir, KeepOriginals: true, Versions: set.Desktop}
	var src *Source
	if env.Device != nil {
		spec := o[OptDevicePath]
		if spec == "" {
			spec = "DCIM"
		}
		storage, root, err := providers.ParseDevicePath(ctx, env.Device, spec)
		if err != nil {
			return nil, fmt.Errorf("photos: %w", err)
		}
		roots := []string{root}
		if screenshots {
			roots = append(roots, "Pictures/Screenshots")
		}
		src, err = NewSource(env.Device, storage, SourceOptions{Roots: roots, StateDir: env.StateDir, KeepGone: true})
		if err != nil {
			return nil, err
		}
		if free {
			lopts.Free = src.Free
		}
	}
	lib, err := NewLibrary(dir, lopts)
	if err != nil {
		if src != nil {
			src.Close()
		}
		return nil, err
	}
	inst := &providers.Instance{Desktop: lib, Close: lib.Close, Versions: set}
	if src != nil {
		inst.Device = src
		inst.Close = func() error {
			err := lib.Close()
			if serr := src.Close(); err == nil {
				err = serr
			}
			return err
		}
	}
	return inst, nil
}

func parseBool(o map[string]string, name string) (bool, error) {
	v := o[name]
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("photos: option %s: %q is not true or false", name, v)
	}
	return b, nil
}
