// Package gui is the end-to-end test of Cradle's window: the real cradle binary (built with cgo,
// Fyne's GL driver) runs `cradle --demo` in an Xvfb server the test starts on a free display; the
// test clicks with xdotool, checks the files on disk, and takes screenshots with ImageMagick's
// import (Canvas().Capture() is blank under Xvfb).
//
// It needs Xvfb, xdotool and ImageMagick (`make deps-headless`). Run it with `make test`, or
// alone:
//
//	go test ./test/gui/
//
// With CRADLE_SCREENSHOTS=1 it refreshes the screenshots in docs/screenshots/; otherwise they go
// to the test's temporary folder, so a normal run leaves the tree as it was.
//
// TestWindowMemory measures the resident memory of the idle demo window beside a minimal Fyne
// window (test/gui/minimal) in the same X server and reports both.
package gui
