package folder

import (
	"strings"

	"github.com/cradle-sync/cradle/device"
)

// tempPrefix starts the names of the files Create writes before it renames them into place.
// List and Walk never report them, and the files provider's ignore rules skip them.
const tempPrefix = ".cradle-part-"

// IsTempName tells whether name is one of the temporary files this package writes while an
// object is being created. Other packages use it to ignore them.
func IsTempName(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// cleanPath checks a '/'-separated path relative to the storage root and returns it without
// leading or trailing slashes ("" is the root). Every component must pass device.CheckName.
func cleanPath(p string) (string, error) { return device.CheckPath(p) }

// parent returns the folder part of a clean path ("" for a name at the root).
func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// base returns the last component of a clean path.
func base(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// join joins a clean folder path and a name.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// osName turns a clean path into a name for os.Root ("." for the root).
func osName(p string) string {
	if p == "" {
		return "."
	}
	return p
}
