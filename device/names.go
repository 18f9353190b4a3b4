package device

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameBytes is the longest name Cradle accepts from a device: the limit of every common
// desktop file system.
const MaxNameBytes = 255

// CheckName refuses a single path component that a device reported and that must never become
// part of a desktop path: the empty name, "." and "..", names holding '/', '\\', NUL or another
// control character (C0, DEL or C1) or a bidirectional text control, names that are not valid
// UTF-8, names Windows reserves (CON, PRN, AUX, NUL, COM1-9, LPT1-9, CONIN$, CONOUT$, with or
// without an extension) and names longer than MaxNameBytes bytes. The error wraps ErrUnsafeName
// and says why.
//
// Every implementation of Device passes the names it reports through CheckName: an object whose
// name fails is skipped (and logged), never mapped to another path silently.
func CheckName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("name %q %s: %w", name, why, ErrUnsafeName)
	}
	switch {
	case name == "":
		return fmt.Errorf("empty name: %w", ErrUnsafeName)
	case name == "." || name == "..":
		return bad("refers to a folder itself or its parent")
	case len(name) > MaxNameBytes:
		return fmt.Errorf("name of %d bytes (%.40q...) is longer than %d bytes: %w",
			len(name), name, MaxNameBytes, ErrUnsafeName)
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	}
	for _, r := range name {
		switch {
		case r == '/' || r == '\\':
			return bad("holds a path separator")
		case r == 0:
			return bad("holds a NUL character")
		case isControl(r):
			return bad("holds a control character")
		case isBidiControl(r):
			return bad("holds a bidirectional text control, which can disguise its extension (\"\u202etxt.exe\" shows as \"exe.txt\")")
		}
	}
	if ReservedName(name) {
		return bad("is reserved on Windows")
	}
	return nil
}

// CheckPath checks a '/'-separated path relative to a storage root and returns it clean: without
// leading or trailing '/', "" for the root. Every component must pass CheckName, so empty
// components ("a//b"), "." and ".." are refused; the error wraps ErrUnsafeName.
func CheckPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for c := range strings.SplitSeq(p, "/") {
		if err := CheckName(c); err != nil {
			return "", fmt.Errorf("path %q: %w", p, err)
		}
	}
	return p, nil
}

// ReservedName tells whether name is a DOS device name that Windows reserves in every folder
// ("CON", "nul.txt", "COM1.tar.gz", "LPT9 "), compared without case.
func ReservedName(name string) bool {
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

// SafeName maps any name to one that passes CheckName, for display and for messages ("skipped
// %s"): path separators, NUL, control characters and invalid UTF-8 become '_', "" "." and ".."
// become "_", "_." and "_..", a reserved name gets '_' after its base ("CON.txt" -> "CON_.txt"),
// and a name longer than MaxNameBytes is cut on a character boundary, keeping a short extension.
// A name that already passes CheckName is returned unchanged. SafeName is not a licence to sync
// a mapped name: two hostile names can map to the same safe one.
func SafeName(name string) string {
	if CheckName(name) == nil {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteByte('_')
		case r == '/' || r == '\\' || r == 0 || isControl(r) || isBidiControl(r):
			b.WriteByte('_')
		default:
			b.WriteString(name[i : i+size])
		}
		i += size
	}
	s := b.String()
	switch s {
	case "":
		s = "_"
	case ".", "..":
		s = "_" + s
	}
	if ReservedName(s) {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			i = len(s)
		}
		s = strings.TrimRight(s[:i], " ") + "_" + s[i:]
	}
	if len(s) > MaxNameBytes {
		ext := ""
		if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= 16 {
			ext = s[i:]
		}
		s = truncateUTF8(s[:len(s)-len(ext)], MaxNameBytes-len(ext)) + ext
	}
	return s
}

// NameRules say which names a storage can hold, beyond CheckName, and which it takes for the
// same name. The zero value is a case-sensitive storage that holds every name CheckName accepts
// (a Linux folder, QEMU's usb-mtp).
type NameRules struct {
	// FoldCase: names that differ only in case name the same object (Android's shared storage,
	// FAT and exFAT cards). Two such names cannot live side by side, and sending one where the
	// other is may overwrite it.
	FoldCase bool
	// FAT: the characters " * : < > ? | and control characters are not allowed, and a name
	// ending in a dot or a space would be stored without them (FAT and exFAT cards, which
	// Android trims so).
	FAT bool
}

// fatForbidden are the characters FAT does not allow in a name (besides '/', '\' and control
// characters, which CheckName refuses everywhere).
const fatForbidden = `"*:<>?|`

// Check tells whether the storage can hold name (a single component that passed CheckName). The
// error wraps ErrNameNotAllowed and says why.
func (r NameRules) Check(name string) error {
	if !r.FAT {
		return nil
	}
	if i := strings.IndexAny(name, fatForbidden); i >= 0 {
		return fmt.Errorf("%q holds %q, which a memory card (FAT) does not allow in names: %w", name, name[i], ErrNameNotAllowed)
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return fmt.Errorf("%q ends in a dot or a space, which a memory card (FAT) drops: %w", name, ErrNameNotAllowed)
	}
	return nil
}

// Same tells whether the storage takes a and b for the same name.
func (r NameRules) Same(a, b string) bool {
	if r.FoldCase {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// Key returns the form of name under which the storage tells names apart: name itself, or its
// case-folded form when FoldCase.
func (r NameRules) Key(name string) string {
	if r.FoldCase {
		return strings.ToLower(strings.ToUpper(name))
	}
	return name
}

// isControl tells whether r is a C0 or C1 control character or DEL.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// isBidiControl reports the Unicode bidirectional embedding, override and isolate controls
// (U+202A-U+202E, U+2066-U+2069): in a file name they reorder what a user sees.
func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
