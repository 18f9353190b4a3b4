package repl

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxNameSegment is the longest single component of an item name, in bytes (the common file system
// limit).
const MaxNameSegment = 255

// CheckName checks a portable item name: a '/'-separated relative path whose components are not
// empty, not "." or "..", at most MaxNameSegment bytes, valid UTF-8, and free of NUL, backslash and
// control characters. The error wraps ErrInvalidName. Stores use it to refuse names they must not
// create; a provider may refuse more (Windows reserved names, say).
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name: %w", ErrInvalidName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("name %q is not valid UTF-8: %w", name, ErrInvalidName)
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("name %q has an empty component (a leading, trailing or double '/'): %w", name, ErrInvalidName)
		case seg == "." || seg == "..":
			return fmt.Errorf("name %q has a %q component: %w", name, seg, ErrInvalidName)
		case len(seg) > MaxNameSegment:
			return fmt.Errorf("name %.60q... has a component longer than %d bytes: %w", name, MaxNameSegment, ErrInvalidName)
		}
		for _, r := range seg {
			if r == 0 || r == '\\' || r < 0x20 || r == 0x7f {
				return fmt.Errorf("name %q holds a NUL, backslash or control character: %w", name, ErrInvalidName)
			}
		}
	}
	return nil
}
