package files

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
)

// partnership is a files partnership opened through the provider, synced by the real engine.
type partnership struct {
	*storetest.Partnership
	t       *testing.T
	desktop string
}

func openPartnership(t *testing.T, dev device.Device, desktop, state string, opts map[string]string) *partnership {
	t.Helper()
	all := map[string]string{OptDesktop: desktop, OptDevicePath: "Sync"}
	for k, v := range opts {
		all[k] = v
	}
	return &partnership{Partnership: storetest.Open(t, "files", dev, state, all), t: t, desktop: desktop}
}

func (p *partnership) sync() *repl.Report {
	p.t.Helper()
	rep := p.Sync(repl.Config{Direction: repl.BothWays})
	for _, s := range rep.Skipped {
		p.t.Logf("skipped %s -> %s %s: %v", s.From, s.To, s.Name, s.Err)
	}
	return rep
}

func readOr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

func TestEngineTwoWayOverFolderDevice(t *testing.T) {
	root, desk, state := t.TempDir(), t.TempDir(), t.TempDir()
	storetest.WriteFile(t, filepath.Join(desk, "notes/todo.txt"), "buy milk")
	storetest.WriteFile(t, filepath.Join(desk, "empty-dir/.keep-me-not~"), "editor backup") // ignored
	storetest.WriteFile(t, filepath.Join(root, "Sync/from-phone.txt"), "hello from the phone")
	dev := storetest.OpenFolderDevice(t, root)
	p := openPartnership(t, dev, desk, state, nil)
	p.sync()
	if got := readOr(filepath.Join(root, "Sync/notes/todo.txt")); got != "buy milk" {
		t.Errorf("device Sync/notes/todo.txt = %q", got)
	}
	if got := readOr(filepath.Join(desk, "from-phone.txt")); got != "hello from the phone" {
		t.Errorf("desktop from-phone.txt = %q", got)
	}
	if !exists(filepath.Join(root, "Sync/empty-dir")) || exists(filepath.Join(root, "Sync/empty-dir/.keep-me-not~")) {
		t.Error("the folder should sync without the ignored backup file")
	}
	// Edit on the device, delete and rename on the desktop.
	time.Sleep(10 * time.Millisecond)
	storetest.WriteFile(t, filepath.Join(root, "Sync/from-phone.txt"), "edited on the phone")
	if err := os.Rename(filepath.Join(desk, "notes/todo.txt"), filepath.Join(desk, "notes/done.txt")); err != nil {
		t.Fatal(err)
	}
	p.sync()
	if got := readOr(filepath.Join(desk, "from-phone.txt")); got != "edited on the phone" {
		t.Errorf("desktop from-phone.txt after an edit on the device = %q", got)
	}
	if exists(filepath.Join(root, "Sync/notes/todo.txt")) || readOr(filepath.Join(root, "Sync/notes/done.txt")) != "buy milk" {
		t.Errorf("rename on the desktop did not reach the device: todo %v, done %q", exists(filepath.Join(root, "Sync/notes/todo.txt")), readOr(filepath.Join(root, "Sync/notes/done.txt")))
	}
	if err := os.Remove(filepath.Join(desk, "from-phone.txt")); err != nil {
		t.Fatal(err)
	}
	p.sync()
	if exists(filepath.Join(root, "Sync/from-phone.txt")) {
		t.Error("a deletion on the desktop did not reach the device")
	}
	storetest.NoTempFiles(t, root, fsstore.TempPrefix)
	storetest.NoTempFiles(t, desk, fsstore.TempPrefix)
}

func TestEngineIgnoreDeviceDeletes(t *testing.T) {
	root, desk, state := t.TempDir(), t.TempDir(), t.TempDir()
	for _, n := range []string{"a.mp3", "b.mp3", "c.mp3"} {
		storetest.WriteFile(t, filepath.Join(desk, "Music", n), "song "+n)
	}
	dev := storetest.OpenFolderDevice(t, root)
	p := openPartnership(t, dev, desk, state, map[string]string{OptIgnoreDeviceDeletes: "true"})
	p.sync()
	if readOr(filepath.Join(root, "Sync/Music/a.mp3")) != "song a.mp3" {
		t.Fatal("first sync did not copy the music to the device")
	}
	// The user frees space on the phone.
	if err := os.Remove(filepath.Join(root, "Sync/Music/a.mp3")); err != nil {
		t.Fatal(err)
	}
	p.Close()
	p = openPartnership(t, dev, desk, state, map[string]string{OptIgnoreDeviceDeletes: "true"})
	p.sync()
	if readOr(filepath.Join(desk, "Music/a.mp3")) != "song a.mp3" {
		t.Error("a deletion on the device deleted the file on the computer")
	}
	if exists(filepath.Join(root, "Sync/Music/a.mp3")) {
		t.Error("the file deleted on the device to free space was copied back")
	}
	// An edit on the computer goes to the device again.
	time.Sleep(10 * time.Millisecond)
	storetest.WriteFile(t, filepath.Join(desk, "Music/a.mp3"), "remastered")
	p.sync()
	if got := readOr(filepath.Join(root, "Sync/Music/a.mp3")); got != "remastered" {
		t.Errorf("device a.mp3 after an edit on the computer = %q", got)
	}
	// Other changes on the device still come back.
	storetest.WriteFile(t, filepath.Join(root, "Sync/Music/recorded.m4a"), "voice memo")
	p.sync()
	if readOr(filepath.Join(desk, "Music/recorded.m4a")) != "voice memo" {
		t.Error("a new file on the device did not reach the computer")
	}
}

func TestEngineOverEmulator(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts emulator.Options
	}{
		{"android", emulator.Options{}},
		{"qemu-no-rename", emulator.QEMU()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, desk, state := t.TempDir(), t.TempDir(), t.TempDir()
			storetest.WriteFile(t, filepath.Join(root, "Sync/Docs/report.txt"), "draft 1")
			storetest.WriteFile(t, filepath.Join(desk, "photo.jpg"), strings.Repeat("jpeg", 100000))
			dev, err := emulator.OpenDevice(context.Background(), root, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dev.Close() })
			p := openPartnership(t, dev, desk, state, nil)
			p.sync()
			if readOr(filepath.Join(desk, "Docs/report.txt")) != "draft 1" {
				t.Errorf("desktop Docs/report.txt = %q", readOr(filepath.Join(desk, "Docs/report.txt")))
			}
			if readOr(filepath.Join(root, "Sync/photo.jpg")) != strings.Repeat("jpeg", 100000) {
				t.Error("photo.jpg did not reach the emulated device intact")
			}
			// An update of an existing object (a swap where the device renames, delete and
			// create where it cannot).
			time.Sleep(1100 * time.Millisecond) // MTP keeps seconds
			storetest.WriteFile(t, filepath.Join(desk, "Docs/report.txt"), "draft 2, longer")
			p.sync()
			if got := readOr(filepath.Join(root, "Sync/Docs/report.txt")); got != "draft 2, longer" {
				t.Errorf("device report.txt after an update = %q", got)
			}
			rep := p.sync()
			for side, c := range rep.Applied {
				if c.Total() != 0 {
					t.Errorf("a sync with nothing changed wrote %+v to %s", *c, side)
				}
			}
			storetest.NoTempFiles(t, root, fsstore.TempPrefix)
		})
	}
}
