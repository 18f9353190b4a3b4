// Package all registers Cradle's built-in providers. Import it for its side effect:
//
//	import _ "github.com/cradle-sync/cradle/providers/all"
//
// after which providers.Lookup finds "files" (a desktop folder with a device folder), "photos"
// (import from the camera roll) and "contacts" (an address book with the device's contacts file).
package all

import (
	// Built-in providers register themselves from init().
	_ "github.com/cradle-sync/cradle/providers/contacts"
	_ "github.com/cradle-sync/cradle/providers/files"
	_ "github.com/cradle-sync/cradle/providers/photos"
)
