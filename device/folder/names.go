package folder

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cradle-sync/cradle/device"
)

// maxNameBytes is the longest name Cradle accepts from a device: the limit of every common
// desktop file system.
const maxNameBytes = 255

// tempPrefix starts the names of the files Create writes before it renames them into place.
// List and Walk never report them, and the files provider's ignore rules skip them.
const tempPrefix = ".cradle-part-"

// IsTempName tells whether name is one of the temporary files this package writes while an
// object is being created. Other packages use it to ignore them.
func IsTempName(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// CheckName refuses a single path component that must never become part of a desktop path: the
// empty name, "." and "..", names holding '/', '\\', NUL or other control characters, names that
// are not valid UTF-8, names Windows reserves (CON, NUL, COM1, ...), and names longer than 255
// bytes. The error wraps device.ErrUnsafeName.
//
// It stands in for a device-wide name check until package device offers one; the rules are the
// ones the MTP initiator applies to names a phone reports.
func CheckName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("name %q %s: %w", name, why, device.ErrUnsafeName)
	}
	switch {
	case name == "":
		return bad("is empty")
	case name == "." || name == "..":
		return bad("refers to a folder itself or its parent")
	case len(name) > maxNameBytes:
		return fmt.Errorf("name of %d bytes is longer than %d bytes: %w", len(name), maxNameBytes, device.ErrUnsafeName)
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	}
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			return bad("holds a path separator")
		case r < 0x20 || r == 0x7f:
			return bad("holds a control character")
		}
	}
	if reservedName(name) {
		return bad("is reserved on Windows")
	}
	return nil
}

// reservedName tells whether name is a DOS device name, with or without an extension.
func reservedName(name string) bool {
	base := name
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	base = strings.TrimRight(base, " ")
	switch strings.ToUpper(base) {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) == 4 {
		u := strings.ToUpper(base[:3])
		if (u == "COM" || u == "LPT") && base[3] >= '1' && base[3] <= '9' {
			return true
		}
	}
	return false
}

// cleanPath checks a '/'-separated path relative to the storage root and returns it without
// leading or trailing slashes. Every component must pass CheckName; "" is the root.
func cleanPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, c := range strings.Split(p, "/") {
		if err := CheckName(c); err != nil {
			return "", fmt.Errorf("path %q: %w", p, err)
		}
	}
	return p, nil
}

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
