package usb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/mtp"
)

// openEmulated opens an emulated MTP device on dir with the real initiator, wrapped as the
// Monitor wraps devices; the emulator is returned for fault injection.
func openEmulated(t *testing.T, dir string, u *uploads) (*attached, *emulator.Emulator) {
	t.Helper()
	opts := emulator.Options{}
	e, err := emulator.New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := mtp.Open(context.Background(), e, opts.MTPOptions())
	if err != nil {
		t.Fatal(err)
	}
	a := attach(d, u, slog.New(slog.NewTextHandler(io.Discard, nil)), func() {})
	t.Cleanup(func() { a.Close() })
	return a, e
}

func storageOf(t *testing.T, d device.Device) device.StorageID {
	t.Helper()
	ss, err := d.Storages(context.Background())
	if err != nil || len(ss) == 0 {
		t.Fatalf("Storages = %v, %v", ss, err)
	}
	return ss[0].ID
}

// TestUploadCutOffIsCleanedNextRun cuts an upload off with a disconnect (the device keeps the
// partial file, as QEMU and some phones do), and checks that the next session, in a later run of
// Cradle reading the same journal file, deletes it, and only it.
func TestUploadCutOffIsCleanedNextRun(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	journal := filepath.Join(t.TempDir(), "state", "uploads.json")
	if err := os.WriteFile(filepath.Join(dir, "keep.bin"), bytes.Repeat([]byte{1}, 100), 0o644); err != nil {
		t.Fatal(err)
	}

	d, e := openEmulated(t, dir, &uploads{path: journal})
	s := storageOf(t, d)
	e.KeepPartial(true)
	e.DisconnectAfter(-1, 3<<20)
	const size = 8 << 20
	_, err := d.Create(ctx, s, "music/cut.bin", size, time.Now(), bytes.NewReader(make([]byte, size)))
	if !errors.Is(err, device.ErrDisconnected) {
		t.Fatalf("Create across a disconnect = %v, want ErrDisconnected", err)
	}
	// The emulator's responder finishes on its own goroutine: give it a moment to keep the part.
	var fi os.FileInfo
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
		if fi, err = os.Stat(filepath.Join(dir, "music", "cut.bin")); err == nil {
			break
		}
	}
	if err != nil || fi.Size() >= size {
		t.Fatalf("the emulator kept %v, %v; want a partial file for this test", fi, err)
	}
	if b, err := os.ReadFile(journal); err != nil || !bytes.Contains(b, []byte("music/cut.bin")) {
		t.Fatalf("journal = %q, %v; want the cut-off upload in it", b, err)
	}

	// The next run: a fresh journal reader, a new session with the same device (same serial).
	u2 := &uploads{path: journal}
	d2, _ := openEmulated(t, dir, u2)
	if d2.Info().Serial != d.Info().Serial {
		t.Fatalf("serials differ: %q, %q", d.Info().Serial, d2.Info().Serial)
	}
	// An upload that failed because the object existed leaves the existing one alone.
	if _, err := d2.Create(ctx, s, "keep.bin", 5, time.Now(), bytes.NewReader([]byte("hello"))); !errors.Is(err, device.ErrExists) {
		t.Fatalf("Create(existing) = %v, want ErrExists", err)
	}
	deleted, err := u2.clean(ctx, d2)
	if err != nil {
		t.Fatalf("clean: %v", err)
	}
	if len(deleted) != 1 || deleted[0] != "music/cut.bin" {
		t.Errorf("clean deleted %v, want [music/cut.bin]", deleted)
	}
	if _, err := os.Stat(filepath.Join(dir, "music", "cut.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cut-off upload still on the device: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keep.bin")); err != nil || len(b) != 100 {
		t.Errorf("keep.bin = %d bytes, %v; want it untouched", len(b), err)
	}
	if ps, err := u2.pending(d2.Info().Serial); err != nil || len(ps) != 0 {
		t.Errorf("pending after clean = %+v, %v, want none", ps, err)
	}
	// A completed upload leaves no entry.
	if _, err := d2.Create(ctx, s, "music/whole.bin", 4, time.Now(), bytes.NewReader([]byte("abcd"))); err != nil {
		t.Fatal(err)
	}
	if ps, _ := u2.pending(d2.Info().Serial); len(ps) != 0 {
		t.Errorf("pending after a completed upload = %+v, want none", ps)
	}
	if deleted, err := u2.clean(ctx, d2); err != nil || len(deleted) != 0 {
		t.Errorf("second clean = %v, %v, want nothing to do", deleted, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "music", "whole.bin")); err != nil || string(b) != "abcd" {
		t.Errorf("whole.bin = %q, %v", b, err)
	}
}

