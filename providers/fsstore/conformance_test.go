package fsstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/emulator"
	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

func newDesktop(t testing.TB, dir string, opts DesktopOptions) *DesktopStore {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = storetest.Quiet
	}
	s, err := NewDesktopStore(dir, opts)
	if err != nil {
		t.Fatalf("NewDesktopStore(%q): %v", dir, err)
	}
	return s
}

func TestDesktopConformance(t *testing.T) {
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			dir := t.TempDir()
			return newDesktop(t, dir, DesktopOptions{}), storetest.FolderRenamer{Dir: dir}
		},
		Reopen: func(t *testing.T, s repl.Store) repl.Store {
			return newDesktop(t, s.(*DesktopStore).Dir(), DesktopOptions{})
		},
		Folders: true,
		Moves:   true,
	})
}

func newDeviceStore(t testing.TB, dev *folder.Device, base string, opts DeviceOptions) *DeviceStore {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = storetest.Quiet
	}
	s, err := NewDeviceStore(context.Background(), dev, folder.Storage, base, opts)
	if err != nil {
		t.Fatalf("NewDeviceStore(%q): %v", base, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestDeviceConformanceOverFolderDevice(t *testing.T) {
	type opened struct {
		dev   *folder.Device
		state string
	}
	stores := map[repl.Store]opened{}
	repltest.Run(t, repltest.Harness{
		New: func(t *testing.T) (repl.Store, repltest.Editor) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "Sync", "Docs"), 0o755); err != nil {
				t.Fatal(err)
			}
			dev := storetest.OpenFolderDevice(t, root)
			state := t.TempDir()
			s := newDeviceStore(t, dev, "Sync/Docs", DeviceOptions{StateDir: state})
			stores[s] = opened{dev, state}
			return s, storetest.FolderRenamer{Dir: filepath.Join(root, "Sync", "Docs")}
		},
		Reopen: func(t *testing.T, s repl.Store) repl.Store {
			o := stores[s]
			return newDeviceStore(t, o.dev, "Sync/Docs", DeviceOptions{StateDir: o.state})
		},
		Folders: true,
		Moves:   true,
		// Names a phone could not store are refused too.
		InvalidNames: append(append([]string{}, repltest.DefaultInvalidNames...), "CON", "dir/aux.txt"),
	})
}

func TestDeviceConformanceOverEmulator(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts emulator.Options
	}{
		{"android", emulator.Options{}},
		{"qemu", emulator.QEMU()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repltest.Run(t, repltest.Harness{
				New: func(t *testing.T) (repl.Store, repltest.Editor) {
					root := t.TempDir()
					if err := os.MkdirAll(filepath.Join(root, "Sync"), 0o755); err != nil {
						t.Fatal(err)
					}
					dev, err := emulator.OpenDevice(context.Background(), root, tc.opts)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { dev.Close() })
					s, err := NewDeviceStore(context.Background(), dev, 0x00010001, "Sync", DeviceOptions{StateDir: t.TempDir(), Logf: storetest.Quiet})
					if errors.Is(err, repl.ErrNotFound) {
						t.Fatal(err)
					}
					if err != nil {
						t.Fatal(err)
					}
					return s, storetest.FolderRenamer{Dir: filepath.Join(root, "Sync")}
				},
				Folders:         true,
				Moves:           true,
				TimeGranularity: time.Second,
			})
		})
	}
}
