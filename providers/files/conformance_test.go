package files

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/repl"
	"github.com/cradle-sync/cradle/repl/repltest"
)

func quiet(string, ...any) {}

// diskEditor edits a folder on disk directly, as a user would.
type diskEditor struct{ dir string }

func (e diskEditor) Put(name string, data []byte, mt time.Time) (string, error) {
	p := filepath.Join(e.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", err
	}
	return name, os.Chtimes(p, mt, mt)
}

func (e diskEditor) Remove(handle string) error {
	return os.Remove(filepath.Join(e.dir, filepath.FromSlash(handle)))
}

func (e diskEditor) Rename(handle, newName string) (string, error) {
	np := filepath.Join(e.dir, filepath.FromSlash(newName))
	if err := os.MkdirAll(filepath.Dir(np), 0o755); err != nil {
		return "", err
	}
	return newName, os.Rename(filepath.Join(e.dir, filepath.FromSlash(handle)), np)
}

func newDesktop(t testing.TB, dir string, opts DesktopOptions) *DesktopStore {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = quiet
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
			return newDesktop(t, dir, DesktopOptions{}), diskEditor{dir}
		},
		Reopen: func(t *testing.T, s repl.Store) repl.Store {
			return newDesktop(t, s.(*DesktopStore).Dir(), DesktopOptions{})
		},
		Folders: true,
		Moves:   true,
	})
}

// openFolderDevice opens dir as a folder device for a test.
func openFolderDevice(t testing.TB, dir string) *folder.Device {
	t.Helper()
	d, err := folder.Open(dir, folder.Options{Logf: quiet})
	if err != nil {
		t.Fatalf("folder.Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func newDeviceStore(t testing.TB, dev *folder.Device, base string, opts DeviceOptions) *DeviceStore {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = quiet
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
			dev := openFolderDevice(t, root)
			state := t.TempDir()
			s := newDeviceStore(t, dev, "Sync/Docs", DeviceOptions{StateDir: state})
			stores[s] = opened{dev, state}
			return s, diskEditor{filepath.Join(root, "Sync", "Docs")}
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
