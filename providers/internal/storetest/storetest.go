// Package storetest holds the test set-up that the providers' tests share: a folder device, files
// written the way a user writes them, a repltest.Editor for a folder, and a partnership opened
// through the registry and synced by the real engine. Only tests import it.
package storetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/device/folder"
	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/repl"
)

// Quiet is a Logf that drops what it is given.
func Quiet(string, ...any) {}

// WriteFile writes content to path, creating its folders, or fails the test.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// NoTempFiles fails the test for every file under dir whose name starts with prefix (a
// temporary file a write left behind).
func NoTempFiles(t testing.TB, dir, prefix string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), prefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// OpenFolderDevice opens dir as a folder device (a mass-storage device) for the test; it is
// closed when the test ends.
func OpenFolderDevice(t testing.TB, dir string) *folder.Device {
	t.Helper()
	d, err := folder.Open(dir, folder.Options{Logf: Quiet})
	if err != nil {
		t.Fatalf("folder.Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// FolderEditor is a repltest.Editor that changes a folder directly, as a user does.
type FolderEditor struct{ Dir string }

// Put writes the file name with data and modification time mt; its handle is name.
func (e FolderEditor) Put(name string, data []byte, mt time.Time) (string, error) {
	p := filepath.Join(e.Dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", err
	}
	return name, os.Chtimes(p, mt, mt)
}

// Remove deletes the item at handle.
func (e FolderEditor) Remove(handle string) error {
	return os.Remove(filepath.Join(e.Dir, filepath.FromSlash(handle)))
}

// FolderRenamer is a FolderEditor that renames too (a repltest.Renamer), for stores whose
// conformance runs include moves.
type FolderRenamer struct{ Dir string }

// Put is FolderEditor.Put.
func (e FolderRenamer) Put(name string, data []byte, mt time.Time) (string, error) {
	return FolderEditor(e).Put(name, data, mt)
}

// Remove is FolderEditor.Remove.
func (e FolderRenamer) Remove(handle string) error { return FolderEditor(e).Remove(handle) }

// Rename moves the item at handle to newName, creating its folder; its new handle is newName.
func (e FolderRenamer) Rename(handle, newName string) (string, error) {
	np := filepath.Join(e.Dir, filepath.FromSlash(newName))
	if err := os.MkdirAll(filepath.Dir(np), 0o755); err != nil {
		return "", err
	}
	return newName, os.Rename(filepath.Join(e.Dir, filepath.FromSlash(handle)), np)
}

// Partnership is a partnership opened through the registry, with a handle file of its own in
// its state folder, for tests that sync with the real engine.
type Partnership struct {
	t    testing.TB
	HF   *repl.HandleFile
	Inst *providers.Instance
}

// Open opens a partnership of the registered provider with the given option values (validated,
// defaults filled in) on dev, keeping its state in stateDir. It is closed when the test ends.
func Open(t testing.TB, provider string, dev device.Device, stateDir string, opts map[string]string) *Partnership {
	t.Helper()
	p, err := providers.Lookup(provider)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := p.Validate(opts)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.Open(context.Background(), providers.Env{Options: vals, Device: dev, StateDir: stateDir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	hf, err := repl.Open(filepath.Join(stateDir, "Repl.dat"), repl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pt := &Partnership{t: t, HF: hf, Inst: inst}
	t.Cleanup(pt.Close)
	return pt
}

// Close closes the handle file and the provider's stores; later calls do nothing.
func (p *Partnership) Close() {
	if p.HF != nil {
		p.HF.Close()
		p.Inst.Close()
		p.HF = nil
	}
}

// Sync runs one session between the desktop side ("desktop") and the device side ("device")
// and returns its report; an error fails the test.
func (p *Partnership) Sync(cfg repl.Config) *repl.Report {
	p.t.Helper()
	rep, err := p.HF.Sync(context.Background(),
		repl.Side{Name: "desktop", Store: p.Inst.Desktop},
		repl.Side{Name: "device", Store: p.Inst.Device},
		cfg)
	if err != nil {
		p.t.Fatalf("Sync: %v", err)
	}
	return rep
}
