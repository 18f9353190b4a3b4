package fsstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

// noRename is a folder device that, like QEMU's usb-mtp, cannot rename or move objects. It
// takes a capability away from a real device; everything else is the folder device.
type noRename struct {
	*folder.Device
	renames int
}

func (d *noRename) Info() device.Info {
	i := d.Device.Info()
	i.Transport = "mtp-usb" // not a folder: the store must find out by trying
	return i
}

func (d *noRename) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	d.renames++
	return fmt.Errorf("rename %s: %w", from, device.ErrUnsupported)
}

func TestDeviceConformanceWithoutRename(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			root := t.TempDir()
			dev := &noRename{Device: storetest.OpenFolderDevice(t, root)}
			s, err := NewDeviceStore(context.Background(), dev, folder.Storage, "", DeviceOptions{StateDir: t.TempDir(), Logf: storetest.Quiet})
			if err != nil {
				t.Fatal(err)
			}
			if s.WritesAtomic() {
				t.Error("WritesAtomic() = true on a device that cannot rename")
			}
			return s, storetest.FolderRenamer{Dir: root}
		},
		Folders: true,
		Moves:   true,
	})
}

func TestDeviceMoveFolderWithoutRename(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	storetest.WriteFile(t, filepath.Join(root, "Books/Series/one.epub"), "one")
	storetest.WriteFile(t, filepath.Join(root, "Books/Series/two.epub"), "two")
	storetest.WriteFile(t, filepath.Join(root, "Books/Series/Extra/three.epub"), "three")
	dev := &noRename{Device: storetest.OpenFolderDevice(t, root)}
	s := newDeviceStore(t, dev.Device, "", DeviceOptions{})
	s.dev = dev
	e, err := s.Stat(ctx, "Books/Series")
	if err != nil {
		t.Fatal(err)
	}
	st := e.Stamp()
	if _, err := s.Write(ctx, repl.WriteRequest{Handle: "Books/Series", Expected: &st, Name: "Library/Saga", Kind: repl.KindFolder}); err != nil {
		t.Fatalf("move of a folder on a device without rename: %v", err)
	}
	got := enumerateAll(t, s)
	want := "Books Library Library/Saga Library/Saga/Extra Library/Saga/Extra/three.epub Library/Saga/one.epub Library/Saga/two.epub"
	if sortedHandles(got) != want {
		t.Errorf("after the move: %q, want %q", sortedHandles(got), want)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "Library/Saga/Extra/three.epub")); string(b) != "three" {
		t.Errorf("moved file holds %q", b)
	}
}

func TestDeviceUpdateUsesSwapAndJournal(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	state := t.TempDir()
	storetest.WriteFile(t, filepath.Join(root, "Docs/report.txt"), "version 1")
	dev := storetest.OpenFolderDevice(t, root)
	s := newDeviceStore(t, dev, "Docs", DeviceOptions{StateDir: state})
	if !s.WritesAtomic() {
		t.Error("WritesAtomic() = false on a device that renames")
	}
	e, err := s.Stat(ctx, "report.txt")
	if err != nil {
		t.Fatal(err)
	}
	st := e.Stamp()
	mt := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	w, err := s.Write(ctx, repl.WriteRequest{Handle: "report.txt", Expected: &st, Name: "report.txt", Kind: repl.KindFile,
		Size: 9, ModTime: mt, Data: strings.NewReader("version 2")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "Docs/report.txt")); string(b) != "version 2" || !w.ModTime.Equal(mt) {
		t.Errorf("after update: %q at %v, want %q at %v", b, w.ModTime, "version 2", mt)
	}
	if _, err := os.Stat(filepath.Join(state, "device-swaps.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the journal is not empty after a finished swap: %v", err)
	}
}

func TestDeviceRecoversInterruptedSwap(t *testing.T) {
	root := t.TempDir()
	state := t.TempDir()
	// A session died after deleting the old object and before renaming the upload into place.
	tmp := "Docs/" + TempPrefix + "INTERRUPTED"
	storetest.WriteFile(t, filepath.Join(root, tmp), "new content")
	storetest.WriteFile(t, filepath.Join(root, "Docs/other.txt"), "other")
	// And another died before deleting the old one: the old content stands.
	tmp2 := "Docs/" + TempPrefix + "EARLY"
	storetest.WriteFile(t, filepath.Join(root, tmp2), "unused upload")
	storetest.WriteFile(t, filepath.Join(root, "Docs/kept.txt"), "old content")
	j, _ := json.Marshal([]swap{{Tmp: tmp, Final: "Docs/report.txt"}, {Tmp: tmp2, Final: "Docs/kept.txt"}})
	if err := os.WriteFile(filepath.Join(state, "device-swaps.json"), j, 0o600); err != nil {
		t.Fatal(err)
	}
	dev := storetest.OpenFolderDevice(t, root)
	s := newDeviceStore(t, dev, "Docs", DeviceOptions{StateDir: state})
	if b, err := os.ReadFile(filepath.Join(root, "Docs/report.txt")); err != nil || string(b) != "new content" {
		t.Errorf("report.txt after recovery = %q, %v; want the uploaded content", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "Docs/kept.txt")); string(b) != "old content" {
		t.Errorf("kept.txt after recovery = %q, want the old content", b)
	}
	for _, p := range []string{tmp, tmp2} {
		if _, err := os.Stat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after recovery: %v", p, err)
		}
	}
	if got := sortedHandles(enumerateAll(t, s)); got != "kept.txt other.txt report.txt" {
		t.Errorf("Enumerate after recovery = %q", got)
	}
}

