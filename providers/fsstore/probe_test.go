package fsstore

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
)

// counting passes every call to a real device and counts the writes.
type counting struct {
	device.Device
	creates, renames int
}

func (c *counting) Create(ctx context.Context, s device.StorageID, p string, size int64, mt time.Time, r io.Reader) (device.Object, error) {
	c.creates++
	return c.Device.Create(ctx, s, p, size, mt, r)
}

func (c *counting) Rename(ctx context.Context, s device.StorageID, from, to string) error {
	c.renames++
	return c.Device.Rename(ctx, s, from, to)
}

// The rename probe leaves nothing on the device, finds out once, and creates nothing where the
// device says it cannot rename: QEMU's usb-mtp, which also never shows an object whose name
// starts with a dot (the probe's), used to collect one probe object per write.
func TestRenameProbeLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    emulator.Options
		atomic  bool
		creates int // objects the probe may create
	}{
		{"android", emulator.Options{}, true, 1},
		{"qemu", emulator.QEMU(), false, 0},
		{"no-rename", emulator.Options{ReadOnlyProps: true}, false, 0},
		{"full", emulator.Options{FreeSpaceZero: true}, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "Sync"), 0o755); err != nil {
				t.Fatal(err)
			}
			dev, err := emulator.OpenDevice(context.Background(), root, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dev.Close() })
			c := &counting{Device: dev}
			s, err := NewDeviceStore(context.Background(), c, 0x00010001, "Sync", DeviceOptions{StateDir: t.TempDir(), Logf: storetest.Quiet})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if got := s.WritesAtomic(); got != tc.atomic {
					t.Errorf("WritesAtomic() call %d = %v, want %v", i+1, got, tc.atomic)
				}
			}
			if c.creates != tc.creates {
				t.Errorf("the probe created %d objects on the device, want %d (and only once)", c.creates, tc.creates)
			}
			filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && strings.HasPrefix(d.Name(), TempPrefix) {
					t.Errorf("the rename probe left %s on the device", p)
				}
				return nil
			})
		})
	}
}