// TestCleanSparesOthers: an entry whose path now holds something larger than the upload (not the
// upload's leftover) or a folder is forgotten without deleting anything; an entry of another
// device stays.
func TestCleanSparesOthers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	u := &uploads{}
	d, _ := openEmulated(t, dir, u)
	s := storageOf(t, d)
	serial := d.Info().Serial
	for _, e := range []upload{
		{Serial: serial, Storage: s, Path: "big.bin", Size: 10},
		{Serial: serial, Storage: s, Path: "folder", Size: 10},
		{Serial: serial, Storage: s, Path: "never-arrived.bin", Size: 10},
		{Serial: "another-device", Storage: s, Path: "big.bin", Size: 5000},
	} {
		if _, err := u.begin(e); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := u.clean(ctx, d)
	if err != nil || len(deleted) != 0 {
		t.Errorf("clean = %v, %v, want nothing deleted", deleted, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "big.bin")); err != nil || fi.Size() != 1000 {
		t.Errorf("big.bin = %v, %v, want it untouched", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "folder")); err != nil || !fi.IsDir() {
		t.Errorf("folder = %v, %v, want it untouched", fi, err)
	}
	if ps, _ := u.pending(serial); len(ps) != 0 {
		t.Errorf("pending for this device = %+v, want none", ps)
	}
	if ps, _ := u.pending("another-device"); len(ps) != 1 {
		t.Errorf("pending for another device = %+v, want its entry kept", ps)
	}
}

// TestJournalDamaged: a journal that is not JSON is started afresh instead of failing uploads.
func TestJournalDamaged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "uploads.json")
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	u := &uploads{path: p}
	id, err := u.begin(upload{Serial: "s", Path: "a", Size: 1})
	if err != nil {
		t.Fatalf("begin on a damaged journal: %v", err)
	}
	if ps, err := (&uploads{path: p}).pending("s"); err != nil || len(ps) != 1 || ps[0].ID != id {
		t.Errorf("a new reader sees %+v, %v, want the one entry", ps, err)
	}
}

// TestAttachPassesEvents: the device a Monitor reports passes the device's events on, tells the
// Monitor when the device is gone, and closes its channel after that; Close alone is not "gone".
func TestAttachPassesEvents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := emulator.Options{}
	e, err := emulator.New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := mtp.Open(ctx, e, opts.MTPOptions())
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan struct{}, 2)
	a := attach(d, &uploads{}, slog.New(slog.NewTextHandler(io.Discard, nil)), func() { gone <- struct{}{} })
	defer a.Close()
	s := storageOf(t, a)
	if _, err := a.List(ctx, s, ""); err != nil { // the emulator reports changes in listed folders
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "new.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-a.Events():
		if ev.Kind != device.ObjectAdded || ev.Path != "new.txt" {
			t.Errorf("event %+v, want ObjectAdded new.txt", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for a file added on the device")
	}
	e.Unplug()
	sawGone := false
	timeout := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case ev, ok := <-a.Events():
			if !ok {
				open = false
				break
			}
			sawGone = sawGone || ev.Kind == device.DeviceGone
		case <-timeout:
			t.Fatal("events not closed 10s after the device left")
		}
	}
	if !sawGone {
		t.Errorf("events closed without DeviceGone")
	}
	select {
	case <-gone:
	default:
		t.Errorf("the Monitor was not told the device is gone")
	}

	// A device closed by its owner is not reported gone.
	d2, err := emulator.OpenDevice(ctx, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	called := false
	a2 := attach(d2, &uploads{}, slog.New(slog.NewTextHandler(io.Discard, nil)), func() { called = true })
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	for range a2.Events() {
	}
	if called {
		t.Errorf("Close was taken for the device leaving")
	}
	if err := a2.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}