func TestDeviceKeepDeleted(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	state := t.TempDir()
	storetest.WriteFile(t, filepath.Join(root, "Music/a.mp3"), "aaaa")
	storetest.WriteFile(t, filepath.Join(root, "Music/b.mp3"), "bbbb")
	dev := storetest.OpenFolderDevice(t, root)
	s := newDeviceStore(t, dev, "Music", DeviceOptions{StateDir: state, KeepDeleted: true})
	before := enumerateAll(t, s)
	if sortedHandles(before) != "a.mp3 b.mp3" {
		t.Fatalf("Enumerate = %q", sortedHandles(before))
	}
	// The user frees space on the phone.
	if err := os.Remove(filepath.Join(root, "Music/a.mp3")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = newDeviceStore(t, dev, "Music", DeviceOptions{StateDir: state, KeepDeleted: true}) // a later session
	after := enumerateAll(t, s)
	if sortedHandles(after) != "a.mp3 b.mp3" {
		t.Fatalf("Enumerate after deleting a.mp3 on the device = %q, want it still reported", sortedHandles(after))
	}
	if ch, _ := s.IsItemChanged(ctx, after["a.mp3"], before["a.mp3"].Stamp()); ch {
		t.Error("the kept item looks changed")
	}
	if e, err := s.Stat(ctx, "a.mp3"); err != nil || e.Stamp() != before["a.mp3"].Stamp() {
		t.Errorf("Stat(kept) = %+v, %v; want the last stamp", e, err)
	}
	if _, err := os.Stat(filepath.Join(root, "Music/a.mp3")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the kept item was copied back to the device")
	}
	// Edited on the computer: written to the device again.
	st := after["a.mp3"].Stamp()
	if _, err := s.Write(ctx, repl.WriteRequest{Handle: "a.mp3", Expected: &st, Name: "a.mp3", Kind: repl.KindFile,
		Size: 5, Data: strings.NewReader("AAAAA")}); err != nil {
		t.Fatalf("update of a kept item: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "Music/a.mp3")); string(b) != "AAAAA" {
		t.Errorf("a.mp3 on the device = %q after an update from the computer", b)
	}
	// Deleted on the device again, then deleted on the computer: forgotten.
	if err := os.Remove(filepath.Join(root, "Music/a.mp3")); err != nil {
		t.Fatal(err)
	}
	kept := enumerateAll(t, s)["a.mp3"]
	if err := s.Delete(ctx, "a.mp3", kept.Stamp()); err != nil {
		t.Fatalf("Delete of a kept item: %v", err)
	}
	if got := sortedHandles(enumerateAll(t, s)); got != "b.mp3" {
		t.Errorf("after deleting the kept item on the computer, Enumerate = %q, want only b.mp3", got)
	}
	// Without the option, a deletion on the device shows.
	plain := newDeviceStore(t, dev, "Music", DeviceOptions{StateDir: t.TempDir()})
	os.Remove(filepath.Join(root, "Music/b.mp3"))
	if got := enumerateAll(t, plain); len(got) != 0 {
		t.Errorf("without ignore-device-deletes, Enumerate = %q, want nothing", sortedHandles(got))
	}
}

func TestDeviceMissingBase(t *testing.T) {
	root := t.TempDir()
	dev := storetest.OpenFolderDevice(t, root)
	s := newDeviceStore(t, dev, "Card/Music", DeviceOptions{})
	_, err := s.Enumerate(context.Background())
	if !errors.Is(err, repl.ErrNotFound) || !strings.Contains(err.Error(), "Card/Music") {
		t.Errorf("Enumerate of a missing base folder = %v, want ErrNotFound naming it (so that nothing is taken for deleted)", err)
	}
	s2 := newDeviceStore(t, dev, "Card/Music", DeviceOptions{CreateBase: true})
	if got := enumerateAll(t, s2); len(got) != 0 {
		t.Errorf("Enumerate of a new partnership's missing base = %q, want empty", sortedHandles(got))
	}
	if _, err := s2.Write(context.Background(), repl.WriteRequest{Name: "x.mp3", Kind: repl.KindFile, Size: 1, Data: strings.NewReader("x")}); err != nil {
		t.Errorf("first Write into a missing base: %v", err)
	}
}

func TestDeviceWatchShutdownWhenGone(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "stick")
	storetest.WriteFile(t, filepath.Join(root, "Docs/a.txt"), "a")
	dev := storetest.OpenFolderDevice(t, root)
	s := newDeviceStore(t, dev, "Docs", DeviceOptions{})
	w := startWatch(t, s, nil)
	time.Sleep(50 * time.Millisecond)
	storetest.WriteFile(t, filepath.Join(root, "Docs/b.txt"), "b")
	w.expect(t, repl.ItemCreated, "b.txt")
	storetest.WriteFile(t, filepath.Join(root, "Elsewhere/c.txt"), "c") // outside the base: nothing
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case n := <-w.ch:
			if strings.Contains(n.Handle, "c.txt") {
				t.Errorf("notification for an object outside the partnership's folder: %+v", n)
			}
			if n.Kind == repl.Shutdown {
				if !errors.Is(n.Err, repl.ErrGone) {
					t.Errorf("Shutdown error = %v, want ErrGone", n.Err)
				}
				return
			}
		case <-deadline:
			t.Fatal("no Shutdown after the device went away")
		}
	}
}

