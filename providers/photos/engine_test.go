package photos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
)

// importer is a photos partnership opened through the provider and synced to the desktop by the
// real engine.
type importer struct {
	*storetest.Partnership
	t *testing.T
}

func openImporter(t *testing.T, dev device.Device, pics, state string, opts map[string]string) *importer {
	t.Helper()
	all := map[string]string{OptDesktop: pics}
	for k, v := range opts {
		all[k] = v
	}
	return &importer{Partnership: storetest.Open(t, "photos", dev, state, all), t: t}
}

// sync runs a to-desktop session and returns how many items it created or updated on the desktop.
func (im *importer) sync() int {
	im.t.Helper()
	rep := im.Sync(repl.Config{Direction: repl.BToA})
	for _, s := range rep.Skipped {
		im.t.Errorf("skipped %s -> %s %s: %v", s.From, s.To, s.Name, s.Err)
	}
	if c := rep.Applied["device"]; c != nil && c.Total() > 0 {
		im.t.Errorf("a to-desktop import changed the device: %+v", *c)
	}
	n := 0
	if c := rep.Applied["desktop"]; c != nil {
		n = c.Created + c.Updated + c.Renamed
		if c.Deleted > 0 {
			im.t.Errorf("an import deleted %d pictures on the computer", c.Deleted)
		}
	}
	return n
}

func TestEngineImport(t *testing.T) {
	root, pics, state := t.TempDir(), t.TempDir(), t.TempDir()
	mt := time.Date(2024, 8, 15, 9, 0, 0, 0, time.UTC)
	shot := photo(t, 1, "2019:07:04 10:20:30")
	put(t, filepath.Join(root, "DCIM/Camera/IMG_1.jpg"), shot, mt)
	put(t, filepath.Join(root, "DCIM/Camera/IMG_1 copy.jpg"), shot, mt)
	put(t, filepath.Join(root, "DCIM/Camera/IMG_2.jpg"), photo(t, 2, "2020:01:01 00:00:01"), mt)
	put(t, filepath.Join(root, "DCIM/Camera/VID_3.mp4"), []byte("video"), mt)
	dev := storetest.OpenFolderDevice(t, root)
	im := openImporter(t, dev, pics, state, nil)
	if n := im.sync(); n != 3 {
		t.Errorf("first import wrote %d items, want 3 (two identical pictures once: the first in path order)", n)
	}
	want := "2019/2019-07-04/IMG_1 copy.jpg 2020/2020-01-01/IMG_2.jpg 2024/2024-08-15/VID_3.mp4"
	if got := strings.Join(libraryFiles(t, pics), " "); got != want {
		t.Errorf("library = %q, want %q", got, want)
	}
	if n := im.sync(); n != 0 {
		t.Errorf("second import wrote %d items, want none", n)
	}
	// Deleted on the computer: not imported again, not even after the handle file is lost.
	if err := os.Remove(filepath.Join(pics, "2020/2020-01-01/IMG_2.jpg")); err != nil {
		t.Fatal(err)
	}
	im.sync()
	if _, err := os.Stat(filepath.Join(pics, "2020/2020-01-01/IMG_2.jpg")); err == nil {
		t.Error("a picture deleted on the computer came back")
	}
	im.Close()
	if err := os.Remove(filepath.Join(state, "Repl.dat")); err != nil {
		t.Fatal(err)
	}
	im = openImporter(t, dev, pics, state, nil)
	im.sync()
	if got := strings.Join(libraryFiles(t, pics), " "); got != "2019/2019-07-04/IMG_1 copy.jpg 2024/2024-08-15/VID_3.mp4" {
		t.Errorf("after rebuilding the handle file the library = %q: nothing may come back or double", got)
	}
	// Deleted on the device: nothing is deleted on the computer.
	if err := os.Remove(filepath.Join(root, "DCIM/Camera/VID_3.mp4")); err != nil {
		t.Fatal(err)
	}
	im.sync()
	if _, err := os.Stat(filepath.Join(pics, "2024/2024-08-15/VID_3.mp4")); err != nil {
		t.Errorf("deleting a video on the device deleted it on the computer: %v", err)
	}
}

func TestEngineImportFreesTheDeviceOverEmulator(t *testing.T) {
	root, pics, state := t.TempDir(), t.TempDir(), t.TempDir()
	mt := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	put(t, filepath.Join(root, "DCIM/Camera/A.jpg"), photo(t, 5, "2024:02:29 23:00:00"), mt)
	put(t, filepath.Join(root, "DCIM/Camera/B.jpg"), photo(t, 6, ""), mt)
	put(t, filepath.Join(root, "Pictures/Screenshots/S.png"), []byte("screen"), mt)
	dev, err := emulator.OpenDevice(context.Background(), root, emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	im := openImporter(t, dev, pics, state, map[string]string{OptDeleteAfterImport: "true", OptScreenshots: "true"})
	if n := im.sync(); n != 3 {
		t.Errorf("import wrote %d items, want 3", n)
	}
	for _, p := range []string{"DCIM/Camera/A.jpg", "DCIM/Camera/B.jpg", "Pictures/Screenshots/S.png"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s is still on the device after a verified import", p)
		}
	}
	want := "2024/2024-02-29/A.jpg 2024/2024-03-01/B.jpg 2024/2024-03-01/S.png"
	if got := strings.Join(libraryFiles(t, pics), " "); got != want {
		t.Errorf("library = %q, want %q", got, want)
	}
	if n := im.sync(); n != 0 {
		t.Errorf("the sync after freeing the device wrote %d items", n)
	}
	if got := strings.Join(libraryFiles(t, pics), " "); got != want {
		t.Errorf("library after the next sync = %q, want %q kept", got, want)
	}
}
