package fsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
)

// pulledAfter is a folder device whose cable is pulled out the moment a given call has
// succeeded: every later call fails as on a device that disappeared.
type pulledAfter struct {
	*folder.Device
	after func(op, path string) bool // the call after which the device is gone
	gone  bool
}

func (d *pulledAfter) check(op, path string) error {
	if d.gone {
		return fmt.Errorf("%s %s: %w", op, path, device.ErrDisconnected)
	}
	return nil
}

func (d *pulledAfter) done(op, path string) {
	if d.after(op, path) {
		d.gone = true
	}
}

func (d *pulledAfter) Create(ctx context.Context, s device.StorageID, p string, size int64, mt time.Time, r io.Reader) (device.Object, error) {
	if err := d.check("create", p); err != nil {
		return device.Object{}, err
	}
	o, err := d.Device.Create(ctx, s, p, size, mt, r)
	if err == nil {
		d.done("create", p)
	}
	return o, err
}

func (d *pulledAfter) Stat(ctx context.Context, s device.StorageID, p string) (device.Object, error) {
	if err := d.check("stat", p); err != nil {
		return device.Object{}, err
	}
	return d.Device.Stat(ctx, s, p)
}

func (d *pulledAfter) Delete(ctx context.Context, s device.StorageID, p string) error {
	if err := d.check("delete", p); err != nil {
		return err
	}
	err := d.Device.Delete(ctx, s, p)
	if err == nil {
		d.done("delete", p)
	}
	return err
}

func (d *pulledAfter) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	if err := d.check("rename", from); err != nil {
		return err
	}
	return d.Device.Rename(ctx, s, from, to)
}

// TestUpdateCutAfterUpload: the device disappears right after an updated file was uploaded under
// its temporary name (or right after the old one was deleted). The next session on the device
// leaves no temporary file behind and the file holds a complete version (the old one, or the new
// one), never nothing.
func TestUpdateCutAfterUpload(t *testing.T) {
	for _, tt := range []struct {
		name  string
		after func(op, path string) bool
		want  string
	}{
		{"after the upload", func(op, p string) bool { return op == "create" && strings.Contains(p, TempPrefix) }, "version 1"},
		{"after deleting the old version", func(op, p string) bool { return op == "delete" && strings.HasSuffix(p, "report.txt") }, "version 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			root, state := t.TempDir(), t.TempDir()
			storetest.WriteFile(t, filepath.Join(root, "Docs/report.txt"), "version 1")
			dev := &pulledAfter{Device: storetest.OpenFolderDevice(t, root), after: tt.after}
			s := newDeviceStore(t, dev.Device, "Docs", DeviceOptions{StateDir: state})
			s.dev = dev
			e, err := s.Stat(ctx, "report.txt")
			if err != nil {
				t.Fatal(err)
			}
			st := e.Stamp()
			_, err = s.Write(ctx, repl.WriteRequest{Handle: "report.txt", Expected: &st, Name: "report.txt", Kind: repl.KindFile,
				Size: 9, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Data: strings.NewReader("version 2")})
			if !errors.Is(err, repl.ErrGone) && !errors.Is(err, device.ErrDisconnected) {
				t.Fatalf("Write cut by the unplug = %v, want a disconnection", err)
			}
			// Plugged in again: a new store on the same device and state folder.
			s2 := newDeviceStore(t, storetest.OpenFolderDevice(t, root), "Docs", DeviceOptions{StateDir: state})
			enumerateAll(t, s2)
			entries, err := os.ReadDir(filepath.Join(root, "Docs"))
			if err != nil {
				t.Fatal(err)
			}
			for _, de := range entries {
				if strings.HasPrefix(de.Name(), TempPrefix) {
					t.Errorf("the next session left %s on the device", de.Name())
				}
			}
			if b, err := os.ReadFile(filepath.Join(root, "Docs/report.txt")); err != nil || string(b) != tt.want {
				t.Errorf("report.txt after the next session = %q, %v; want %q", b, err, tt.want)
			}
		})
	}
}

// TestRecoverCutUpload: a journaled swap whose upload was cut off (a device that keeps what it
// got) is never moved into place, even when the old version is gone: the next session removes
// it.
func TestRecoverCutUpload(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	tmp := "Docs/" + TempPrefix + "CUT"
	storetest.WriteFile(t, filepath.Join(root, tmp), "versi") // 5 of 9 bytes
	storetest.WriteFile(t, filepath.Join(root, "Docs/other.txt"), "other")
	j, _ := json.Marshal([]swap{{Tmp: tmp, Final: "Docs/report.txt", Size: 9, Sized: true}})
	if err := os.WriteFile(filepath.Join(state, "device-swaps.json"), j, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newDeviceStore(t, storetest.OpenFolderDevice(t, root), "Docs", DeviceOptions{StateDir: state})
	enumerateAll(t, s)
	if _, err := os.Stat(filepath.Join(root, "Docs/report.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cut upload was moved into place as report.txt (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(root, tmp)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cut upload %s is still on the device (%v)", tmp, err)
	}
}