func TestDeviceLargeUnknownSize(t *testing.T) {
	root := t.TempDir()
	dev := storetest.OpenFolderDevice(t, root)
	s := newDeviceStore(t, dev, "", DeviceOptions{})
	data := bytes.Repeat([]byte("z"), 3<<20)
	e, err := s.Write(context.Background(), repl.WriteRequest{Name: "blob.bin", Kind: repl.KindFile, Size: -1, Data: bytes.NewReader(data)})
	if err != nil || e.Size != int64(len(data)) {
		t.Fatalf("Write of unknown size = %+v, %v", e, err)
	}
}

func TestDeviceNoSpace(t *testing.T) {
	mnt := smallTmpfs(t, "256k")
	dev := storetest.OpenFolderDevice(t, mnt)
	s := newDeviceStore(t, dev, "", DeviceOptions{})
	data := bytes.Repeat([]byte{1}, 1<<20)
	_, err := s.Write(context.Background(), repl.WriteRequest{Name: "big.bin", Kind: repl.KindFile, Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, repl.ErrNoSpace) {
		t.Fatalf("Write of 1 MiB to a 256 KiB device = %v, want ErrNoSpace", err)
	}
	if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
		t.Errorf("a failed write left %d entries on the device", len(entries))
	}
	// An emulated phone that is full says so too.
	root := t.TempDir()
	edev, err := emulator.OpenDevice(context.Background(), root, emulator.Options{FreeSpaceZero: true})
	if err != nil {
		t.Fatal(err)
	}
	defer edev.Close()
	es, err := NewDeviceStore(context.Background(), edev, 0x00010001, "", DeviceOptions{Logf: storetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	_, err = es.Write(context.Background(), repl.WriteRequest{Name: "a.txt", Kind: repl.KindFile, Size: 3, Data: strings.NewReader("abc")})
	if !errors.Is(err, repl.ErrNoSpace) {
		t.Errorf("Write to a full emulated phone = %v, want ErrNoSpace", err)
	}
}

// TestMoveFolderWithoutRename: a folder renamed on a device that cannot rename (a memory card:
// the sdcard profile) is copied object by object. Each copy read the object from the device
// while it sent the copy to the same device, and waited for itself: the sync hung for ever.
func TestMoveFolderWithoutRename(t *testing.T) {
	root := t.TempDir()
	storetest.WriteFile(t, filepath.Join(root, "Sync", "e", "x.txt"), "some content")
	opts, err := emulator.Profile("sdcard", nil)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := emulator.OpenDevice(context.Background(), root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	s, err := NewDeviceStore(context.Background(), dev, 0x00010001, "Sync", DeviceOptions{StateDir: t.TempDir(), Logf: storetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := s.Stat(context.Background(), "e")
	if err != nil {
		t.Fatal(err)
	}
	st := cur.Stamp()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Write(ctx, repl.WriteRequest{Handle: "e", Expected: &st, Name: "f", Kind: repl.KindFolder}); err != nil {
		t.Fatalf("move e to f: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "Sync", "f", "x.txt")); err != nil || string(b) != "some content" {
		t.Errorf("f/x.txt = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(root, "Sync", "e")); !os.IsNotExist(err) {
		t.Errorf("e is still there: %v", err)
	}
}
