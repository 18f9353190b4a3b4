package files

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/internal/storetest"
	"github.com/cradle-sync/cradle/repl"
)

func TestProviderDeclaration(t *testing.T) {
	p, err := providers.Lookup("files")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range providers.Directions {
		if !p.SupportsDirection(d) {
			t.Errorf("files does not support %s", d)
		}
	}
	if _, err := p.Validate(map[string]string{OptDevicePath: "Music"}); err == nil || !strings.Contains(err.Error(), OptDesktop) {
		t.Errorf("Validate without the desktop folder = %v, want an error naming it", err)
	}
	if _, err := p.Validate(map[string]string{OptDesktop: "/x", OptDevicePath: "M", OptIgnoreDeviceDeletes: "maybe"}); err == nil {
		t.Error("Validate accepted ignore-device-deletes=maybe")
	}
	vals, err := p.Validate(map[string]string{OptDesktop: "/x", OptDevicePath: "M"})
	if err != nil || vals[OptIgnoreDeviceDeletes] != "false" {
		t.Errorf("Validate = %v, %v; want the default false filled in", vals, err)
	}
}

func TestProviderOpenCreatesOnlyTheFirstTime(t *testing.T) {
	ctx := context.Background()
	p, _ := providers.Lookup("files")
	parent, root, state := t.TempDir(), t.TempDir(), t.TempDir()
	desk := filepath.Join(parent, "Phone")
	dev := storetest.OpenFolderDevice(t, root)
	env := providers.Env{Options: map[string]string{OptDesktop: desk, OptDevicePath: "Documents/Work", OptIgnore: "*.tmp, cache/"},
		Device: dev, StateDir: state}
	inst, err := p.Open(ctx, env)
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	if !exists(desk) || !exists(filepath.Join(root, "Documents/Work")) {
		t.Error("the first Open did not create the missing desktop and device folders")
	}
	if inst.Desktop.IsItemReplicated(repl.Entry{Handle: "cache", Kind: repl.KindFolder}) ||
		inst.Device.IsItemReplicated(repl.Entry{Handle: "a.tmp"}) {
		t.Error("the ignore option does not reach the stores")
	}
	inst.Close()
	// Later, a folder that went missing is an error, not an empty folder to sync from.
	if err := os.Remove(desk); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(ctx, env); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Open with the desktop folder gone = %v, want ErrNotFound", err)
	}
	if err := os.Mkdir(desk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "Documents")); err != nil {
		t.Fatal(err)
	}
	inst, err = p.Open(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	if _, err := inst.Device.Enumerate(ctx); !errors.Is(err, repl.ErrNotFound) {
		t.Errorf("Enumerate with the device folder gone = %v, want ErrNotFound", err)
	}
	// Without a device, only the desktop side opens.
	only, err := p.Open(ctx, providers.Env{Options: env.Options, StateDir: state})
	if err != nil || only.Device != nil || only.Desktop == nil {
		t.Errorf("Open without a device = %+v, %v", only, err)
	}
}

// A device that holds hostile names (a separator, a control character, names Windows reserves)
// never gets them onto the desktop: the objects are skipped, and nothing else is touched.
func TestHostileDeviceNamesNeverReachTheDesktop(t *testing.T) {
	root, desk, state := t.TempDir(), t.TempDir(), t.TempDir()
	for _, n := range []string{"back\\slash.txt", "bell\x07.txt", "CON", "nul.txt", "fine.txt"} {
		storetest.WriteFile(t, filepath.Join(root, "Sync", n), "payload")
	}
	dev := storetest.OpenFolderDevice(t, root)
	p := openPartnership(t, dev, desk, state, nil)
	p.sync()
	got, _ := os.ReadDir(desk)
	var names []string
	for _, e := range got {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "fine.txt" {
		t.Errorf("desktop holds %q, want only fine.txt", names)
	}
	if dev.Skipped() < 4 {
		t.Errorf("the device counted %d skipped objects, want the 4 hostile ones at each listing", dev.Skipped())
	}
}
