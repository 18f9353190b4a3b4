// Package demo holds the sample content of `cradle --demo`: what the emulated phone holds
// (camera pictures with EXIF dates under DCIM/Camera, an Android-style vCard 2.1 contacts file,
// some documents) and what the computer holds (documents, one of which differs from the phone's
// copy, and an address book folder). The set-up that uses it is manager/demo.
//
// The pictures are drawn by gen.go: go run assets/demo/gen.go.
package demo

import (
	"embed"
	"io/fs"
)

//go:embed all:device all:desktop
var content embed.FS

// Device is the phone's storage, as files at its root (DCIM/, Contacts/, Documents/).
func Device() fs.FS { return sub("device") }

// Desktop is the computer's side: Documents/ and Contacts/ (one vCard per contact).
func Desktop() fs.FS { return sub("desktop") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(content, dir)
	if err != nil {
		panic("assets/demo: " + err.Error()) // the folders are embedded: cannot happen
	}
	return f
}
